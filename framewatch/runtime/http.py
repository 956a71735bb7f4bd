"""An outbound HTTP client that only reaches hosts framewatch may talk to on a user's behalf (SSRF defence).

Used for downloading screenshots and for delivering webhooks. Every URL is checked before each request (scheme, host
pattern, IP literal) and every address a host name resolves to is checked at connect time, inside the connector,
so a redirect or a DNS answer that changed since the last check cannot reach a private address either.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from framewatch.runtime.netguard import address_allowed

# Never a legitimate source or receiver, even where private addresses are allowed (local demos and tests).


class UnsafeDestination(Exception):
    """The URL or an address it resolves to is not allowed. Deliberately not an OSError: aiohttp lets it through."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def retry_after(response: aiohttp.ClientResponse) -> float | None:
    """Seconds the server asked us to wait (only the delta-seconds form; a date is ignored)."""
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def loggable(url: str | URL) -> str:
    """The URL without query, fragment or credentials: receivers put tokens there."""
    parsed = URL(url) if isinstance(url, str) else url
    return str(parsed.with_query(None).with_fragment(None).with_user(None))


class GuardedResolver(AbstractResolver):
    """Resolves like the system does, then refuses the whole answer if any address is not allowed."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%")[0])
            if not address_allowed(address, self.allow_private):
                raise UnsafeDestination("unsafe_address", f"{host} resolves to {address}")
        return results

    async def close(self) -> None:
        await self._resolver.close()


class GuardedClient:
    """aiohttp session with pooled connections, timeouts, and the checks above on every hop."""

    def __init__(
        self,
        *,
        allow_private: bool,
        allowed_hosts: list[str] | None = None,  # None: any host name
        connect_timeout: float,
        total_timeout: float,
        limit: int = 100,
        max_redirects: int = 0,
        user_agent: str = "framewatch",
    ) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = [pattern.lower() for pattern in allowed_hosts] if allowed_hosts is not None else None
        self.max_redirects = max_redirects
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
        self._limit = limit
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.allow_private), limit=self._limit, ttl_dns_cache=30
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"User-Agent": self._user_agent}
            )
        return self._session

    def check_url(self, url: URL) -> None:
        if url.scheme not in ("http", "https"):
            raise UnsafeDestination("unsupported_scheme", f"{url.scheme!r} is not http or https")
        host = (url.host or "").lower().rstrip(".")
        if not host:
            raise UnsafeDestination("malformed_url", "no host")
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None  # a name: its addresses are checked when the connector resolves it
        if literal is not None and not address_allowed(literal, self.allow_private):
            raise UnsafeDestination("unsafe_address", f"{literal} is not a public address")
        if self.allowed_hosts is not None and not any(fnmatch.fnmatchcase(host, p) for p in self.allowed_hosts):
            raise UnsafeDestination("host_not_allowed", f"{host} is not in the allowed hosts")

    def request(self, method: str, url: str | URL, **kwargs: Any) -> aiohttp.client._RequestContextManager:
        """One request, no automatic redirects (callers follow them with `follow`)."""
        url = URL(url) if isinstance(url, str) else url
        self.check_url(url)
        return self.session.request(method, url, allow_redirects=False, **kwargs)

    def redirect_target(self, response: aiohttp.ClientResponse, hops: int) -> URL | None:
        """Where a redirect points, checked; None when the response is not a redirect."""
        if response.status not in (301, 302, 303, 307, 308):
            return None
        location = response.headers.get("Location")
        if not location:
            raise UnsafeDestination("bad_redirect", f"{response.status} without Location")
        if hops >= self.max_redirects:
            raise UnsafeDestination("too_many_redirects", f"more than {self.max_redirects}")
        target = response.url.join(URL(location))
        self.check_url(target)
        return target

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
