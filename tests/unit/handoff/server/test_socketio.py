"""handoff.server.socketio.SharedSocketIOInput: Rasa's socket.io channel, plus a Redis client manager.

These check the configuration only (no Redis connection is opened before the server starts);
tests/e2e/test_two_processes.py pushes through Redis between two real Rasa processes.
"""

from __future__ import annotations

import pytest
import socketio
from rasa.core.channels.socketio import SocketIOInput

from handoff.server.socketio import SharedSocketIOInput
from handoff.settings import PROJECT_ROOT

CREDENTIALS = {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True}


async def on_new_message(_message):
    return None


@pytest.fixture(autouse=True)
def no_redis_env(monkeypatch):
    monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
    monkeypatch.delenv("SOCKETIO_REDIS_CHANNEL", raising=False)


def test_without_redis_it_is_rasas_socketio_channel():
    ours = SharedSocketIOInput.from_credentials(CREDENTIALS)
    rasas = SocketIOInput.from_credentials(CREDENTIALS)
    assert ours.name() == "socketio"
    assert ours.redis_url is None
    for attribute in ("user_message_evt", "bot_message_evt", "session_persistence", "socketio_path", "namespace", "metadata_key"):
        assert getattr(ours, attribute) == getattr(rasas, attribute), attribute

    ours.blueprint(on_new_message)
    assert type(ours.sio.manager) is socketio.AsyncManager
    assert sorted(ours.sio.handlers["/"]) == ["connect", "disconnect", "session_request", "user_uttered"]


def test_redis_url_from_credentials_gives_the_redis_manager():
    channel = SharedSocketIOInput.from_credentials(
        {**CREDENTIALS, "redis_url": "redis://127.0.0.1:6399/3", "redis_channel": "northwind-chat"}
    )
    blueprint = channel.blueprint(on_new_message)
    manager = channel.sio.manager
    assert isinstance(manager, socketio.AsyncRedisManager)
    assert manager.server is channel.sio and manager.channel == "northwind-chat"
    assert manager.redis_url == "redis://127.0.0.1:6399/3"
    # Rasa's handlers stay on the same server; the output channel emits through the manager.
    assert sorted(channel.sio.handlers["/"]) == ["connect", "disconnect", "session_request", "user_uttered"]
    assert channel.get_output_channel().sio is channel.sio
    assert {listener.event for listener in blueprint._future_listeners} >= {"after_server_start", "before_server_stop"}


def test_redis_settings_fall_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("SOCKETIO_REDIS_URL", "redis://127.0.0.1:6399/0")
    monkeypatch.setenv("SOCKETIO_REDIS_CHANNEL", "chat-b")
    channel = SharedSocketIOInput.from_credentials(CREDENTIALS)
    assert (channel.redis_url, channel.redis_channel) == ("redis://127.0.0.1:6399/0", "chat-b")
    channel.blueprint(on_new_message)
    assert isinstance(channel.sio.manager, socketio.AsyncRedisManager)

    monkeypatch.delenv("SOCKETIO_REDIS_CHANNEL")
    assert SharedSocketIOInput.from_credentials(CREDENTIALS).redis_channel == "socketio"


def test_scaled_credentials_configure_the_shared_channel(monkeypatch):
    from rasa.core.run import create_http_input_channels

    monkeypatch.setenv("SOCKETIO_REDIS_URL", "redis://127.0.0.1:6399/0")
    channels = create_http_input_channels(None, str(PROJECT_ROOT / "credentials.scaled.yml"))
    by_name = {channel.name(): channel for channel in channels}
    assert sorted(by_name) == ["helpdesk", "rest", "socketio"]
    shared = by_name["socketio"]
    assert isinstance(shared, SharedSocketIOInput)
    assert shared.redis_url == "redis://127.0.0.1:6399/0" and shared.session_persistence is True
