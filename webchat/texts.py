"""The web chat's own words, in English and Dutch.

The page starts in the language the page asks for (``?lang=`` or ``<html lang>`` / ``data-lang``
of an embedding site), else the browser's (``navigator.languages``), and follows the
conversation's language once the messages say it (``metadata.language``, see docs/USING.md).
``{title}`` and ``{name}`` are filled in by the page.
"""

from __future__ import annotations

LANGUAGES = ("en", "nl")
DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "documentTitle": "{title} · Customer service chat",
        "assistant": "{title} assistant",
        "virtualAssistant": "Virtual assistant",
        "online": "Virtual assistant · online",
        "connecting": "Connecting…",
        "connectionLost": "Connection lost. Reconnecting…",
        "conversation": "Conversation",
        "introTitle": "Hi! How can we help?",
        "introText": (
            "Ask about your order, delivery, returns, payment or prices. A colleague from customer "
            "service can take over at any time: just ask for a person."
        ),
        "yourMessage": "Your message",
        "placeholder": "Type your message…",
        "send": "Send",
        "talkToPerson": "Talk to a person",
        "talkToPersonMessage": "I want to talk to a person",
        "startOver": "Start over",
        "you": "You",
        "customerService": "Customer service",
        "aColleague": "A colleague",
        "connectingTitle": "Connecting you to a colleague",
        "waitingStatus": "A colleague will join this chat shortly.",
        "agentStatus": "Customer service · {title}",
        "handedBack": "{name} handed the conversation back to the assistant.",
        "handedBackNoName": "Customer service handed the conversation back to the assistant.",
    },
    "nl": {
        "documentTitle": "{title} · Chat met de klantenservice",
        "assistant": "{title}-assistent",
        "virtualAssistant": "Virtuele assistent",
        "online": "Virtuele assistent · online",
        "connecting": "Verbinden…",
        "connectionLost": "Verbinding verbroken. Opnieuw verbinden…",
        "conversation": "Gesprek",
        "introTitle": "Hoi! Waarmee kunnen we je helpen?",
        "introText": (
            "Vraag het ons over je bestelling, de levering, retourneren, betalen of prijzen. Een "
            "medewerker van de klantenservice kan het gesprek altijd overnemen: vraag gewoon naar een medewerker."
        ),
        "yourMessage": "Je bericht",
        "placeholder": "Typ je bericht…",
        "send": "Verstuur",
        "talkToPerson": "Medewerker spreken",
        "talkToPersonMessage": "Ik wil een medewerker spreken",
        "startOver": "Opnieuw beginnen",
        "you": "Jij",
        "customerService": "Klantenservice",
        "aColleague": "Een medewerker",
        "connectingTitle": "We verbinden je met een medewerker",
        "waitingStatus": "Er komt zo een medewerker bij dit gesprek.",
        "agentStatus": "Klantenservice · {title}",
        "handedBack": "{name} heeft het gesprek teruggegeven aan de assistent.",
        "handedBackNoName": "De klantenservice heeft het gesprek teruggegeven aan de assistent.",
    },
}


def page_language(asked: str | None) -> str | None:
    """The language a ``?lang=`` asks for (``en``, ``nl-NL`` → ``nl``, ...), or None."""
    code = (asked or "").strip().lower()[:2]
    return code if code in LANGUAGES else None


def text(language: str, key: str, **values: str) -> str:
    return TEXTS[language][key].format(**values)
