"""The admin API at /api: the clouds' configuration actions, per account, with the providers' error codes."""
