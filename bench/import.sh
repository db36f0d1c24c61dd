#!/usr/bin/env bash
# `gazette subscribers import`, side by side with SQLite's own CSV import of
# the same file (issue 12), as whole processes, each into a fresh database:
#
#   sqlite3 .import (peer)   into a table with a case-insensitive UNIQUE
#                            address: the issue's yardstick
#   sqlite3 .import + SQL    the same rows into gazette's own schema (its
#                            indexes, the trigram search index, the count
#                            triggers) with one INSERT ... SELECT: what the
#                            schema alone costs, with no checking at all
#   gazette import           every check (address normalization, duplicates,
#                            suppressions, a 256-bit token per row)
#
# Prints wall time, rows/s, peak RSS and the ratio of the peer's time to
# gazette's (target >= 0.5).
#
#   bash bench/import.sh [ROWS]                      (default 1,000,000)
#   GAZETTE_BIN=/path/to/gazette bash bench/import.sh 200000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
command -v sqlite3 >/dev/null || { echo "bench/import.sh needs the sqlite3 shell (apt-get install sqlite3)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/import.sh needs GNU time (apt-get install time)" >&2; exit 1; }

if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gazette-import-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
csv="bench/work/subscribers-$N.csv"
mkdir -p bench/work
[ -f "$csv" ] || python3 bench/gen_subscribers.py "$csv" "$N"
cp "$csv" "$work/subs.csv"   # the same file, from the same disk, for everyone
cat "$work/subs.csv" >/dev/null

cat > "$work/config.toml" <<TOML
[publication]
title = "Import bench"
base_url = "https://bench.example.org/"
[database]
url = "sqlite://$work/gazette.db"
TOML

# run DB CMD...: time CMD with a fresh DB, into "$work/time" ("seconds
# rss_kb"); a failure stops the bench with CMD's output.
run() {
  local db=$1; shift
  rm -f "$db" "$db-wal" "$db-shm"
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>&1 || {
    echo "failed: $*" >&2; cat "$work/out" >&2; exit 1; }
}

# An empty database with gazette's schema, for the "schema alone" row.
"$bin" --config "$work/config.toml" subscribers import /dev/stdin <<<'email' >/dev/null
sqlite3 "$work/gazette.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
cp "$work/gazette.db" "$work/schema.db"

run "$work/peer.db" sqlite3 "$work/peer.db" \
  'CREATE TABLE subscribers (email TEXT NOT NULL UNIQUE COLLATE NOCASE, name TEXT, status TEXT);' \
  '.mode csv' ".import --skip 1 $work/subs.csv subscribers"
read -r peer_s peer_kb < "$work/time"
peer_rows=$(sqlite3 "$work/peer.db" 'SELECT COUNT(*) FROM subscribers')

cp "$work/schema.db" "$work/bare.db"
/usr/bin/time -f '%e %M' -o "$work/time" sqlite3 "$work/bare.db" \
  'PRAGMA journal_mode = WAL;' 'PRAGMA synchronous = NORMAL;' \
  'CREATE TEMP TABLE stage (email TEXT, name TEXT, status TEXT);' \
  '.mode csv' ".import --skip 1 $work/subs.csv stage" \
  "INSERT INTO subscribers (email, email_key, name, status, token, created_at, confirmed_at, updated_at)
     SELECT email, lower(email), name, status, hex(randomblob(32)), '2026-01-01T00:00:00Z',
            '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM stage WHERE true
     ON CONFLICT (email_key) DO NOTHING;" >/dev/null
read -r bare_s bare_kb < "$work/time"

run "$work/gazette.db" "$bin" --config "$work/config.toml" subscribers import "$work/subs.csv"
read -r gz_s gz_kb < "$work/time"
gz_rows=$(sqlite3 "$work/gazette.db" 'SELECT COUNT(*) FROM subscribers')
[ "$gz_rows" = "$peer_rows" ] || { echo "gazette imported $gz_rows rows, sqlite3 $peer_rows" >&2; exit 1; }

printf '\n%d rows (%s), each into a fresh database\n\n' "$N" "$(du -h "$work/subs.csv" | cut -f1)"
printf '%-26s %9s %11s %9s %9s\n' tool seconds rows/s "RSS MB" "peer/this"
row() { awk -v n="$N" -v s="$2" -v kb="$3" -v p="$peer_s" -v l="$1" \
  'BEGIN { printf "%-26s %9.2f %11.0f %9.1f %9.2f\n", l, s, n / s, kb / 1024, p / s }'; }
row "sqlite3 .import (peer)" "$peer_s" "$peer_kb"
row "sqlite3 + gazette schema" "$bare_s" "$bare_kb"
row "gazette import" "$gz_s" "$gz_kb"
awk -v p="$peer_s" -v g="$gz_s" 'BEGIN { r = p / g; printf "\ngazette at %.2f of sqlite3 .import (target >= 0.5): %s\n", r, (r >= 0.5) ? "met" : "NOT met" }'
