#!/usr/bin/env bash
# Benchmark (issue 10): returned mail through `gazette serve`'s SMTP
# listener. A site mails one issue to N subscribers (file transport) with
# mail.bounce_address set; then benches/inbound.rs builds one return per
# delivery, of mixed kinds (40% hard DSNs, 20% delayed, 10% ARF complaints,
# 10% mailto unsubscribes with the token, 10% out-of-office, 5% DSNs to
# the plain bounce address matched by Message-ID, 5% human replies), and
# hands them over SMTP in CONNS parallel sessions, first to postfix's
# smtp-sink (the physical limit: it does nothing with them), then to
# gazette. Prints messages/s side by side, gazette's peak RSS, and checks
# that every subscriber and every kind ended where it must (exit 1 if not).
#
#   bash bench/inbound.sh [N]                       (default 10000)
#   CONNS=4 bash bench/inbound.sh 2000
#   GAZETTE_BIN=/path/to/gazette bash bench/inbound.sh   (that build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
CONNS=${CONNS:-8}
GZ_PORT=${GZ_PORT:-2597}
SINK_PORT=${SINK_PORT:-2596}
HTTP_PORT=${HTTP_PORT:-2595}
work=bench/work/inbound
rm -rf "$work" && mkdir -p "$work"
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || { echo "needs postfix's smtp-sink: see .ci/test" >&2; exit 1; }
PATH=$PATH:/usr/sbin
if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi

python3 bench/gen_issue.py "$work" "$N" --small --domain bench.example.net
cat > "$work/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "https://bench.example.org/"
[mail]
from = "The Bench Ledger <ledger@bench.example.org>"
bounce_address = "bounces@bench.example.org"
transport = "file"
rate_per_second = 1000000
[http]
listen = "127.0.0.1:$HTTP_PORT"
[inbound]
listen = "127.0.0.1:$GZ_PORT"
max_sessions = 64
TOML
echo "== mailing the bench issue to $N subscribers (file transport)" >&2
"$bin" --config "$work/config.toml" subscribers import "$work/subscribers.csv" >/dev/null
"$bin" --config "$work/config.toml" run >/dev/null

sink_pid= gz_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  [ -n "$gz_pid" ] && kill "$gz_pid" 2>/dev/null
  true
}
trap cleanup EXIT
smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1000 >/dev/null 2>&1 & sink_pid=$!
"$bin" --config "$work/config.toml" serve 2>"$work/serve.log" & gz_pid=$!
for _ in $(seq 100); do
  grep -q "SMTP listening" "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "SMTP listening" "$work/serve.log" || { cat "$work/serve.log" >&2; exit 1; }

INBOUND_DB="$PWD/$work/gazette.db" INBOUND_BOUNCE=bounces@bench.example.org \
INBOUND_FROM=ledger@bench.example.org GZ_PORT=$GZ_PORT GZ_PID=$gz_pid \
SINK_PORT=$SINK_PORT CONNS=$CONNS RESULT="$PWD/$work/result.txt" \
  cargo bench --quiet --bench inbound
