"""Runtime shared by every service: settings, logging, metrics, the broker connection."""
