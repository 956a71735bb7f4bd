"""Download one screenshot: allowed hosts only, checked addresses, few redirects, a byte cap, streamed."""

from __future__ import annotations

import aiohttp
from yarl import URL

from framewatch.runtime.http import GuardedClient, UnsafeDestination, retry_after
from workers.failures import Permanent, Transient

CHUNK = 64 * 1024


async def download(client: GuardedClient, url: str, max_bytes: int) -> bytes:
    """The body of a 200 answer. Raises Permanent (unsafe, 404, too large) or Transient (timeouts, 5xx, resets)."""
    try:
        target = URL(url, encoded="%" in url)
    except ValueError as exc:
        raise Permanent("malformed_url", str(exc)) from None
    try:
        for hops in range(client.max_redirects + 1):
            async with client.request("GET", target) as response:
                next_target = client.redirect_target(response, hops)
                if next_target is not None:
                    target = next_target
                    continue
                if response.status != 200:
                    if response.status in (408, 429) or response.status >= 500:
                        raise Transient(f"http_{response.status}", str(target), retry_after(response))
                    raise Permanent(f"http_{response.status}", str(target))
                if response.content_length is not None and response.content_length > max_bytes:
                    raise Permanent("too_large", f"Content-Length {response.content_length} > {max_bytes}")
                if response.content_length is not None:  # within the cap (above); aiohttp reads no more than it
                    return await response.read()
                body = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise Permanent("too_large", f"more than {max_bytes} bytes")
                return bytes(body)
        raise Permanent("too_many_redirects", str(target))  # pragma: no cover - redirect_target raises first
    except UnsafeDestination as exc:
        raise Permanent(exc.reason, exc.detail) from None
    except aiohttp.ClientResponseError as exc:
        raise Transient("bad_response", str(exc)) from None
    except aiohttp.InvalidURL as exc:
        raise Permanent("malformed_url", str(exc)) from None
    except TimeoutError:
        raise Transient("timeout", str(target)) from None
    except aiohttp.ClientPayloadError as exc:
        raise Transient("truncated", str(exc)) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Transient("connection_error", f"{type(exc).__name__}: {exc}") from None
