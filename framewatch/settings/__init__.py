"""Settings: FRAMEWATCH_* environment variables, grouped by concern (framewatch/settings/process.py)."""

from framewatch.settings.process import Settings, get_settings

__all__ = ["Settings", "get_settings"]
