#!/usr/bin/env bash
# Benchmark (issue 12, CHUNKING): one ~20 KB digest to N subscribers over a
# relay RTT milliseconds away (bench/peers/latency_sink.py: every reply
# leaves RTT after the bytes that asked for it), 10 connections, plain SMTP:
#   with CHUNKING   MAIL, RCPT and BDAT n LAST with the message in one
#                   write: one round trip a message
#   without         MAIL, RCPT, DATA, then the 354, then the message and
#                   its 250: two round trips a message
# Beside the physical limit of each: 10 connections / (round trips x RTT).
#
#   bash bench/latency.sh [SUBSCRIBERS] [RTT_MS]      (default 3000, 20 ms)
#   GAZETTE_BIN=/path/to/gazette bash bench/latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000}
RTT=${2:-20}
PORT=${PORT:-2597}
work=bench/work/latency
rm -rf "$work" && mkdir -p "$work"
if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi
python3 bench/gen_issue.py "$work" "$N"
cat > "$work/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "https://bench.example.org/"
[mail]
from = "The Bench Ledger <ledger@bench.example.org>"
transport = "smtp"
concurrency = 10
rate_per_second = 1000000
[mail.smtp]
host = "127.0.0.1"
port = $PORT
security = "none"
TOML

sink_pid=
trap '[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; true' EXIT
for mode in chunking data; do
  flag=; [ "$mode" = data ] && flag=--no-chunking
  python3 -u bench/peers/latency_sink.py "$PORT" "$RTT" $flag > "$work/sink-$mode.log" & sink_pid=$!
  for _ in $(seq 50); do grep -q ready "$work/sink-$mode.log" && break; sleep 0.1; done
  rm -f "$work"/gazette.db*
  "$bin" --config "$work/config.toml" subscribers import "$work/subscribers.csv" >/dev/null
  echo "== gazette, $N messages, sink $RTT ms away, $mode" >&2
  "$bin" --config "$work/config.toml" --json run > "$work/run-$mode.json"
  kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=
done

python3 - "$work" "$N" "$RTT" <<'PY'
import json, sys
work, n, rtt = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
print(f"{'':52} {'msgs/s':>8} {'limit':>8} {'/limit':>7}")
rates = {}
for mode, trips, label in (("chunking", 1, "CHUNKING: MAIL+RCPT+BDAT LAST, one round trip"),
                           ("data", 2, "no CHUNKING: MAIL+RCPT+DATA, body: two round trips")):
    send = json.load(open(f"{work}/run-{mode}.json"))["mail"]["send"]
    assert send["sent"] == n, f"{mode}: {send}"
    got = open(f"{work}/sink-{mode}.log").read().split()
    assert got[-2:] == ["messages", str(n)], f"{mode}: the sink counted {got[-2:]}"
    rates[mode] = send["sent"] / (send["elapsed_ms"] / 1000)
    limit = 10 / (trips * rtt)
    print(f"{label:52} {rates[mode]:8.0f} {limit:8.0f} {rates[mode] / limit:7.2f}")
print(f"CHUNKING carries {rates['chunking'] / rates['data']:.2f}x as many messages a second "
      f"over a relay {rtt * 1000:.0f} ms away (all {n} sent both ways)")
PY
