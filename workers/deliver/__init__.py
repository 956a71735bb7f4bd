"""The delivery stage: every event and verdict to the platform's own URLs, signed, retried, dead-lettered."""
