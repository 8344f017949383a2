"""Rasa's REST channel that takes a client message id, so a message sent twice is handled once.

The same channel as Rasa's ``rest`` (the name, the route ``POST /webhooks/rest/webhook``, the body
``{"sender", "message", "metadata"}`` and the answer), plus an optional ``message_id``: in the body
or in its ``metadata`` (docs/HANDOFF_CONTRACT.md, "Customer message ids"). A message whose id was
handled before is answered with the reply of that time, and its turn does not run again
(handoff/server/idempotency.py): the balancer may send it to another replica when the first one
died before answering. A ``message_id`` that is not a string of 1 to 128 letters, digits and
``. _ : -`` is refused with 400.

Configure it in the credentials in place of ``rest:``::

    handoff.server.rest.HandoffRestInput:
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from handoff.idempotency import MESSAGE_ID_FIELD, InvalidMessageId, message_id_of
from handoff.server.idempotency import OnceHandler


class HandoffRestInput(RestInput):
    """Rasa's ``rest`` channel with client message ids."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The body's ``metadata``, with the message id (from the body or the metadata) in it."""
        metadata = super().get_metadata(request)
        body = request.json if isinstance(request.json, dict) else {}
        try:
            key = message_id_of(body, metadata if isinstance(metadata, dict) else None)
        except InvalidMessageId as exc:
            raise InvalidUsage(str(exc)) from None
        if key is None:
            return metadata
        return {**(metadata if isinstance(metadata, dict) else {}), MESSAGE_ID_FIELD: key}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        once = OnceHandler(on_new_message)
        blueprint = super().blueprint(once)

        @blueprint.listener("after_server_start")
        async def bind(app: Any, _loop: Any) -> None:
            once.bind(app)

        return blueprint
