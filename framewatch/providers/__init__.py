"""One package per streaming cloud (its callbacks, signatures, event ids and formats) on a small base; registry.py
names them."""
