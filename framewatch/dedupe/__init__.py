"""Duplicate suppression within a window, so the provider's retries of one event are queued once."""
