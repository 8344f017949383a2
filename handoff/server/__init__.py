"""Rasa server plugins: the event broker, the helpdesk and socket.io channels, the scheduled
tasks, the tracker store, the NLU backstop, the action server entry and the Rasa patches.

Everything Rasa-specific lives here; the core (:mod:`handoff`) never imports it.
"""
