"""Operator command lines: the outbox (``outbox_cli``), erasure and retention (``privacy_cli``)
and the check of handoff_rules.yml (``validate``)."""
