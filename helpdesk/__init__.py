"""The embedded helpdesk: the default agent inbox for handoffs (``python -m helpdesk``, port 5080).

It receives the assistant's signed handoff events on ``POST /webhook`` and lets agents join, reply
and hand back from server-rendered pages. See docs/HANDOFF_CONTRACT.md.
"""
