#!/usr/bin/env python3
"""Sends traces, metrics and logs with the OpenTelemetry Python SDK and its OTLP exporters.

    send.py --protocol grpc|http --endpoint HOST:PORT [--compression none|gzip]

Used by tests/it/interop.rs. Builds spans (attributes of every type, events, links, an error
status, a parent/child pair, a remote parent with a trace state), metrics (counter, up-down
counter, histogram with explicit buckets, observable gauge) and logs (through a LoggerProvider's
logger and through the logging module's handler), force-flushes and shuts the providers down.

Every export goes through a wrapper that keeps the SDK objects handed to the exporter and its
result. Any failed export makes the script exit 1. Otherwise it prints to stdout one JSON document
describing exactly what was exported, built from the SDK objects (not from the protobuf encoding):

    {"traces": [{"resource": R, "scope": S, "span": {...}}, ...],
     "metrics": [{"resource": R, "scope": S, "metric": {...}, "point": {...}}, ...],
     "logs": [{"resource": R, "scope": S, "record": {...}}, ...]}

R = {"attributes": A, "schema_url": str}; S = {"name", "version", "attributes": A, "schema_url"};
A = {key: V}; V is one of {"string": s}, {"bool": b}, {"int": i}, {"double": f}, {"bytes": hex},
{"array": [V...]}, {"kvlist": A}, {"empty": null}. Ids are lowercase hex ("" when absent).
"""

import argparse
import json
import logging
import sys
import threading

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    MetricExportResult,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace import TraceFlags, TraceState

SCOPE_NAME = "sluice.interop.send"
SCOPE_VERSION = "1.2.3"
SCOPE_SCHEMA = "https://opentelemetry.io/schemas/1.26.0"
RESOURCE_SCHEMA = "https://opentelemetry.io/schemas/1.25.0"

# Attribute values of every type the SDK accepts (extended attributes: bytes, maps, nested
# arrays, None). Doubles are exactly representable so decimal text round-trips bit for bit.
EVERY_TYPE = {
    "str": "héllo wörld",
    "str.empty": "",
    "bool.true": True,
    "bool.false": False,
    "int": 42,
    "int.negative": -7,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "double": 3.25,
    "double.negative": -1024.0625,
    "double.zero": 0.0,
    "bytes": b"\x00\x01\xfe\xff",
    "array.str": ["a", "b", ""],
    "array.bool": [True, False],
    "array.int": [1, -2, 3],
    "array.double": [1.5, -2.25],
    "array.empty": [],
    "array.mixed": ["x", 1, 2.5, True],
    "map": {"inner.str": "v", "inner.int": 9, "inner.array": [1, 2], "inner.map": {"deep": True}},
    "empty": None,
}


def typed(v):
    """The description of one AnyValue, as the SDK holds it."""
    if v is None:
        return {"empty": None}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"double": v}
    if isinstance(v, str):
        return {"string": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, dict) or hasattr(v, "items"):
        return {"kvlist": attrs(v)}
    if isinstance(v, (list, tuple)):
        return {"array": [typed(x) for x in v]}
    raise TypeError(f"cannot describe {type(v)}: {v!r}")


def attrs(a):
    return {str(k): typed(v) for k, v in (a or {}).items()}


def trace_id(i):
    return format(i, "032x") if i else ""


def span_id(i):
    return format(i, "016x") if i else ""


def resource_desc(r):
    return {"attributes": attrs(r.attributes), "schema_url": r.schema_url or ""}


def scope_desc(s):
    if s is None:
        return None
    return {
        "name": s.name,
        "version": s.version or "",
        "attributes": attrs(s.attributes),
        "schema_url": s.schema_url or "",
    }


def span_flags(parent):
    # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus ..._IS_REMOTE_MASK for a remote parent.
    return 0x100 | (0x200 if parent is not None and parent.is_remote else 0)


def describe_span(s):
    ctx = s.get_span_context()
    return {
        "resource": resource_desc(s.resource),
        "scope": scope_desc(s.instrumentation_scope),
        "span": {
            "trace_id": trace_id(ctx.trace_id),
            "span_id": span_id(ctx.span_id),
            "parent_span_id": span_id(s.parent.span_id) if s.parent else "",
            "trace_state": ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()),
            "flags": span_flags(s.parent),
            "name": s.name,
            "kind": s.kind.name.lower(),
            "start_time_unix_nano": s.start_time,
            "end_time_unix_nano": s.end_time,
            "attributes": attrs(s.attributes),
            "events": [
                {"name": e.name, "time_unix_nano": e.timestamp, "attributes": attrs(e.attributes)}
                for e in s.events
            ],
            "links": [
                {
                    "trace_id": trace_id(l.context.trace_id),
                    "span_id": span_id(l.context.span_id),
                    "trace_state": ",".join(f"{k}={v}" for k, v in l.context.trace_state.items()),
                    "flags": span_flags(l.context),
                    "attributes": attrs(l.attributes),
                }
                for l in s.links
            ],
            "status": {"code": s.status.status_code.name.lower(), "message": s.status.description or ""},
        },
    }


def describe_metrics(data):
    out = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                metric = {"name": m.name, "description": m.description or "", "unit": m.unit or ""}
                d = m.data
                if isinstance(d, Sum):
                    metric.update(
                        kind="sum",
                        monotonic=d.is_monotonic,
                        temporality=d.aggregation_temporality.name.lower(),
                    )
                elif isinstance(d, Gauge):
                    metric.update(kind="gauge")
                elif isinstance(d, Histogram):
                    metric.update(kind="histogram", temporality=d.aggregation_temporality.name.lower())
                else:
                    raise TypeError(f"unexpected metric data {type(d)}")
                for p in d.data_points:
                    point = {
                        "attributes": attrs(p.attributes),
                        "start_time_unix_nano": p.start_time_unix_nano or 0,
                        "time_unix_nano": p.time_unix_nano,
                    }
                    if isinstance(d, Histogram):
                        point.update(
                            count=p.count,
                            sum=float(p.sum),
                            bucket_counts=list(p.bucket_counts),
                            explicit_bounds=[float(b) for b in p.explicit_bounds],
                            min=float(p.min),
                            max=float(p.max),
                        )
                    else:
                        point["value"] = typed(p.value)
                    out.append(
                        {
                            "resource": resource_desc(rm.resource),
                            "scope": scope_desc(sm.scope),
                            "metric": metric,
                            "point": point,
                        }
                    )
    return out


def describe_log(r):
    lr = r.log_record
    return {
        "resource": resource_desc(r.resource),
        "scope": scope_desc(r.instrumentation_scope),
        "record": {
            "time_unix_nano": lr.timestamp or 0,
            "observed_time_unix_nano": lr.observed_timestamp or 0,
            "severity_number": lr.severity_number.value if lr.severity_number is not None else 0,
            "severity_text": lr.severity_text or "",
            "body": typed(lr.body),
            "attributes": attrs(lr.attributes),
            "trace_id": trace_id(lr.trace_id),
            "span_id": span_id(lr.span_id),
            "flags": int(lr.trace_flags or 0),
            "event_name": lr.event_name or "",
        },
    }


class Recorder:
    """What the exporters were handed, and whether every export succeeded."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []
        self.metrics = []
        self.logs = []
        self.failures = []

    def wrap(self, cls, kind, ok):
        rec = self

        class Recording(cls):
            def export(self, batch, *args, **kwargs):
                result = super().export(batch, *args, **kwargs)
                with rec.lock:
                    if result != ok:
                        rec.failures.append(f"{kind} export returned {result}")
                    elif kind == "traces":
                        rec.spans.extend(describe_span(s) for s in batch)
                    elif kind == "metrics":
                        rec.metrics.extend(describe_metrics(batch))
                    else:
                        rec.logs.extend(describe_log(r) for r in batch)
                return result

        return Recording


def exporters(protocol, endpoint, compression):
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        comp = Compression.Gzip if compression == "gzip" else Compression.NoCompression
        url = {s: f"http://{endpoint}" for s in ("traces", "metrics", "logs")}
        kw = {"insecure": True, "compression": comp, "timeout": 30}
    elif protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        comp = Compression.Gzip if compression == "gzip" else Compression.NoCompression
        url = {s: f"http://{endpoint}/v1/{s}" for s in ("traces", "metrics", "logs")}
        kw = {"compression": comp, "timeout": 30}
    else:
        raise SystemExit(f"unknown protocol {protocol!r}")
    return (
        lambda rec: rec.wrap(OTLPSpanExporter, "traces", SpanExportResult.SUCCESS)(endpoint=url["traces"], **kw),
        lambda rec: rec.wrap(OTLPMetricExporter, "metrics", MetricExportResult.SUCCESS)(endpoint=url["metrics"], **kw),
        lambda rec: rec.wrap(OTLPLogExporter, "logs", _log_success())(endpoint=url["logs"], **kw),
    )


def _log_success():
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    return LogRecordExportResult.SUCCESS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True, help="host:port")
    ap.add_argument("--compression", choices=["none", "gzip"], default="none")
    ap.add_argument("--tag", default="run", help="distinguishes the data of several runs")
    args = ap.parse_args()

    rec = Recorder()
    span_exp, metric_exp, log_exp = exporters(args.protocol, args.endpoint, args.compression)
    resource = Resource.create(
        {
            "service.name": "interop-send",
            "service.version": "0.0.1",
            "run.tag": args.tag,
            "host.cores": 8,
            "deployment.canary": False,
            "resource.ratio": 0.5,
            "resource.list": ["r1", "r2"],
        },
        schema_url=RESOURCE_SCHEMA,
    )

    # Traces.
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(span_exp(rec), schedule_delay_millis=3_600_000))
    tracer = tp.get_tracer(SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA, attributes={"scope.attr": "s", "scope.n": 1})
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    linked = SpanContext(
        trace_id=0x5B8EFFF798038103D269B633813FC60C,
        span_id=0xEEE19B7EC3C1B174,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        # No trace state: the SDK's OTLP encoder (1.45.2, _encode_links) does not send a link's.
    )
    with tracer.start_as_current_span(
        f"{args.tag}-parent",
        kind=SpanKind.SERVER,
        attributes=EVERY_TYPE,
        links=[Link(linked, {"link.str": "l", "link.int": 3, "link.bytes": b"\x07"})],
    ) as parent:
        parent.add_event("event.plain")
        parent.add_event("event.attrs", {"event.str": "e", "event.bool": True, "event.array": [1.5, 2.5]})
        with tracer.start_as_current_span(f"{args.tag}-child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("child.int", 1)
            child.set_status(Status(StatusCode.ERROR, "boom: the child failed"))
        parent.set_status(Status(StatusCode.OK))
    remote_ctx = trace.set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span(f"{args.tag}-remote-child", context=remote_ctx, kind=SpanKind.CONSUMER) as rc:
        rc.set_attribute("messaging.system", "kafka")
        log_span = rc
    for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER):
        with tracer.start_as_current_span(f"{args.tag}-{kind.name.lower()}", kind=kind):
            pass
    log_span_ctx = trace.set_span_in_context(log_span)

    # Metrics (recorded outside any span, so no exemplars are attached).
    reader = PeriodicExportingMetricReader(metric_exp(rec), export_interval_millis=3_600_000)
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    meter = mp.get_meter(SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA, attributes={"scope.attr": "m"})
    counter = meter.create_counter(f"{args.tag}.requests", unit="{request}", description="requests served")
    counter.add(5, {"route": "/a", "ok": True})
    counter.add(2, {"route": "/a", "ok": True})
    counter.add(1, {"route": "/b", "ok": False, "weights": [1, 2]})
    updown = meter.create_up_down_counter(f"{args.tag}.inflight", unit="1", description="in flight")
    updown.add(10, {"pool": "p1"})
    updown.add(-3, {"pool": "p1"})
    updown.add(-4, {"pool": "p2"})
    hist = meter.create_histogram(
        f"{args.tag}.latency",
        unit="ms",
        description="latency",
        explicit_bucket_boundaries_advisory=[0.0, 5.0, 10.0, 25.0, 100.0],
    )
    for v in (0.0, 1.5, 5.0, 7.25, 30.0, 250.0):
        hist.record(v, {"method": "GET"})
    hist.record(3, {"method": "POST"})

    def observe(_options: CallbackOptions):
        yield Observation(21.5, {"sensor": "a"})
        yield Observation(-3.0, {"sensor": "b", "ratio": 0.25})

    meter.create_observable_gauge(f"{args.tag}.temperature", callbacks=[observe], unit="Cel", description="temp")

    # Logs: the logger API directly, and Python's logging module through the SDK's handler.
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(log_exp(rec), schedule_delay_millis=3_600_000))
    logger = lp.get_logger(SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA, attributes={"scope.attr": "l"})
    logger.emit(
        timestamp=1_700_000_000_123_456_789,
        observed_timestamp=1_700_000_000_223_456_789,
        context=log_span_ctx,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body=f"{args.tag}: something failed",
        attributes=EVERY_TYPE,
    )
    logger.emit(
        severity_number=SeverityNumber.INFO2,
        severity_text="info2",
        body={"structured": True, "count": 3, "items": ["a", "b"], "raw": b"\x01\x02"},
        attributes={"log.kind": "structured"},
        event_name=f"{args.tag}.event",
    )
    logger.emit(severity_number=SeverityNumber.DEBUG, body=12345)
    pylog = logging.getLogger(f"sluice.interop.{args.tag}")
    pylog.propagate = False
    pylog.setLevel(logging.DEBUG)
    pylog.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=lp))
    with trace.use_span(log_span, end_on_exit=False):
        pylog.warning("%s: disk %s is %d%% full", args.tag, "/var", 91, extra={"disk.free": 9.5})

    ok = True
    for name, provider in (("traces", tp), ("metrics", mp), ("logs", lp)):
        if not provider.force_flush(30_000):
            print(f"{name}: force_flush failed", file=sys.stderr)
            ok = False
    tp.shutdown()
    mp.shutdown()
    lp.shutdown()
    if rec.failures or not ok:
        for f in rec.failures:
            print(f, file=sys.stderr)
        sys.exit(1)
    json.dump({"traces": rec.spans, "metrics": rec.metrics, "logs": rec.logs}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
