#!/usr/bin/env bash
# Benchmark (b): `gazette run` over an archive of 10,000 article files when
# nothing changed, beside the physical floor of reading the same files
# (`cat` of every file to /dev/null). Target: under 100 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
ARTICLES=${ARTICLES:-10000}
RUNS=${RUNS:-20}
work=bench/work/run
rm -rf "$work" && mkdir -p "$work"
python3 bench/gen_archive.py "$work/content" "$ARTICLES" 100 >/dev/null
cat > "$work/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "https://bench.example.org/"
timezone = "Europe/London"
[feeds]
items = 50
TOML
cargo build --release --quiet
bin=$PWD/target/release/gazette
files=$(find "$work/content" -type f | wc -l)
bytes=$(du -sb "$work/content" | cut -f1)

# Time a command RUNS times; print min and median in ms.
timeit() {
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
runs = int(sys.argv[1]); cmd = sys.argv[2:]
t = []
for _ in range(runs):
    s = time.perf_counter(); r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); t.append((time.perf_counter() - s) * 1000)
    if r.returncode != 0: sys.exit(f"{cmd} failed with {r.returncode}")
print(f"{min(t):8.1f} {statistics.median(t):8.1f}")
PY
}

start=$(date +%s%N)
"$bin" --config "$work/config.toml" run >/dev/null
cold=$(( ($(date +%s%N) - start) / 1000000 ))
"$bin" --config "$work/config.toml" run | grep -q "nothing changed" || { echo "second run was not a no-op" >&2; exit 1; }

read -r g_min g_med < <(timeit "$bin" --config "$work/config.toml" run)
read -r c_min c_med < <(timeit sh -c "find '$work/content' -type f -exec cat {} + >/dev/null")
echo "archive: $files files, $((bytes / 1024)) KiB; first (cold) run: ${cold} ms"
printf '%-46s %8s %8s\n' "unchanged archive, $RUNS runs" "min ms" "median"
printf '%-46s %8s %8s\n' "gazette run (nothing changed)" "$g_min" "$g_med"
printf '%-46s %8s %8s\n' "floor: find + cat every file > /dev/null" "$c_min" "$c_med"
python3 -c "import sys; g=float(sys.argv[1]); c=float(sys.argv[2]); print(f'gazette / floor: {g/c:.2f}x; target < 100 ms: {\"met\" if g < 100 else \"NOT met\"}')" "$g_med" "$c_med"
