"""The old import path of :class:`handoff.server.nlu_backstop.ExplicitRequestBackstop`.

A trained model names its components by import path; models trained before the component moved
to ``handoff.server`` name this one. Remove this module once every model in use was trained with
the current ``config.yml``.
"""

from handoff.server.nlu_backstop import ExplicitRequestBackstop

__all__ = ["ExplicitRequestBackstop"]
