"""`framewatch simulate`: plays the provider (screenshots, signed callbacks, retries) and the platform (a sink)."""
