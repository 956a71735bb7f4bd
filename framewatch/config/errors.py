"""Configuration refusals, with the seeds' error codes and HTTP statuses (SPEC.md §6)."""


class ConfigError(Exception):
    """A refused configuration change. `code` is the provider's error code, e.g. `InvalidNotifyUrl.Unsafe`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
