#!/usr/bin/env python3
"""An OTLP/gRPC sink built on grpcio and the opentelemetry-proto package.

    sink_server.py [--out FILE] [--refuse-gzip]

Implements TraceService, MetricsService and LogsService Export on 127.0.0.1:0. gzip-compressed
requests are accepted, unless --refuse-gzip: then they fail with UNIMPLEMENTED (grpcio does not
show a request's grpc-encoding to the handler, so this is how a test checks none was used).
Prints the chosen port alone on the first line of stdout. Then, for every request received and
before answering it, appends one JSON line (to FILE, else stdout):

    {"signal": "traces"|"metrics"|"logs",
     "metadata": {key: value, ...},               # the request's metadata (headers)
     "request": {...},                            # json_format.MessageToJson(request), parsed
     "protobuf_hex": "..."}                       # request.SerializeToString(), hex

Exits (after a graceful stop) on stdin EOF or SIGTERM.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def record(self, signal_name, request, context):
        line = json.dumps(
            {
                "signal": signal_name,
                "metadata": {k: v for k, v in context.invocation_metadata() if isinstance(v, str)},
                "request": json.loads(json_format.MessageToJson(request)),
                "protobuf_hex": request.SerializeToString().hex(),
            },
            sort_keys=True,
        )
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink):
        self.sink = sink

    def Export(self, request, context):
        self.sink.record("traces", request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink):
        self.sink = sink

    def Export(self, request, context):
        self.sink.record("metrics", request, context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink):
        self.sink = sink

    def Export(self, request, context):
        self.sink.record("logs", request, context)
        return logs_service_pb2.ExportLogsServiceResponse()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="file to append request lines to (default stdout)")
    ap.add_argument("--refuse-gzip", action="store_true", help="accept only uncompressed requests")
    args = ap.parse_args()
    out = open(args.out, "a", encoding="utf-8") if args.out else sys.stdout

    sink = Sink(out)
    # Bit 0 of the bitset is identity, bit 1 deflate, bit 2 gzip.
    options = [("grpc.compression_enabled_algorithms_bitset", 1)] if args.refuse_gzip else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(sink), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(sink), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(sink), server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        print("could not bind 127.0.0.1:0", file=sys.stderr)
        sys.exit(1)
    server.start()
    print(port, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():
        try:
            while sys.stdin.read(65536):
                pass
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(3600):
        pass
    server.stop(grace=5).wait()
    with sink.lock:
        out.flush()


if __name__ == "__main__":
    main()
