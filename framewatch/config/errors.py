"""Configuration refusals, with the clouds' error codes and HTTP statuses
(docs/protocols/tencent.md §6, docs/protocols/alibaba.md §4)."""


class ConfigError(Exception):
    """A refused configuration change. `code` is the provider's error code, e.g. `InvalidNotifyUrl.Unsafe`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
