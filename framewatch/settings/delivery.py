"""The deliver stage: its slots, its share per receiver, and the retry policy (the provider's own by default)."""

from pydantic import Field

from framewatch.settings.base import Group, group


class DeliverySettings(Group):
    model_config = group("DELIVER_")

    allow_private: bool = False
    concurrency: int = Field(64, gt=0)
    # One slow receiver holds at most this many of the stage's slots; its other deliveries wait in a delay queue.
    host_concurrency: int = Field(16, gt=0)
    timeout: float = Field(10.0, gt=0)
    # The provider's own policy by default: screenshots 5 tries 2 minutes apart, other kinds 12 tries 1 minute apart.
    screenshot_tries: int = Field(5, ge=1)
    screenshot_interval: float = Field(120.0, gt=0)
    tries: int = Field(12, ge=1)
    interval: float = Field(60.0, gt=0)
