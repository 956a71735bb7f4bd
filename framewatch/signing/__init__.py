"""Signature algorithms, each written once: Tencent CSS's `MD5(key + t)` (its callbacks and framewatch's
deliveries), Tencent Cloud API 3.0's TC3-HMAC-SHA256 (the cloud-compatible API, the IMS moderation backend) and
Standard Webhooks (the deliver stage, the simulator's platform). Pure functions: no I/O, no settings."""
