"""The Rasa side of a handoff's life: taking the conversation back, and pushing a message to the
customer from outside a turn. Both run under the conversation's lock.

The pure parts (opening, pausing, end causes) are in :mod:`handoff.lifecycle`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel
from rasa.shared.core.events import ConversationResumed, Event
from rasa.shared.core.trackers import DialogueStateTracker

#: Triggered after the resume; a rule maps it to ``action_handoff_resume``.
HANDBACK_INTENT = "EXTERNAL_handback"


@contextlib.asynccontextmanager
async def locked_tracker(agent: Any, conversation_id: str) -> AsyncIterator[DialogueStateTracker]:
    """The conversation's tracker, with its lock held until the block ends (no turn runs
    meanwhile, in this process or, with a Redis lock store, in another)."""
    async with agent.lock_store.lock(conversation_id):
        yield await agent.processor.get_tracker(conversation_id)


def language_of(tracker: DialogueStateTracker) -> dict[str, str]:
    """``{"language": ...}`` from the conversation's ``language`` slot, for the metadata of a pushed
    message (the channel shows it in that language); empty when the slot is not set."""
    language = tracker.get_slot("language") if "language" in tracker.slots else None
    return {"language": language} if isinstance(language, str) and language else {}


async def push(agent: Any, tracker: DialogueStateTracker, output: OutputChannel, event: Event) -> None:
    """Add a bot message to the conversation and send it to the customer's channel.

    The conversation's lock must be held (:func:`locked_tracker`).
    """
    tracker.update(event)
    await agent.processor.execute_side_effects([event], tracker, output)
    await agent.processor.save_tracker(tracker)


async def take_back(agent: Any, tracker: DialogueStateTracker, output: OutputChannel) -> None:
    """Un-pause and let ``action_handoff_resume`` pick up (it reads how the handoff ended).

    The conversation's lock must be held. Resume comes first: ``trigger_intent`` does nothing while
    a conversation is paused.
    """
    tracker.update(ConversationResumed())
    await agent.processor.trigger_external_user_uttered(HANDBACK_INTENT, None, tracker, output)


def output_channel_for(app: Any, tracker: DialogueStateTracker) -> OutputChannel:
    """The output channel of the input channel the customer last wrote on (as Rasa's
    ``output_channel=latest``), or a collecting one when that channel cannot take pushes."""
    latest = tracker.get_latest_input_channel()
    for channel in getattr(app.ctx, "input_channels", None) or []:
        if channel.name() == latest:
            output = channel.get_output_channel()
            if output is not None:
                return output
    return CollectingOutputChannel()
