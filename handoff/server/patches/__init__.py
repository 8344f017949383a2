"""Changes to Rasa internals, each compared with Rasa's own behaviour in the tests."""
