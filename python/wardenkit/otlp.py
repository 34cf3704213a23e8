"""OTLP/gRPC receivers made of the official generated classes (`opentelemetry-proto` + `grpcio`):

- `Receiver`: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, keeping every span it
  is sent. Envoy's OpenTelemetry tracer exports here in `make run` (spans filed as JSON lines) and
  in the tracing e2e test (spans kept in memory).
- `LogsCollector`: `opentelemetry.proto.collector.logs.v1.LogsService/Export`, keeping every
  request as parsed by the official `ExportLogsServiceRequest` (the receipt writer's export, in
  the e2e tests that check it field by field).

    python -m wardenkit.otlp --listen 127.0.0.1:4319 --out .run/traces.jsonl

One JSON object per span: trace_id / span_id / parent_span_id (hex), name, kind, attributes,
resource attributes, scope name, status code.
"""
from __future__ import annotations

import argparse
import json
import signal
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


def _value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def _attributes(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


def span_dict(span, resource: dict, scope: str) -> dict:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": trace_pb2.Span.SpanKind.Name(span.kind),
        "attributes": _attributes(span.attributes),
        "resource": resource,
        "scope": scope,
        "status": trace_pb2.Status.StatusCode.Name(span.status.code),
    }


class _Server:
    """A gRPC server for one generated servicer (`add` registers it), on `listen` (port 0: any)."""

    def __init__(self, add, listen: str):
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        add(self, self.server)
        self.port = self.server.add_insecure_port(listen)
        if not self.port:
            raise RuntimeError(f"cannot listen on {listen}")

    def start(self):
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait(timeout=10)


class Receiver(_Server, trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span received; with `out`, also appends each as a JSON line to that file."""

    def __init__(self, listen: str = "127.0.0.1:0", out: str | None = None):
        self._spans: list[dict] = []
        self._out = out
        super().__init__(trace_service_pb2_grpc.add_TraceServiceServicer_to_server, listen)

    def Export(self, request, context):  # noqa: N802 (the generated method name)
        spans = [span_dict(s, _attributes(rs.resource.attributes), ss.scope.name)
                 for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        with self._lock:
            self._spans.extend(spans)
            if self._out and spans:
                with open(self._out, "a", encoding="utf-8") as f:
                    f.write("".join(json.dumps(s, sort_keys=True) + "\n" for s in spans))
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[dict]:
        with self._lock:
            return list(self._spans)


class LogsCollector(_Server, logs_service_pb2_grpc.LogsServiceServicer):
    """An OTLP logs collector: keeps every request it is sent (already parsed by the official
    `ExportLogsServiceRequest.FromString`) and answers with an empty (all accepted)
    `ExportLogsServiceResponse`."""

    def __init__(self, listen: str = "127.0.0.1:0"):
        self._requests: list[logs_service_pb2.ExportLogsServiceRequest] = []
        super().__init__(logs_service_pb2_grpc.add_LogsServiceServicer_to_server, listen)

    def Export(self, request, context):  # noqa: N802 (the generated method name)
        with self._lock:
            self._requests.append(request)
        return logs_service_pb2.ExportLogsServiceResponse()

    def requests(self) -> list[logs_service_pb2.ExportLogsServiceRequest]:
        with self._lock:
            return list(self._requests)

    def records(self) -> list:
        return [rec for req in self.requests() for rl in req.resource_logs for sl in rl.scope_logs
                for rec in sl.log_records]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="host:port")
    ap.add_argument("--out", required=True, help="JSON lines file the spans are appended to")
    args = ap.parse_args()
    receiver = Receiver(args.listen, args.out).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    receiver.stop()


if __name__ == "__main__":
    main()
