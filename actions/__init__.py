"""Custom actions of the assistant (run by ``python -m handoff.server.action_server``)."""

from handoff.settings import SettingsError, load_settings

# The action server imports this package when it starts: refuse to start there, with a clear
# message, when the settings are unusable (e.g. no HELPDESK_SECRET outside development), rather
# than failing at the first handoff.
try:
    load_settings()
except SettingsError as exc:
    raise SystemExit(f"action server: {exc}") from None
