"""The admin API at /api: the seeds' configuration actions, per account, with the providers' error codes."""
