"""The moderation stage: a verdict for every stored frame, from a local model or a cloud API."""
