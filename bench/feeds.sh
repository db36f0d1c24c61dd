#!/usr/bin/env bash
# Feed generation, side by side: gazette (Rust) vs Python feedgen vs npm feed.
#
#   bench/feeds.sh [RUNS]
#
# 1. `cargo bench --bench feeds` (release) builds a deterministic model of
#    10,000 articles (~2 KB of HTML each, 100 issues), times gazette's three
#    feeds (best of 7) and exports the same entries as a JSON Feed file.
# 2. The peers read that file and build RSS 2.0 + Atom 1.0 from it; each times
#    only feed construction + serialization (no interpreter start-up, no JSON
#    loading), best of RUNS (default 3).
# 3. One table: tool, time, ratio to gazette's three feeds.
# 4. Whole processes over the same kind of archive as files (bench/gen_archive.py:
#    10,000 articles, half Markdown, half clippings, 100 issues), every
#    article in the feeds: `gazette feeds build` and `gazette run` (a fresh
#    database: ingest, record, feeds), cold (nothing built before: no feeds,
#    no database, no parse cache), warm (run again, nothing changed) and with
#    one article changed (the other 9,999 parses taken from the cache file
#    gazette.db.parsed), beside bench/peers/feedgen_pipeline.py
#    (read, parse, Markdown, sanitize with nh3, RSS + Atom with feedgen),
#    interpreter start-up included. Target: 10x, every row.
#
# Installs what it needs when missing: feedgen into bench/.venv (or uses the
# repository's .venv if it has feedgen), npm `feed` into bench/node_modules.
set -euo pipefail

cd "$(dirname "$0")/.."
runs="${1:-3}"
work="bench/work"
mkdir -p "$work"

# --- peers' dependencies -----------------------------------------------------
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import feedgen' 2>/dev/null; then
    py=.venv/bin/python
else
    py=bench/.venv/bin/python
    if ! { [ -x "$py" ] && "$py" -c 'import feedgen' 2>/dev/null; }; then
        echo "installing feedgen into bench/.venv ..." >&2
        python3 -m venv bench/.venv
        bench/.venv/bin/pip install --quiet --disable-pip-version-check 'feedgen==1.0.0'
    fi
fi
# The whole-process peer (part 4) also reads Markdown and sanitizes.
if ! "$py" -c 'import markdown, nh3' 2>/dev/null; then
    echo "installing markdown and nh3 beside feedgen ..." >&2
    "$py" -m pip install --quiet --disable-pip-version-check 'markdown==3.7' 'nh3==0.2.18'
fi
if [ ! -f bench/node_modules/feed/package.json ]; then
    echo "installing npm feed into bench/node_modules ..." >&2
    (cd bench && npm install --no-audit --no-fund --silent)
fi

# --- gazette -------------------------------------------------------------------
entries="$PWD/$work/entries.json"
result="$PWD/$work/gazette.txt"
rm -f "$result"
GAZETTE_BENCH_ENTRIES="$entries" GAZETTE_BENCH_RESULT="$result" \
    cargo bench --quiet --bench feeds
# shellcheck disable=SC1090
. "$result"   # total_ms, rss_ms, atom_ms, json_ms

# --- peers ---------------------------------------------------------------------
echo >&2
feedgen_ms=$("$py" bench/peers/feedgen_bench.py "$entries" "$runs" | tail -n 1)
feed_ms=$(node bench/peers/feed_bench.mjs "$entries" "$runs" | tail -n 1)

# --- table ---------------------------------------------------------------------
rss_atom_ms=$(awk -v a="$rss_ms" -v b="$atom_ms" 'BEGIN { printf "%.3f", a + b }')
echo
printf '%-44s %10s %12s\n' "tool (10,000 entries, ~2 KB HTML each)" "time ms" "vs gazette"
printf '%-44s %10s %12s\n' "--------------------------------------------" "-------" "----------"
row() { awk -v n="$1" -v t="$2" -v g="$total_ms" \
    'BEGIN { printf "%-44s %10.1f %11.1fx\n", n, t, t / g }'; }
row "gazette: RSS + Atom + JSON Feed (all cores)" "$total_ms"
row "gazette: RSS alone (one thread)" "$rss_ms"
row "gazette: Atom alone (one thread)" "$atom_ms"
row "gazette: JSON Feed alone (one thread)" "$json_ms"
row "gazette: RSS + Atom (one thread)" "$rss_atom_ms"
row "python feedgen 1.0: RSS + Atom" "$feedgen_ms"
row "npm feed 6: RSS + Atom" "$feed_ms"
echo
awk -v f="$feedgen_ms" -v n="$feed_ms" -v g="$total_ms" 'BEGIN {
    best = (f < n) ? f : n
    r = best / g
    printf "gazette (all three feeds) is %.1fx faster than the faster peer (target 10x: %s)\n",
        r, (r >= 10 ? "met" : "NOT met")
}'

# --- 4. whole processes over files ---------------------------------------------
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
arch="$work/feeds-archive"
rm -rf "$arch" && mkdir -p "$arch"
python3 bench/gen_archive.py "$arch/content" 10000 100 >/dev/null
cat > "$arch/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "https://bench.example.org/"
timezone = "Europe/London"
[feeds]
items = 10000
TOML
find "$arch/content" -type f -exec cat {} + >/dev/null   # the files in the page cache for everyone
"$py" - "$bin" "$arch" "$py" "$runs" <<'PY'
import os, shutil, statistics, subprocess, sys, time
bin, arch, py, runs = sys.argv[1], sys.argv[2], sys.argv[3], max(int(sys.argv[4]), 3)
cfg = os.path.join(arch, "config.toml")
def timed(cmd, before=None):
    if before:
        before()
    # No writes of the run before still in flight: each run's fsyncs wait
    # for its own data only (without this, the same cold run took 0.8 s or
    # 1.6 s on this machine's disk).
    os.sync()
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return ms
def fresh_feeds():
    shutil.rmtree(os.path.join(arch, "feeds"), ignore_errors=True)
def fresh_db():
    # The database, its lock and the parse cache beside it (gazette.db.parsed).
    fresh_feeds()
    for f in os.listdir(arch):
        if f.startswith("gazette.db"):
            os.remove(os.path.join(arch, f))
edits = 0
def one_article_changed():
    # A new last line in one article of the newest issue: its hash changes,
    # so the feeds are rebuilt with the other 9,999 files as they were.
    global edits
    edits += 1
    newest = sorted(os.listdir(os.path.join(arch, "content")))[-1]
    folder = os.path.join(arch, "content", newest)
    article = sorted(f for f in os.listdir(folder) if f.endswith(".md"))[0]
    with open(os.path.join(folder, article), "a") as f:
        f.write(f"\nCorrection {edits}.\n")
feeds = [bin, "--config", cfg, "feeds", "build"]
run = [bin, "--config", cfg, "run"]
peer = [py, "bench/peers/feedgen_pipeline.py", os.path.join(arch, "content"), os.path.join(arch, "py-feeds"), "https://bench.example.org/"]
rows = {
    "gazette feeds build, cold (no feeds, no cache)": statistics.median(timed(feeds, fresh_db) for _ in range(runs)),
    "gazette feeds build, warm (nothing changed)": statistics.median(timed(feeds) for _ in range(runs)),
    "gazette feeds build, one article changed": statistics.median(timed(feeds, one_article_changed) for _ in range(runs)),
    "gazette run, cold (new database, no cache)": statistics.median(timed(run, fresh_db) for _ in range(runs)),
    "gazette run, warm (nothing changed)": statistics.median(timed(run) for _ in range(runs)),
    "gazette run, one article changed": statistics.median(timed(run, one_article_changed) for _ in range(runs)),
}
peer_ms = statistics.median(timed(peer) for _ in range(runs))
print()
print(f"{'whole processes, 10,000 article files (median of %d)' % runs:52} {'ms':>9} {'peer / this':>12}")
print(f"{'python + feedgen: read, Markdown, nh3, RSS + Atom':52} {peer_ms:9.0f}")
ok = True
for name, ms in rows.items():
    ok &= peer_ms / ms >= 10
    print(f"{name:52} {ms:9.0f} {peer_ms / ms:11.1f}x")
print(f"target: each gazette row >= 10x the Python pipeline: {'met' if ok else 'NOT met'}")
PY
