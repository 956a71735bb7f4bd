"""Alibaba Cloud ApsaraVideo Live callbacks (SPEC §7-8)."""
