"""Reading a section of handoff_rules.yml over its defaults (no Rasa imports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merged_section(name: str, data: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` over ``defaults``; :class:`ValueError` naming the section for a key it does not know."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(defaults)}")
    return {**defaults, **data}
