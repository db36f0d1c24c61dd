#!/usr/bin/env bash
# Benchmark (issues 3 and 8): one ~20 KB digest to N active subscribers over
# SMTP to postfix's smtp-sink on 127.0.0.1 (not writing to disk), in each
# mail.smtp.security mode, side by side with smtp-source pushing 20 KB
# messages through 10 sessions to the same sink (the physical limit here):
#   none      gazette -> smtp-sink
#   tls       gazette -> stunnel (implicit TLS) -> smtp-sink
#   starttls  gazette -> stunnel (protocol = smtp: STARTTLS) -> smtp-sink
# The TLS modes trust a private CA made here with openssl (mail.smtp.ca_file);
# stunnel sets TCP_NODELAY on both of its sockets, so it adds no Nagle delay
# of its own. Prints messages/s per mode, the ratio to smtp-source, gazette's
# peak RSS, the ledger's final counts, and the CPU each process used per message
# (gazette from GNU time, smtp-sink and stunnel from /proc/PID/stat).
#
#   bash bench/send.sh [SUBSCRIBERS]                 (default 100000)
#   MODES="none tls" bash bench/send.sh 20000        (some modes only)
#   GAZETTE_BIN=/path/to/gazette bash bench/send.sh  (that build, not a new one)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
MODES=${MODES:-none tls starttls}
PORT=${PORT:-2599}
TLS_PORT=${TLS_PORT:-2598}
work=bench/work/send
rm -rf "$work" && mkdir -p "$work"

command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || { echo "needs postfix's smtp-sink: see .ci/test" >&2; exit 1; }
PATH=$PATH:/usr/sbin
case " $MODES " in *" tls "*|*" starttls "*)
  command -v stunnel4 >/dev/null || { echo "the TLS modes need stunnel4 (apt-get install stunnel4)" >&2; exit 1; }
  command -v openssl >/dev/null || { echo "the TLS modes need openssl" >&2; exit 1; } ;;
esac
if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN   # e.g. an older build, for a before/after comparison
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi

# A content folder with one issue of about 20 KB of text, and N subscribers.
python3 bench/gen_issue.py "$work" "$N"
# A private CA and a certificate for 127.0.0.1 signed by it, for stunnel.
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 -subj "/CN=gazette bench CA"
ossl req -newkey rsa:2048 -nodes -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=127.0.0.1"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$work/ext.cnf"
ossl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/server.pem" -days 2 -extfile "$work/ext.cnf"

config() { # security port
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
port = $2
security = "$1"
ca_file = "ca.pem"
TOML
}

sink_pid= tunnel_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  [ -n "$tunnel_pid" ] && kill "$tunnel_pid" 2>/dev/null
  true
}
trap cleanup EXIT
start_sink() {
  smtp-sink -u nobody 127.0.0.1:$PORT 1000 >/dev/null 2>&1 & sink_pid=$!
  sleep 0.3
}
# CPU seconds (user + system) a running process has used so far.
cpu_of() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
stop_all() {
  cleanup; wait 2>/dev/null || true; sink_pid= tunnel_pid=
}
start_tunnel() { # tls|starttls
  local protocol=
  [ "$1" = starttls ] && protocol="protocol = smtp"
  cat > "$work/stunnel.conf" <<CONF
foreground = yes
pid =
debug = 3
[$1]
accept = 127.0.0.1:$TLS_PORT
connect = 127.0.0.1:$PORT
cert = $PWD/$work/server.pem
key = $PWD/$work/server.key
$protocol
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
CONF
  stunnel4 "$work/stunnel.conf" >"$work/stunnel-$1.log" 2>&1 & tunnel_pid=$!
  sleep 0.5
}

echo "== smtp-source: $N messages of 20 KB, 10 sessions" >&2
start_sink
t0=$(date +%s.%N)
smtp-source -d -s 10 -l 20480 -m "$N" -f a@bench.example.org -t b@bench.example.org 127.0.0.1:$PORT >/dev/null 2>&1
t1=$(date +%s.%N)
stop_all
src_rate=$(python3 -c "print(f'{$N/($t1-$t0):.0f}')")

config none $PORT
"$bin" --config "$work/config.toml" issues preview bench-issue --out "$work/preview" >/dev/null
msg_bytes=$(stat -c %s "$work/preview/bench-issue.eml")
for mode in $MODES; do
  echo "== gazette, security = $mode: $N messages of $msg_bytes bytes (HTML + text)" >&2
  rm -f "$work"/gazette.db*
  if [ "$mode" = none ]; then config none $PORT; else config "$mode" $TLS_PORT; fi
  "$bin" --config "$work/config.toml" subscribers import "$work/subscribers.csv" >/dev/null
  start_sink
  [ "$mode" = none ] || start_tunnel "$mode"
  /usr/bin/time -f "%M %U %S" -o "$work/rss-$mode" "$bin" --config "$work/config.toml" --json run > "$work/run-$mode.json"
  # Where the CPU went: each process's seconds for the whole run.
  echo "$(cpu_of "$sink_pid") $([ -n "$tunnel_pid" ] && cpu_of "$tunnel_pid" || echo 0)" > "$work/cpu-$mode"
  python3 -c "import sqlite3,sys,json; db=sqlite3.connect(sys.argv[1]); print(json.dumps(dict(db.execute('SELECT status, COUNT(*) FROM deliveries GROUP BY status').fetchall())))" "$work/gazette.db" > "$work/ledger-$mode.json"
  stop_all
done

python3 - "$work" "$N" "$src_rate" "$msg_bytes" "$MODES" <<'PY'
import json, sys
work, n, src_rate, msg_bytes, modes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
print(f"{'':44} {'msgs/s':>9} {'/source':>8} {'/plain':>7} {'peak RSS':>9}  ledger")
cpu_rows = []
print(f"{'smtp-source -s 10 -l 20480 (plain)':44} {src_rate:9.0f}")
rates, ok = {}, True
for mode in modes:
    run = json.load(open(f"{work}/run-{mode}.json"))
    send = run["mail"]["send"]
    secs = send["elapsed_ms"] / 1000
    rate = send["sent"] / secs if secs else 0
    rates[mode] = rate
    rss_kb, user, system = open(f"{work}/rss-{mode}").read().split()[-3:]
    rss_mb = int(rss_kb) / 1024
    sink, tunnel = map(float, open(f"{work}/cpu-{mode}").read().split())
    cpu_rows.append((mode, float(user) + float(system), sink, tunnel))
    counts = json.load(open(f"{work}/ledger-{mode}.json"))
    plain = f"{rate / rates['none']:7.2f}" if "none" in rates and mode != "none" else f"{'':7}"
    label = f"gazette security={mode} ({msg_bytes // 1024} KB, 10 conns)"
    print(f"{label:44} {rate:9.0f} {rate / src_rate:8.2f} {plain} {rss_mb:6.0f} MB  {counts}")
    ok &= counts == {"sent": n} and rss_mb < 60
    ok &= rate >= 0.8 * src_rate if mode == "none" else ("none" not in rates or rate >= 0.8 * rates["none"])
print()
print(f"{'CPU per message (us), whole run':44} {'gazette':>9} {'smtp-sink':>10} {'stunnel':>8} {'total':>7}")
for mode, gz, sink, tunnel in cpu_rows:
    per = lambda s: s / n * 1e6
    print(f"{'security=' + mode:44} {per(gz):9.0f} {per(sink):10.0f} {per(tunnel):8.0f} {per(gz + sink + tunnel):7.0f}")
print(f"{'(2 cores: a total of T us per message caps the rate at 2e6 / T)':44}")
print(f"targets: none >= 0.8 x smtp-source; tls and starttls >= 0.8 x none; peak RSS < 60 MB; all {n} sent: {'met' if ok else 'NOT met'}")
PY
