"""The fetch stage: download each screenshot safely, thumbnail it, store both."""
