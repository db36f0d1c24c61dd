#!/usr/bin/env bash
# One million subscribers end to end (issue 12): `subscribers import` of a
# million active readers, then `gazette serve`, whose first cycle publishes
# an issue to all of them (the ledger rows, in pieces) and sends it to
# postfix's smtp-sink, while a client keeps using the HTTP side: the admin
# console's list, the API's subscriber list, issue list and an issue's
# deliveries, a sign-up (POST /subscribe) and the RSS feed. Each request is
# timed at the client; a failed one (not 2xx/3xx) is counted. Then the same
# requests once the cycle is done, and `gazette deliveries` as a process.
#
# Prints the import's time and peak RSS, the cycle's time, the rate of the
# send and serve's peak RSS (VmHWM: the whole run, HTTP included), and per
# request: median, 99th percentile and worst, during the cycle and after.
# Targets (the issue's): serve's peak RSS < 60 MB, every row sent, no
# request failing during the publish and the send.
#
#   bash bench/million.sh [SUBSCRIBERS]              (default 1000000)
#   GAZETTE_BIN=/path/to/gazette bash bench/million.sh 100000
#   PROBES=none bash bench/million.sh 100000        (no client: serve alone)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PATH=$PATH:/usr/sbin
command -v smtp-sink >/dev/null || { echo "needs postfix's smtp-sink: see .ci/test" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi

work=bench/work/million
rm -rf "$work" && mkdir -p "$work"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
smtp_port=$(free_port)

# One issue of about 20 KB of text, as bench/send.sh has it, and N readers.
python3 bench/gen_issue.py "$work" "$N"
cat > "$work/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "http://127.0.0.1:$http_port/"
[mail]
from = "The Bench Ledger <ledger@bench.example.org>"
transport = "smtp"
concurrency = 10
rate_per_second = 1000000
[mail.smtp]
host = "127.0.0.1"
port = $smtp_port
security = "none"
[http]
listen = "127.0.0.1:$http_port"
admin_token_env = "GAZETTE_ADMIN_TOKEN"
subscribe_burst = 10000
subscribe_per_minute = 10000
[schedule]
cron = "0 0 1 1 *"
TOML
g() { "$bin" --config "$work/config.toml" "$@"; }

echo "== import: $N subscribers" >&2
/usr/bin/time -f '%e %M' -o "$work/import-time" "$bin" --config "$work/config.toml" \
  subscribers import "$work/subscribers.csv" >/dev/null
read -r import_s import_kb < "$work/import-time"
printf 'bench admin password\n' | g admins add admin@example.org >/dev/null

sink= serve=
cleanup() {
  [ -n "$serve" ] && kill "$serve" 2>/dev/null
  [ -n "$sink" ] && kill "$sink" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
smtp-sink -u nobody "127.0.0.1:$smtp_port" 1000 >/dev/null 2>&1 & sink=$!
sleep 0.3

echo "== serve: publish and send to $N, with a client on the HTTP side" >&2
GAZETTE_ADMIN_TOKEN=bench-token GAZETTE_LOG=warn "$bin" --config "$work/config.toml" serve 2>"$work/serve.log" &
serve=$!
python3 - "$http_port" "$serve" "$work" "$N" "$bin" <<'PY'
import http.client, json, os, statistics, subprocess, sys, time, urllib.parse
port, pid, work, n, binary = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
token = {"Authorization": "Bearer bench-token"}

def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.perf_counter()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t) * 1000
    c.close()
    return r.status, ms, data, r

deadline = time.time() + 30
while True:
    try:
        if request("GET", "/healthz")[0] == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("serve did not answer /healthz within 30 s")
    time.sleep(0.1)
status, _, _, r = request("POST", "/admin/login",
    urllib.parse.urlencode({"email": "admin@example.org", "password": "bench admin password"}),
    {"Content-Type": "application/x-www-form-urlencoded"})
cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
if status != 303 or not cookie:
    sys.exit(f"console sign-in answered {status}")

probes = [
    ("console: subscriber list", lambda i: ("GET", "/admin/subscribers", None, {"Cookie": cookie})),
    ("API: GET /subscribers", lambda i: ("GET", "/api/v1/subscribers", None, token)),
    ("API: GET /issues", lambda i: ("GET", "/api/v1/issues", None, token)),
    ("API: issue deliveries", lambda i: ("GET", "/api/v1/issues/bench-issue/deliveries", None, token)),
    ("sign-up: POST /subscribe", lambda i: ("POST", "/subscribe",
        urllib.parse.urlencode({"email": f"probe{i}@bench.example.org", "name": "Probe"}),
        {"Content-Type": "application/x-www-form-urlencoded"})),
    ("feed: GET /feeds/rss.xml", lambda i: ("GET", "/feeds/rss.xml", None, None)),
]

# PROBES="console,sign-up" keeps only the requests whose names contain one
# of these words (to see what one of them costs); "none" sends none.
only = [w.strip() for w in os.environ.get("PROBES", "").split(",") if w.strip()]
if only:
    probes = [p for p in probes if any(w in p[0] for w in only)]

def cycle_done():
    _, _, body, _ = request("GET", "/metrics")
    m = {}
    for line in body.decode().splitlines():
        if line.startswith("gazette_") and " " in line:
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
    return m.get("gazette_cycles_total", 0) >= 1 and m.get("gazette_cycle_running", 1) == 0, m

times = {"during": {p[0]: [] for p in probes}, "after": {p[0]: [] for p in probes}}
failures = {"during": 0, "after": 0}
t0 = time.time()
i = 0
phase, after_rounds, metrics = "during", 0, {}
while True:
    for name, make in probes:
        i += 1
        method, path, body, headers = make(i)
        try:
            status, ms, _, _ = request(method, path, body, headers)
        except OSError as e:
            status, ms = 0, 60000
        times[phase][name].append(ms)
        if not 200 <= status < 400:
            failures[phase] += 1
            print(f"{phase}: {name}: {status}", file=sys.stderr)
    if phase == "during":
        done, metrics = cycle_done()
        if done:
            cycle_s = time.time() - t0
            phase = "after"
        else:
            time.sleep(0.25)
    else:
        after_rounds += 1
        if after_rounds >= 20:
            break

hwm = 0
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1])
t = time.perf_counter()
out = subprocess.run([binary, "--config", f"{work}/config.toml", "--json", "deliveries"],
                     capture_output=True, check=True).stdout
deliveries_ms = (time.perf_counter() - t) * 1000
counts = json.loads(out)
json.dump({"cycle_s": cycle_s, "hwm_kb": hwm, "times": times, "failures": failures,
           "deliveries_ms": deliveries_ms, "deliveries": counts, "metrics": metrics},
          open(f"{work}/probe.json", "w"))
PY
kill "$serve"; wait "$serve" 2>/dev/null || true; serve=

python3 - "$work" "$N" "$import_s" "$import_kb" <<'PY'
import json, sqlite3, statistics, sys
work, n, import_s, import_kb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
p = json.load(open(f"{work}/probe.json"))
db = sqlite3.connect(f"{work}/gazette.db")
ledger = dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())
print(f"\n{n} subscribers, end to end\n")
print(f"{'import (subscribers import)':40} {import_s:8.1f} s   peak RSS {import_kb / 1024:5.1f} MB")
sent = ledger.get("sent", 0)
print(f"{'serve: first cycle (publish + send)':40} {p['cycle_s']:8.1f} s   {sent / p['cycle_s']:7.0f} msgs/s over the cycle")
print(f"{'serve: peak RSS (VmHWM, HTTP included)':40} {p['hwm_kb'] / 1024:8.1f} MB")
print(f"{'gazette deliveries (a process)':40} {p['deliveries_ms']:8.0f} ms")
print(f"{'ledger':40} {json.dumps(ledger)}")
print(f"\n{'request (client time, ms)':28} {'':>6} {'n':>5} {'median':>8} {'p99':>8} {'worst':>8}")
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]
for phase in ("during", "after"):
    for name, v in p["times"][phase].items():
        if v:
            print(f"{name:28} {phase:>6} {len(v):5} {statistics.median(v):8.1f} {pct(v, 0.99):8.1f} {max(v):8.1f}")
fails = p["failures"]
print(f"\nfailed requests: {fails['during']} during the cycle, {fails['after']} after")
ok = p["hwm_kb"] < 60 * 1024 and sent == n and fails["during"] == 0 and fails["after"] == 0
print(f"targets: serve's peak RSS < 60 MB, all {n} sent, no failed request: {'met' if ok else 'NOT met'}")
PY
