"""The embedded helpdesk: the default agent console for handoffs (``python -m helpdesk``, port 5080).

It receives the assistant's signed handoff events on ``POST /webhook``; agents sign in
(``HELPDESK_AGENTS``), see the queue and every conversation update live (server-sent events), claim
a handoff, reply, and hand it back to the bot. See docs/HANDOFF_CONTRACT.md.
"""
