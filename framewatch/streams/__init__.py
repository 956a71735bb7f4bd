"""Live streams: their state, recent frames, covers and the flagged frames people review."""
