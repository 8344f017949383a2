"""handoff.server.socketio: every ``bot_uttered`` carries who speaks, the handoff state and the
conversation's language in ``metadata``; its ``text`` stays as Rasa sends it."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from rasa.shared.core.events import BotUttered

from handoff.server.socketio import (
    NOTICE_KINDS,
    HandoffSocketIOOutput,
    SharedSocketIOInput,
    message_metadata,
)
from handoff.store import new_event

CREDENTIALS = {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True}


def requested(store, conversation_id):
    body = new_event("handoff.requested", str(uuid.uuid4()), conversation_id, reason="customer_request", priority="normal", queue="support")
    handoff, _ = store.create_handoff(body)
    return handoff


@pytest.fixture
def channel():
    async def on_new_message(message):
        handled.append(message)

    handled: list = []
    channel = SharedSocketIOInput.from_credentials(CREDENTIALS)
    channel.blueprint(on_new_message)
    channel.handled = handled
    emitted: dict[str, list] = defaultdict(list)

    async def emit(event, data=None, room=None, **_):
        emitted[room].append((event, data))

    channel.sio.emit = emit
    channel.emitted = emitted
    return channel


async def sent(channel, conversation_id, message):
    output = channel.get_output_channel()
    assert isinstance(output, HandoffSocketIOOutput)
    await output.send_response(conversation_id, dict(message))
    return [data for _, data in channel.emitted.pop(conversation_id)]


# -- the metadata itself ----------------------------------------------------------------------------


def test_a_plain_bot_message_is_the_bot_with_no_handoff():
    assert message_metadata({"text": "Hi", "utter_action": "utter_greet"}, None, "nl") == {
        "speaker": "bot", "agent_name": None, "handoff": "none", "notice": None, "language": "nl",
    }


def test_notices_come_from_response_names_not_texts():
    for response, kind in NOTICE_KINDS.items():
        assert message_metadata({"text": "anything at all", "utter_action": response}, None)["notice"] == kind
    # The four the page used to miss end a handoff: the bot speaks, in state "ended".
    for response in ("utter_handoff_no_agent", "utter_handoff_cancelled", "utter_handoff_back", "utter_handoff_failed"):
        metadata = message_metadata({"text": "x", "utter_action": response}, None)
        assert (metadata["speaker"], metadata["handoff"]) == ("bot", "ended")


def test_an_agent_message_names_the_agent_and_says_its_language():
    message = {"text": "Hoi, ik ben Sanne", "handoff_role": "agent", "agent_name": "Sanne", "language": "nl"}
    assert message_metadata(message, None, "en") == {
        "speaker": "agent", "agent_name": "Sanne", "handoff": "none", "notice": None, "language": "nl",
    }


def test_unknown_languages_are_left_out():
    assert message_metadata({"text": "x", "language": "de"}, None, "fr")["language"] is None


# -- through the output channel, with the handoff state from the store --------------------------------


async def test_every_kind_of_message_carries_its_speaker_and_state(channel, store):
    conversation = uuid.uuid4().hex
    [greeting] = await sent(channel, conversation, BotUttered("Hello!", metadata={"utter_action": "utter_greet"}).message())
    assert greeting["text"] == "Hello!"
    assert greeting["metadata"]["speaker"] == "bot" and greeting["metadata"]["handoff"] == "none"

    handoff = requested(store, conversation)
    [started] = await sent(channel, conversation, {"text": "Putting you through", "utter_action": "utter_handoff_started"})
    assert started["metadata"] | {"language": None} == {
        "speaker": "bot", "agent_name": None, "handoff": "waiting", "notice": "handoff", "language": None,
    }
    # A trigger's own response, said instead of utter_handoff_started, is the handoff notice too.
    [own] = await sent(channel, conversation, {"text": "Right away!", "utter_action": "utter_handoff_urgent"})
    assert own["metadata"]["notice"] == "handoff"
    [update] = await sent(channel, conversation, BotUttered("Still in the queue", metadata={"handoff_role": "notice", "notice": "still_waiting", "language": "en"}).message())
    assert update["metadata"]["notice"] == "wait" and update["metadata"]["handoff"] == "waiting"

    store.mark_assigned(handoff.id, "Sanne")
    [joined] = await sent(channel, conversation, BotUttered("Sanne is here", metadata={"handoff_role": "notice", "notice": "agent_joined", "agent_name": "Sanne"}).message())
    assert joined["metadata"] | {"language": None} == {
        "speaker": "bot", "agent_name": "Sanne", "handoff": "agent", "notice": "joined", "language": None,
    }
    [reply] = await sent(channel, conversation, BotUttered("Hi, I'm Sanne", metadata={"handoff_role": "agent", "agent_name": "Sanne"}).message())
    assert reply["text"] == "Hi, I'm Sanne"
    assert (reply["metadata"]["speaker"], reply["metadata"]["agent_name"], reply["metadata"]["handoff"]) == ("agent", "Sanne", "agent")

    store.end_handoff(handoff.id, "handed_back")
    [back] = await sent(channel, conversation, {"text": "You're back", "utter_action": "utter_handoff_back"})
    assert (back["metadata"]["speaker"], back["metadata"]["handoff"], back["metadata"]["notice"]) == ("bot", "ended", "back")
    [after] = await sent(channel, conversation, {"text": "Anything else?", "utter_action": "utter_anything_else"})
    assert after["metadata"]["handoff"] == "none"


async def test_quick_replies_keep_rasas_keys_and_gain_the_metadata(channel, store):
    conversation = uuid.uuid4().hex
    [message] = await sent(channel, conversation, {"text": "Pick one", "quick_replies": [{"title": "Yes", "payload": "/affirm"}]})
    assert message["text"] == "Pick one" and message["quick_replies"][0]["payload"] == "/affirm"
    assert message["metadata"]["speaker"] == "bot"


async def test_the_channel_follows_the_conversations_language(channel, store):
    sid = "socket-1"
    channel.sessions[sid] = conversation = uuid.uuid4().hex
    handled = await channel.handle_user_message(sid, {"message": "Ik wil graag een medewerker spreken", "session_id": conversation}, _collect(channel))
    assert handled and channel.language_of(conversation) == "nl"
    # A message that does not clearly say keeps the conversation's language.
    await channel.handle_user_message(sid, {"message": "ok", "session_id": conversation}, _collect(channel))
    assert channel.language_of(conversation) == "nl"
    [message] = await sent(channel, conversation, {"text": "Hallo", "utter_action": "utter_greet"})
    assert message["metadata"]["language"] == "nl"
    # A pushed message that says its language (the tracker's slot) wins, and is remembered.
    [pushed] = await sent(channel, conversation, {"text": "Hello", "handoff_role": "agent", "agent_name": "Piet", "language": "en"})
    assert pushed["metadata"]["language"] == "en" and channel.language_of(conversation) == "en"


async def test_the_output_of_a_customer_message_adds_the_metadata(channel, store):
    sid = "socket-2"
    channel.sessions[sid] = conversation = uuid.uuid4().hex
    received = []
    await channel.handle_user_message(sid, {"message": "hello there", "session_id": conversation}, _collect(channel, received))
    [message] = received
    assert isinstance(message.output_channel, HandoffSocketIOOutput)
    await message.output_channel.send_response(conversation, {"text": "Hi!", "utter_action": "utter_greet"})
    [(event, data)] = channel.emitted.pop(conversation)
    assert event == "bot_uttered" and data == {"text": "Hi!", "metadata": {
        "speaker": "bot", "agent_name": None, "handoff": "none", "notice": None, "language": "en",
    }}


async def test_a_message_too_long_is_a_notice_with_metadata(channel, store, monkeypatch):
    sid = "socket-3"
    channel.sessions[sid] = uuid.uuid4().hex
    assert not await channel.handle_user_message(sid, {"message": "x" * 100_000}, _collect(channel))
    [(event, data)] = channel.emitted.pop(sid)
    assert data["notice"] == "message_too_long" and data["metadata"]["speaker"] == "bot"


def _collect(channel, into=None):
    async def on_new_message(message):
        if into is not None:
            into.append(message)

    return on_new_message


async def test_a_resumed_session_is_told_its_handoff_state(channel, store):
    from handoff.server.socketio import STATE_EVENT, session_token

    conversation = uuid.uuid4().hex
    handoff = requested(store, conversation)
    store.mark_assigned(handoff.id, "Sanne")
    channel.remember_language(conversation, "nl")
    sid = channel.sio.manager.connect(uuid.uuid4().hex, "/")
    await channel.confirm_session(sid, {"session_id": conversation, "session_token": session_token(conversation)})
    events = channel.emitted.pop(sid)
    assert [name for name, _ in events] == ["session_token", "session_confirm", STATE_EVENT]
    assert events[-1][1] == {"handoff": "agent", "agent_name": "Sanne", "language": "nl"}
    # A new session has no state to tell.
    other = channel.sio.manager.connect(uuid.uuid4().hex, "/")
    await channel.confirm_session(other, {})
    assert [name for name, _ in channel.emitted.pop(other)] == ["session_token", "session_confirm"]
