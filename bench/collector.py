#!/usr/bin/env python3
"""A trace collector for the benchmarks: OTLP/HTTP on loopback, each export decoded with the protocol's own
messages as a collector does, the spans counted and dropped. Prints the count when stopped (SIGTERM).

    python bench/collector.py PORT
"""

from __future__ import annotations

import signal
import sys

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ANSWER = ExportTraceServiceResponse().SerializeToString()
spans = 0


async def export(request: web.Request) -> web.Response:
    global spans
    decoded = ExportTraceServiceRequest.FromString(await request.read())
    spans += sum(len(scope.spans) for resource in decoded.resource_spans for scope in resource.scope_spans)
    return web.Response(body=ANSWER, content_type="application/x-protobuf")


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    finally:
        print(f"spans {spans}", flush=True)


if __name__ == "__main__":
    main()
