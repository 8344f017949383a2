"""The handoff core: settings, signing, handoff records and outbox, payloads, triggers, delivery.

No Rasa imports here (checked by ``make lint``): the Rasa server plugins (:mod:`handoff.server`),
the action server (``actions``), the embedded helpdesk (``helpdesk``) and the operator tools
(:mod:`handoff.tools`) all build on it.
"""
