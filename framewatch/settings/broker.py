"""RabbitMQ: where it is, the deployment's namespace in it, and how long a publish may wait for its confirm."""

from typing import Literal

from pydantic import Field, SecretStr

from framewatch.settings.base import Group


class BrokerSettings(Group):
    # Comma-separated for a cluster: every process tries the nodes in turn.
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@localhost:5672/")
    # Prefix of every exchange and queue, so several deployments (or test runs) can share a vhost.
    namespace: str = "framewatch"
    # Bound on a publisher confirm; past it the callback is answered 503 and the provider retries.
    publish_timeout: float = Field(3.0, gt=0)
    # `confirms`: framewatch's confirming connection (broker/confirms.py); `aio-pika`: aio-pika's own publisher
    # confirms, the mainstream client, at about six times the CPU per publish (bench/publish.py).
    publisher: Literal["confirms", "aio-pika"] = "confirms"
