"""NLU pipeline component: an explicit request for a person is ``request_human``, always.

The intent classifier learns requests for a person from examples, and misses some: a request that
opens with a complaint about the bot, a Dutch question about how to reach someone, a typo it never
saw. This component runs after the classifiers (``config.yml``) and sets the intent to
``request_human`` with confidence 1.0 when the ``explicit_request`` section of
``handoff_rules.yml`` says the message asks for a person (:mod:`handoff.explicit_request`), so the
rule "request_human → action_handoff" hands off at once. The parse result carries
``explicit_request`` (why it matched) for the logs and the evaluation. The other way round, a
classifier's ``request_human`` in a message without both a word for a person and a word of
reaching or wishing gets a lower confidence (``unsupported_request`` in the parse result), so the assistant asks
before it hands off. It learns nothing: editing
the section needs no new training, only a restart of the Rasa server (the file is read when it
changes on disk).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from handoff.triggers import RulesError, load_rules

logger = logging.getLogger(__name__)

REQUEST_INTENT = "request_human"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ExplicitRequestBackstop(GraphComponent, IntentClassifier):
    """Overrides the predicted intent with ``request_human`` for an explicit request."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"intent": REQUEST_INTENT}

    def __init__(self, config: dict[str, Any]) -> None:
        self.intent = config.get("intent") or REQUEST_INTENT

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ExplicitRequestBackstop:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        try:
            matcher = load_rules().explicit_request
        except RulesError:
            # make validate reports it; the classifier's own prediction stands meanwhile.
            logger.exception("handoff_rules.yml could not be read: no keyword backstop for this message")
            return messages
        for message in messages:
            match = matcher.match(message.get(TEXT))
            if match is None:
                self._check_support(message, matcher)
                continue
            previous = (message.get(INTENT) or {}).get("name")
            if previous != self.intent:
                logger.debug("explicit request for a person (%s) overrides intent %s", match.kind, previous)
            message.set("explicit_request", {"kind": match.kind, "words": list(match.words), "intent_before": previous}, add_to_output=True)
            chosen = {"name": self.intent, "confidence": 1.0}
            message.data[INTENT] = chosen
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != self.intent]
            message.data[INTENT_RANKING_KEY] = [chosen, *ranking]
        return messages

    def _check_support(self, message: Message, matcher) -> None:
        """A classifier's request for a person in a message without both a word for a person and
        a word of reaching or wishing ("wat is de temperatuur", "what's the plural of person?") is
        not trusted: its confidence drops to the
        section's ``unsupported_confidence``, so the customer is asked before a handoff."""
        intent = message.get(INTENT) or {}
        confidence = float(intent.get("confidence") or 0.0)
        if intent.get("name") != self.intent or confidence <= matcher.unsupported_confidence or matcher.evidence(message.get(TEXT)):
            return
        lowered = {"name": self.intent, "confidence": matcher.unsupported_confidence}
        message.data[INTENT] = lowered
        message.data[INTENT_RANKING_KEY] = [lowered, *[r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != self.intent]]
        message.set("unsupported_request", {"confidence_before": round(confidence, 3)}, add_to_output=True)
