#!/usr/bin/env bash
# Benchmark (issue 3): one ~20 KB digest to 100,000 active subscribers over
# SMTP to postfix's smtp-sink on 127.0.0.1 (not writing to disk), side by side
# with smtp-source pushing 20 KB messages through 10 sessions to the same sink
# (the physical limit here). Prints messages/s of both and their ratio,
# gazette's peak RSS and the ledger's final counts.
#
#   bash bench/send.sh [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
PORT=${PORT:-2599}
work=bench/work/send
rm -rf "$work" && mkdir -p "$work"

command -v smtp-sink >/dev/null || { echo "needs postfix's smtp-sink: see .ci/test" >&2; exit 1; }
cargo build --release --quiet
bin=$PWD/target/release/gazette

# A content folder with one issue of about 20 KB of text, and N subscribers.
python3 - "$work" "$N" <<'PY'
import os, sys, datetime
work, n = sys.argv[1], int(sys.argv[2])
d = os.path.join(work, "content", "bench-issue")
os.makedirs(d, exist_ok=True)
today = datetime.date.today().isoformat()
open(os.path.join(d, "issue.toml"), "w").write(f'title = "Bench issue"\ndate = {today}\n')
para = ("The harbour trust met on Tuesday and the ferry timetable was, once again, the first item. " * 6).strip()
for a in range(4):
    with open(os.path.join(d, f"article-{a}.md"), "w") as f:
        f.write(f'+++\ntitle = "Article {a}"\nauthor = "Writer {a}"\ndate = {today}\n+++\n\n')
        f.write("\n\n".join([para] * 3) + "\n")
with open(os.path.join(work, "subscribers.csv"), "w") as f:
    f.write("email,name\n")
    for i in range(n):
        f.write(f"reader{i}@bench.example.org,Reader {i}\n")
PY
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
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; true; }
trap cleanup EXIT
start_sink() {
  smtp-sink -u nobody 127.0.0.1:$PORT 1000 >/dev/null 2>&1 & sink_pid=$!
  sleep 0.3
}

echo "== smtp-source: $N messages of 20 KB, 10 sessions" >&2
start_sink
t0=$(date +%s.%N)
smtp-source -d -s 10 -l 20480 -m "$N" -f a@bench.example.org -t b@bench.example.org 127.0.0.1:$PORT >/dev/null 2>&1
t1=$(date +%s.%N)
kill $sink_pid; wait $sink_pid 2>/dev/null || true; sink_pid=
src_rate=$(python3 -c "print(f'{$N/($t1-$t0):.0f}')")

"$bin" --config "$work/config.toml" issues preview bench-issue --out "$work/preview" >/dev/null
msg_bytes=$(stat -c %s "$work/preview/bench-issue.eml")
echo "== gazette: one digest message is $msg_bytes bytes (HTML + text); importing $N subscribers" >&2
"$bin" --config "$work/config.toml" subscribers import "$work/subscribers.csv" >/dev/null
start_sink
/usr/bin/time -f "%M" -o "$work/rss_kb" "$bin" --config "$work/config.toml" --json run > "$work/run.json"
kill $sink_pid; wait $sink_pid 2>/dev/null || true; sink_pid=

python3 - "$work" "$N" "$src_rate" "$msg_bytes" <<'PY'
import json, sys, sqlite3
work, n, src_rate, msg_bytes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
run = json.load(open(f"{work}/run.json"))
mail = run["mail"]
secs = mail["send"]["elapsed_ms"] / 1000
rate = mail["send"]["sent"] / secs if secs else 0
rss_mb = int(open(f"{work}/rss_kb").read().split()[-1]) / 1024
db = sqlite3.connect(f"{work}/gazette.db")
counts = dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())
print(f"{'':34} {'msgs/s':>9}")
print(f"{'smtp-source -s 10 -l 20480':34} {src_rate:9.0f}")
print(f"{f'gazette run (SMTP, 10 conns, {msg_bytes // 1024} KB)':34} {rate:9.0f}")
print(f"ratio gazette / smtp-source: {rate / src_rate:.2f} (target >= 0.5, next goal 0.8)")
print(f"gazette peak RSS: {rss_mb:.0f} MB (target < 150 MB)")
print(f"ledger: {counts} (target: all {n} sent)")
PY
