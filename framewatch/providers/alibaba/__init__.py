"""Alibaba Cloud ApsaraVideo Live callbacks (docs/protocols/alibaba.md)."""
