"""The review console's sessions and the origin its forms must come from."""

from pydantic import Field

from framewatch.settings.base import Group, group


class ConsoleSettings(Group):
    model_config = group("CONSOLE_")

    # How long a sign-in lasts, and whether its cookie is sent over HTTPS only (set it when a TLS proxy serves the
    # console; unset, the cookie is Secure when the request came over HTTPS).
    session_ttl: int = Field(12 * 3600, gt=0)
    secure_cookie: bool | None = None
    # Where browsers reach the console, as scheme://host[:port] (https://review.example.com behind a TLS proxy): the
    # Origin every form must carry. Unset: the scheme and Host of the request as framewatch received it.
    public_origin: str | None = None
