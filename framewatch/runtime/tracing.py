"""One trace per frame, with OpenTelemetry: the callback's span at the ingress, a span per stage and per message,
a span per webhook POST, linked by the W3C `traceparent` the AMQP headers and the webhook request carry.

Off unless the standard OTEL_* variables ask for an OTLP export (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, or OTEL_TRACES_EXPORTER=otlp; OTEL_SDK_DISABLED=true wins). Off, nothing of
OpenTelemetry is imported and every call here is one flag test: the hot paths pay nothing for the feature.
The exporter reads the rest of the OTEL_* variables itself (headers, timeout, compression, certificates), and the
batch processor exports from its own thread, off the event loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

log = structlog.get_logger("framewatch.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_tracer: Any = None  # an opentelemetry Tracer once configured
_provider: Any = None
_propagator: Any = None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces to be exported by OTLP."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER")
    if exporter is not None and exporter.strip():
        return "otlp" in {name.strip().lower() for name in exporter.split(",")}
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    return _tracer is not None


def configure(role: str, environ: Mapping[str, str] | None = None) -> bool:
    """Start exporting if the environment asks for it; `role` names the service when OTEL_SERVICE_NAME does not."""
    global _tracer, _provider, _propagator
    environ = os.environ if environ is None else environ
    if _tracer is not None or not wanted(environ):
        return _tracer is not None
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol.strip() != "http/protobuf":
        log.warning("otlp_protocol_unsupported", protocol=protocol, using="http/protobuf")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from framewatch import __version__

    service = environ.get("OTEL_SERVICE_NAME") or f"framewatch-{role}"
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES (k8s pod, region...) to ours.
    _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service, "service.version": __version__}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("framewatch", __version__)
    _propagator = TraceContextTextMapPropagator()
    log.info("tracing_on", service=service)
    return True


def shutdown() -> None:
    """Export what is buffered, then stop (on the way out of a process, and between tests)."""
    global _tracer, _provider, _propagator
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = _propagator = None


class _Idle:
    """What a span is when tracing is off: attributes go nowhere."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def set_error(self, description: str) -> None:
        pass


class _Live:
    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None:
            self.span.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.span.set_attributes({key: value for key, value in attributes.items() if value is not None})

    def set_error(self, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_status(Status(StatusCode.ERROR, description))


IDLE = _Idle()


def current() -> _Idle | _Live:
    """The current span, to annotate with what is learnt inside it."""
    if _tracer is None:
        return IDLE
    from opentelemetry import trace

    return _Live(trace.get_current_span())


_KINDS = {"server": "SERVER", "consumer": "CONSUMER", "client": "CLIENT", "internal": "INTERNAL"}


@contextlib.contextmanager
def span(
    name: str, kind: str = "internal", parent: Mapping[str, Any] | None = None, **attributes: Any
) -> Iterator[_Idle | _Live]:
    """A span, current for the block: child of the `traceparent` in `parent` (a message's or request's headers)
    when it holds one, else of the current span. An exception escaping the block marks it failed."""
    if _tracer is None:
        yield IDLE
        return
    from opentelemetry.trace import SpanKind

    context = None
    if parent is not None and TRACEPARENT in parent:
        context = _propagator.extract({TRACEPARENT: str(parent[TRACEPARENT]), **_state(parent)})
    with _tracer.start_as_current_span(
        name,
        context=context,
        kind=getattr(SpanKind, _KINDS[kind]),
        attributes={key: value for key, value in attributes.items() if value is not None},
    ) as current:
        yield _Live(current)


def _state(headers: Mapping[str, Any]) -> dict[str, str]:
    return {TRACESTATE: str(headers[TRACESTATE])} if TRACESTATE in headers else {}


def inject(headers: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Add the current span's `traceparent` (and `tracestate`) to outgoing headers; no-op when tracing is off."""
    if _tracer is not None:
        _propagator.inject(headers)
    return headers
