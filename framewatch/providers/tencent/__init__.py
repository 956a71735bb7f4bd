"""Tencent Cloud CSS callbacks (docs/protocols/tencent.md)."""
