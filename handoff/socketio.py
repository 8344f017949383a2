"""Rasa's socket.io channel, able to push to customers connected to another Rasa process.

Rasa 3.6 creates the channel's python-socketio ``AsyncServer`` without a client manager, so an
emit only reaches sockets connected to the same process. An agent message that the helpdesk
posts to process B (``handoff.channel``) is pushed through B's output channel, and would be lost
for a customer whose socket is connected to process A. With a Redis URL this channel gives the
server python-socketio's ``AsyncRedisManager``: every emit is published on a Redis channel and each
process delivers it to the sockets (and rooms) it holds. Without one it is Rasa's socketio channel,
unchanged.

Configure it in ``credentials.yml`` in place of ``socketio:`` (same options, plus the Redis ones)::

    handoff.socketio.SharedSocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      redis_url: ${SOCKETIO_REDIS_URL}     # or leave it out and set SOCKETIO_REDIS_URL
      # redis_channel: socketio            # or SOCKETIO_REDIS_CHANNEL; the same in every process

The channel keeps Rasa's name ``socketio``: the same route, the same ``input_channel`` in the
tracker, so ``output_channel=latest`` and the helpdesk channel find it as before. Redis carries the
messages pickled (python-socketio's format): keep that Redis private to the assistant.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

logger = logging.getLogger(__name__)

DEFAULT_REDIS_CHANNEL = "socketio"
# How long server start-up waits for the Redis subscription before serving sockets anyway.
SUBSCRIBE_WAIT_SECONDS = 10.0


class SharedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with an optional Redis client manager shared by all processes."""

    def __init__(
        self,
        *args: Any,
        redis_url: str | None = None,
        redis_channel: str = DEFAULT_REDIS_CHANNEL,
        **kwargs: Any,
    ) -> None:
        """Take Rasa's ``SocketIOInput`` arguments, plus where the processes meet in Redis."""
        super().__init__(*args, **kwargs)
        self.redis_url = redis_url or None
        self.redis_channel = redis_channel or DEFAULT_REDIS_CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's socketio options; ``redis_url`` / ``redis_channel`` fall back to the environment
        (``SOCKETIO_REDIS_URL``, ``SOCKETIO_REDIS_CHANNEL``)."""
        credentials = credentials or {}
        channel = super().from_credentials(credentials)
        assert isinstance(channel, SharedSocketIOInput)
        channel.redis_url = credentials.get("redis_url") or os.environ.get("SOCKETIO_REDIS_URL") or None
        channel.redis_channel = (
            credentials.get("redis_channel") or os.environ.get("SOCKETIO_REDIS_CHANNEL") or DEFAULT_REDIS_CHANNEL
        )
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's socket.io blueprint; with a Redis URL its server gets the shared client manager."""
        blueprint = super().blueprint(on_new_message)
        if not self.redis_url:
            return blueprint
        server = self.sio
        assert server is not None
        if server.manager_initialized:  # a client manager can only be swapped before first use
            raise RuntimeError("the socket.io server was used before its client manager was set")
        manager = socketio.AsyncRedisManager(self.redis_url, channel=self.redis_channel)
        manager.set_server(server)
        server.manager = manager

        async def subscribe(*_: Any) -> None:
            # python-socketio starts listening on the first connection; a message published
            # before the subscription is in place (e.g. that client's session_confirm) would be
            # lost, so listen from server start-up on.
            if not server.manager_initialized:
                server.manager_initialized = True
                manager.initialize()
            deadline = asyncio.get_running_loop().time() + SUBSCRIBE_WAIT_SECONDS
            while not manager.pubsub.subscribed:
                if asyncio.get_running_loop().time() > deadline:
                    logger.error("socket.io: no Redis subscription on %r yet; pushes may be lost", self.redis_channel)
                    return
                await asyncio.sleep(0.05)
            logger.info("socket.io: sharing clients through Redis channel %r", self.redis_channel)

        async def unsubscribe(*_: Any) -> None:
            task = getattr(manager, "thread", None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await manager.pubsub.close()
            await manager.redis.close()

        blueprint.listener("after_server_start")(subscribe)
        blueprint.listener("before_server_stop")(unsubscribe)
        return blueprint
