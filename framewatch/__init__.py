"""framewatch: a callback gateway and frame pipeline for live-streaming platforms."""

__version__ = "0.1.0"
