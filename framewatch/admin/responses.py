"""Responses shaped like the clouds' documents: JSON by default, XML with Format=XML; errors carry Code and HostId."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import orjson
from aiohttp import web

# The element name of one item of a list in XML (JSON has plain arrays).
_ITEM = {"Templates": "Template", "Rules": "Rule"}
# Characters XML 1.0 cannot carry at all: dropped, so that an answer always parses (input refuses them anyway).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(parent: ElementTree.Element, name: str, value: Any) -> None:
    node = ElementTree.SubElement(parent, name)
    if isinstance(value, dict):
        for key, item in value.items():
            _xml(node, key, item)
    elif isinstance(value, list):
        for item in value:
            _xml(node, _ITEM.get(name, "Item"), item)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = _NOT_XML.sub("", str(value))


def render(root: str, body: dict[str, Any], xml: bool, status: int = 200) -> web.Response:
    if not xml:
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    element = ElementTree.Element(root)
    for key, value in body.items():
        _xml(element, key, value)
    text = b'<?xml version="1.0" encoding="UTF-8" ?>\n' + ElementTree.tostring(element, encoding="utf-8")
    return web.Response(status=status, body=text, content_type="application/xml")


def success(action: str, request_id: str, fields: dict[str, Any], xml: bool) -> web.Response:
    return render(f"{action}Response", {"RequestId": request_id, **fields}, xml)


def error(
    code: str, message: str, status: int, request_id: str, host: str, xml: bool, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"RequestId": request_id, "HostId": host, "Code": code, "Message": message}
    response = render("Error", body, xml, status)
    response.headers.update(headers or {})
    return response
