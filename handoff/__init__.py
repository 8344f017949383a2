"""Shared handoff code: settings, signing, handoff records, payloads and delivery.

Imported by the Rasa server plugins (``handoff.channel``, ``handoff.broker``), the action server
(``actions``) and the embedded helpdesk (``helpdesk``). Only ``handoff.channel`` and
``handoff.broker`` import Rasa itself.
"""
