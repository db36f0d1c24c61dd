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
