#!/usr/bin/env bash
# Side-by-side benchmark of sluice and rotel as an OTLP/gRPC trace forwarder.
#
#   sluice-loadgen send ──OTLP/gRPC──▶ collector (otlp receiver → batch → otlp exporter) ──OTLP/gRPC──▶ sluice-loadgen sink
#
# The collector runs alone on one core (taskset -c $COLLECTOR_CORE), generator and sink share
# the other ($LOAD_CORE). Everything listens on 127.0.0.1 only. For each collector it measures:
#   - max: unlimited rate (2 connections x 8 in flight): acked spans/s, spans the sink received
#     (loss = acked - received), export latency p50/p99, peak RSS (VmHWM);
#   - fixed: $FIXED_RATE spans/s: CPU-seconds (utime+stime from /proc/PID/stat) per million
#     spans, latency p50/p99, peak RSS;
# plus the generator → sink rate with no collector in between (the ceiling).
#
# Usage: benches/compare-rotel.sh            (from anywhere; about 5 min after the build)
# Env:   DURATION=20 FIXED_RATE=50000 COLLECTOR_CORE=1 LOAD_CORE=0 SKIP_BUILD=1 KEEP_TMP=1
#        COLLECTORS="sluice-gzip sluice-none rotel-gzip rotel-none"
#        SLUICE_BIN=path/to/another/sluice (compare a variant build)
# Prints a Markdown table on stdout; progress on stderr; raw JSON reports stay in $TMP_DIR when
# KEEP_TMP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-20}
FIXED_RATE=${FIXED_RATE:-50000}
COLLECTOR_CORE=${COLLECTOR_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
SPANS_PER_REQUEST=100
CONNECTIONS=2
IN_FLIGHT=8
ATTRIBUTES=10
ATTRIBUTE_BYTES=20   # ~400 B per encoded span with 10 attributes
BATCH_SIZE=8192
BATCH_TIMEOUT_MS=200

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LOADGEN=$TARGET/release/sluice-loadgen
SLUICE=${SLUICE_BIN:-$TARGET/release/sluice}
VENV=$ROOT/target/bench-venv

log() { echo "[compare-rotel] $*" >&2; }

TMP_DIR=$(mktemp -d -t sluice-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP_DIR"; else rm -rf "$TMP_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build and install -------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bins"
    (cd "$ROOT" && cargo build --release --bins >&2)
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import rotel' 2>/dev/null; then
    log "pip install --pre rotel (only published as a pre-release)"
    "$VENV/bin/pip" install --quiet --pre rotel >&2
fi
PY=$VENV/bin/python
ROTEL=$("$PY" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
[ -x "$ROTEL" ] || { log "rotel-agent not found at $ROTEL"; exit 1; }
ROTEL_VERSION=$("$ROTEL" --version 2>/dev/null || echo unknown)
ROTEL_PACKAGE=$("$PY" -c 'import importlib.metadata as m; print(m.version("rotel"))')
CLK_TCK=$(getconf CLK_TCK)

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port, pid: until something accepts on 127.0.0.1:port (10 s at most)
    local i
    for i in $(seq 1 100); do
        if ! kill -0 "$2" 2>/dev/null; then log "process $2 died before listening on $1"; return 1; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "nothing listens on 127.0.0.1:$1 after 10 s"
    return 1
}

cpu_ticks() { # utime + stime of a pid, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

json_field() { # file, key
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

start_sink() { # name → sets SINK_PID, SINK_PORT; report in $TMP_DIR/name.sink.json
    local out=$TMP_DIR/$1.sink.json
    taskset -c "$LOAD_CORE" "$LOADGEN" sink --listen 127.0.0.1:0 --idle-exit 3s \
        --duration "$((DURATION + 30))s" --json >"$out" &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    local i
    for i in $(seq 1 100); do
        if [ -s "$out" ] && head -1 "$out" | grep -q '^listening on '; then break; fi
        sleep 0.1
    done
    SINK_PORT=$(head -1 "$out" | sed 's/.*://')
    [ -n "$SINK_PORT" ] || { log "the sink did not start"; exit 1; }
}

finish_sink() { # name: wait for the sink's idle exit, keep its JSON report
    wait "$SINK_PID" || true
    tail -1 "$TMP_DIR/$1.sink.json" >"$TMP_DIR/$1.sink.report.json"
}

start_collector() { # kind name → sets COLLECTOR_PID, COLLECTOR_PORT
    local kind=$1 name=$2
    COLLECTOR_PORT=$(free_port)
    case "$kind" in
        sluice-gzip | sluice-none)
            local compression=${kind#sluice-}
            cat >"$TMP_DIR/$name.yaml" <<EOF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$COLLECTOR_PORT
processors:
  batch:
    send_batch_size: $BATCH_SIZE
    timeout: ${BATCH_TIMEOUT_MS}ms
exporters:
  otlp:
    endpoint: http://127.0.0.1:$SINK_PORT
    protocol: grpc
    compression: $compression
service:
  telemetry:
    logs: { level: warn }
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
EOF
            taskset -c "$COLLECTOR_CORE" "$SLUICE" --config "$TMP_DIR/$name.yaml" \
                >"$TMP_DIR/$name.collector.log" 2>&1 &
            ;;
        rotel-gzip | rotel-none)
            local compression=${kind#rotel-}
            taskset -c "$COLLECTOR_CORE" "$ROTEL" start \
                --otlp-grpc-endpoint "127.0.0.1:$COLLECTOR_PORT" \
                --otlp-http-endpoint "127.0.0.1:$(free_port)" \
                --exporter otlp \
                --otlp-exporter-endpoint "http://127.0.0.1:$SINK_PORT" \
                --otlp-exporter-protocol grpc \
                --otlp-exporter-compression "$compression" \
                --batch-max-size "$BATCH_SIZE" --batch-timeout "${BATCH_TIMEOUT_MS}ms" \
                --pid-file "$TMP_DIR/$name.rotel.pid" --log-file "$TMP_DIR/$name.rotel.log" \
                >"$TMP_DIR/$name.collector.log" 2>&1 &
            ;;
        *) log "unknown collector $kind"; exit 1 ;;
    esac
    COLLECTOR_PID=$!
    PIDS+=("$COLLECTOR_PID")
    wait_for_port "$COLLECTOR_PORT" "$COLLECTOR_PID"
}

send_load() { # name port rate
    taskset -c "$LOAD_CORE" "$LOADGEN" send --endpoint "http://127.0.0.1:$2" \
        --connections "$CONNECTIONS" --in-flight "$IN_FLIGHT" \
        --spans-per-request "$SPANS_PER_REQUEST" --attributes "$ATTRIBUTES" \
        --attribute-bytes "$ATTRIBUTE_BYTES" --rate "$3" --duration "${DURATION}s" \
        --json >"$TMP_DIR/$1.send.json" 2>"$TMP_DIR/$1.send.log"
}

# One run: sink, optional collector, load at a rate; writes $TMP_DIR/name.result (key=value).
run() { # kind name rate
    local kind=$1 name=$2 rate=$3
    log "run $name (rate ${rate:-0}, ${DURATION}s)"
    start_sink "$name"
    local target_port=$SINK_PORT ticks_before=0 ticks_after=0 hwm=0
    if [ "$kind" != direct ]; then
        start_collector "$kind" "$name"
        target_port=$COLLECTOR_PORT
        ticks_before=$(cpu_ticks "$COLLECTOR_PID")
    fi
    send_load "$name" "$target_port" "$rate"
    finish_sink "$name"
    if [ "$kind" != direct ]; then
        ticks_after=$(cpu_ticks "$COLLECTOR_PID")
        hwm=$(vm_hwm_kib "$COLLECTOR_PID")
        kill -TERM "$COLLECTOR_PID" 2>/dev/null || true
        wait "$COLLECTOR_PID" 2>/dev/null || true
    fi
    local send=$TMP_DIR/$name.send.json sink=$TMP_DIR/$name.sink.report.json
    local acked received elapsed
    acked=$(json_field "$send" spans_acked)
    received=$(json_field "$sink" spans)
    elapsed=$(json_field "$send" elapsed_s)
    {
        echo "acked=$acked"
        echo "received=$received"
        echo "failed=$(json_field "$send" spans_failed)"
        echo "acked_per_s=$(json_field "$send" spans_per_s_acked)"
        echo "received_per_s=$("$PY" -c "print(round($received / $elapsed))")"
        echo "p50_us=$(json_field "$send" latency_p50_us)"
        echo "p99_us=$(json_field "$send" latency_p99_us)"
        echo "cpu_s=$("$PY" -c "print(($ticks_after - $ticks_before) / $CLK_TCK)")"
        echo "hwm_kib=$hwm"
        echo "sink_requests=$(json_field "$sink" requests)"
        echo "sink_gzip_requests=$(json_field "$sink" gzip_requests)"
        echo "sink_cpu_s=$(json_field "$sink" cpu_s)"
        echo "sink_per_s=$(json_field "$sink" spans_per_s)"
        echo "gen_cpu_s=$(json_field "$send" cpu_s)"
    } >"$TMP_DIR/$name.result"
    log "  $(tr '\n' ' ' <"$TMP_DIR/$name.result")"
}

get() { sed -n "s/^$2=//p" "$TMP_DIR/$1.result"; }

ms() { "$PY" -c "print(f'{$1 / 1000:.1f}')"; }

# --- scenarios ---------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# rotel 0.0.1a15 gzips whatever --otlp-exporter-compression says (the sink's gzip count shows
# it), so rotel-none is left out by default; COLLECTORS="..." runs it anyway.
read -r -a COLLECTORS <<<"${COLLECTORS:-sluice-gzip sluice-none rotel-gzip}"
run direct direct 0
for c in "${COLLECTORS[@]}"; do
    run "$c" "$c-max" 0
    run "$c" "$c-fixed" "$FIXED_RATE"
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- table -------------------------------------------------------------------------------------
label() {
    case "$1" in
        sluice-gzip) echo "sluice (exporter gzip)" ;;
        sluice-none) echo "sluice (exporter uncompressed)" ;;
        rotel-gzip) echo "rotel $ROTEL_PACKAGE (exporter gzip)" ;;
        rotel-none) echo "rotel $ROTEL_PACKAGE (exporter uncompressed)" ;;
    esac
}

echo
echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')); ${DURATION}s per run; rotel-agent reports \`$ROTEL_VERSION\`; load average before $LOAD_BEFORE, after $LOAD_AFTER (a load above ~1 means something else was running)."
echo
echo "| collector | max: acked spans/s | max: delivered spans/s (sink, first to last request) | max: received by sink | max: p50 / p99 ms | @${FIXED_RATE}/s: CPU-s per 1M spans | @${FIXED_RATE}/s: p50 / p99 ms | @${FIXED_RATE}/s: achieved spans/s, lost | peak RSS MiB (max / fixed) | requests at sink (gzip) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| none (loadgen → sink, the ceiling) | $(get direct acked_per_s | cut -d. -f1) | $(get direct sink_per_s | cut -d. -f1) | $(get direct received) of $(get direct acked) | $(ms "$(get direct p50_us)") / $(ms "$(get direct p99_us)") | n/a | n/a | n/a | n/a | $(get direct sink_requests) ($(get direct sink_gzip_requests)) |"
for c in "${COLLECTORS[@]}"; do
    max=$c-max fixed=$c-fixed
    acked=$(get "$fixed" acked)
    cpu_per_m=$("$PY" -c "a = $acked; print(f'{$(get "$fixed" cpu_s) / a * 1e6:.2f}' if a else 'n/a')")
    lost=$(("$(get "$fixed" acked)" - "$(get "$fixed" received)"))
    echo "| $(label "$c") | $(get "$max" acked_per_s | cut -d. -f1) | $(get "$max" sink_per_s | cut -d. -f1) | $(get "$max" received) of $(get "$max" acked)$([ "$(get "$max" failed)" != 0 ] && echo ", $(get "$max" failed) failed") | $(ms "$(get "$max" p50_us)") / $(ms "$(get "$max" p99_us)") | $cpu_per_m | $(ms "$(get "$fixed" p50_us)") / $(ms "$(get "$fixed" p99_us)") | $(get "$fixed" acked_per_s | cut -d. -f1), $lost | $(( $(get "$max" hwm_kib) / 1024 )) / $(( $(get "$fixed" hwm_kib) / 1024 )) | $(get "$max" sink_requests) ($(get "$max" sink_gzip_requests)) |"
done

echo
echo "Load side (core $LOAD_CORE): CPU-seconds of the generator and the sink per run, and how many of the requests the sink got were gzip-compressed."
echo
echo "| run | generator CPU-s | sink CPU-s | sink requests (gzip) |"
echo "|---|---:|---:|---:|"
for r in direct "${COLLECTORS[@]/%/-max}" "${COLLECTORS[@]/%/-fixed}"; do
    echo "| $r | $(get "$r" gen_cpu_s) | $(get "$r" sink_cpu_s) | $(get "$r" sink_requests) ($(get "$r" sink_gzip_requests)) |"
done
