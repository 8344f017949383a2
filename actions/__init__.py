"""Custom actions of the assistant (run by ``rasa run actions``)."""
