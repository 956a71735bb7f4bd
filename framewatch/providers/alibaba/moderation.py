"""Alibaba's automated review results (智能审核, docs/protocols/alibaba.md §3): one POST per frame the cloud's
review flags, the frame saved to the customer's OSS bucket. Read into the neutral verdict, like Tencent's 317.

Lenient where the document is loose: `Rate` as a number or a numeric string, `Suggestion` in any case, `Extent`
absent; strict where a value becomes a URL (`OssEndpoint`, `OssBucket`, `OssObject`) or a key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from framewatch.providers.refusals import Reason, Refused
from schemas.messages import Screenshot, Suggestion, Verdict

SOURCE = "alibaba"
EVENT_TYPE = "moderation"
_SEVERITY: dict[str, tuple[int, Suggestion]] = {"pass": (0, "Pass"), "review": (1, "Review"), "block": (2, "Block")}
# A bucket and an endpoint are host names: nothing else may reach the URL's authority.
_HOST_PART = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
# The entries of one result that are read: more are kept in the body, not scored.
MAX_ENTRIES = 64


def is_moderation(body: Mapping[str, Any]) -> bool:
    """The shape of a review result: the stream's names and the `Result` list, capitalised as the cloud writes."""
    return "DomainName" in body and "Result" in body


def frame_url(body: Mapping[str, Any], text: Any) -> str:
    """https://{OssBucket}.{OssEndpoint}/{OssObject}: where the cloud saved the judged frame."""
    endpoint, bucket, key = (text(body, name) for name in ("OssEndpoint", "OssBucket", "OssObject"))
    for name, value in (("OssEndpoint", endpoint), ("OssBucket", bucket)):
        if not _HOST_PART.fullmatch(value.lower()):
            raise Refused(Reason.InvalidEvent, f"{name}: not a host name")
    return f"https://{bucket.lower()}.{endpoint.lower()}/{quote(key.lstrip('/'), safe='/-_.~')}"


def _rate(entry: Mapping[str, Any]) -> float:
    value = entry.get("Rate", 0)
    if isinstance(value, bool):
        raise Refused(Reason.InvalidEvent, "Result[].Result[].Rate: must be a number")
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise Refused(Reason.InvalidEvent, "Result[].Result[].Rate: must be a number") from None
    if not 0 <= rate <= 100:
        raise Refused(Reason.InvalidEvent, "Result[].Result[].Rate: must be 0 to 100")
    return rate


def verdict(body: Mapping[str, Any]) -> Verdict:
    """The worst entry decides (block, then review, then pass; the higher rate among equals); every label scored."""
    groups = body.get("Result")
    if not isinstance(groups, list):
        raise Refused(Reason.InvalidEvent, "Result: must be a list")
    entries = [
        entry
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("Result"), list)
        for entry in group["Result"]
        if isinstance(entry, dict)
    ][:MAX_ENTRIES]
    if not entries:
        raise Refused(Reason.InvalidEvent, "Result: no result in it")
    judged: list[tuple[int, float, Suggestion, str, str]] = []
    scores: dict[str, float] = {}
    for entry in entries:
        suggestion = entry.get("Suggestion")
        if not isinstance(suggestion, str) or suggestion.lower() not in _SEVERITY:
            raise Refused(Reason.InvalidEvent, "Result[].Result[].Suggestion: must be pass, review or block")
        severity, neutral = _SEVERITY[suggestion.lower()]
        label, scene = entry.get("Label"), entry.get("Scene", "")
        if not isinstance(label, str) or not label or len(label) > 64 or not isinstance(scene, str) or len(scene) > 64:
            raise Refused(Reason.InvalidEvent, "Result[].Result[].Label and Scene: short strings")
        rate = _rate(entry)
        scores[label] = max(rate, scores.get(label, 0.0))
        judged.append((severity, rate, neutral, label, scene))
    _, rate, suggestion, label, scene = max(judged, key=lambda item: (item[0], item[1]))
    return Verdict(
        suggestion=suggestion,
        label=label,
        sub_label=scene,
        score=round(rate),
        scores=scores,
        source=SOURCE,
    )


def capture_time(key: str) -> int:
    """When the frame was taken: the Unix time its object is named with (seconds or milliseconds, as the
    document's sample), else now (the cloud posts a result within seconds of the frame)."""
    stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
    if stem.isdecimal() and len(stem) in (10, 13):
        return int(stem[:10])
    return int(time.time())


def screenshot(body: Mapping[str, Any], text: Any) -> Screenshot:
    key = text(body, "OssObject")
    return Screenshot(image_url=frame_url(body, text), capture_time=capture_time(key))
