"""Tencent Cloud CSS callbacks (SPEC §1-5)."""
