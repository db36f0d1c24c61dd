#!/usr/bin/env bash
# Benchmark: serving /feeds/atom.xml over HTTP, `gazette serve` side by side
# with nginx (Debian) serving the same file with the same headers.
#
#   bash bench/http.sh [RUNS]          (default 3 rounds)
#   THREADS=2 CONNECTIONS=64 DURATION=10s bash bench/http.sh
#   GAZETTE_BIN=/path/to/gazette bash bench/http.sh    (that build, not a new one)
#
# The site: bench/gen_archive.py writes 3 issues of 8 articles (~2 KB of text
# each); `gazette feeds build` turns them into an atom.xml of about 75 KB.
# Both servers listen on free 127.0.0.1 ports and answer:
#   200: Content-Type application/atom+xml, ETag, Last-Modified,
#        Cache-Control "public, max-age=300", X-Content-Type-Options,
#        Referrer-Policy, Vary; no gzip (wrk does not ask for it)
#   304: to If-None-Match with that server's own ETag
# (gazette's tag is a hash of the bytes, nginx's is mtime-size; each server
# is asked with the tag it gave out, checked with curl before the load.)
# nginx: worker_processes auto, access_log off, sendfile on, keepalive
# defaults, open_file_cache on (its best case for one hot file).
# wrk drives both on 127.0.0.1 with the same threads, connections and time.
# Each round runs the four loads in turn; the table shows the median of the
# rounds and their spread (min-max), and each server's CPU time per request
# (user + system, from /proc: independent of the share of the cores the
# server got). Target: gazette/nginx >= 0.8 in both. The machine has few
# cores shared by wrk and the server: req/s move with anything else
# running; read the spread.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
ARTICLES=${ARTICLES:-24}

# --- tools -------------------------------------------------------------------
missing=()
nginx_bin=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
[ -n "$nginx_bin" ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  else
    echo "bench/http.sh needs: ${missing[*]} (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ -n "${GAZETTE_BIN:-}" ]; then
  bin=$GAZETTE_BIN   # e.g. an older build, for a before/after comparison
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gazette"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gazette-http-bench.XXXXXX")
# nginx's workers run as an unprivileged user when started by root: they must
# be able to read the file.
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # URL
  for _ in $(seq 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; return 1
}

# --- the site -------------------------------------------------------------------
python3 bench/gen_archive.py "$work/content" "$ARTICLES" 3 >/dev/null
gport=$(free_port)
cat > "$work/config.toml" <<TOML
[publication]
title = "The Bench Ledger"
base_url = "https://bench.example.org/"
timezone = "Europe/London"
[feeds]
items = 50
[http]
listen = "127.0.0.1:$gport"
TOML
"$bin" --config "$work/config.toml" feeds build >/dev/null
atom="$work/feeds/atom.xml"
size=$(stat -c %s "$atom")

# --- gazette serve ----------------------------------------------------------------
GAZETTE_LOG=info "$bin" --config "$work/config.toml" serve 2>"$work/gazette.log" &
pids+=($!)
wait_http "http://127.0.0.1:$gport/healthz"

# --- nginx: the same file, the same headers -------------------------------------
nport=$(free_port)
mkdir -p "$work/nginx/feeds" "$work/nginx/tmp"
# A hard link: the same bytes and mtime, so Last-Modified agrees too.
ln "$atom" "$work/nginx/feeds/atom.xml"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    gzip off;
    server_tokens off;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 1s;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    server {
        listen 127.0.0.1:$nport;
        root $work/nginx;
        location /feeds/ {
            types { application/atom+xml xml; }
            etag on;
            add_header Cache-Control "public, max-age=300";
            add_header X-Content-Type-Options nosniff;
            add_header Referrer-Policy same-origin;
            add_header Vary accept-encoding;
        }
    }
}
NGINX
"$nginx_bin" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
nginx_master=$!
wait_http "http://127.0.0.1:$nport/feeds/atom.xml"
gazette_pid=${pids[0]}
nginx_workers=$(pgrep -P "$nginx_master" | tr '\n' ' ')

# --- check both answer alike: 200 without a tag, 304 with their own ---------------
declare -A etag
for who in nginx gazette; do
  port=$([ "$who" = nginx ] && echo "$nport" || echo "$gport")
  url="http://127.0.0.1:$port/feeds/atom.xml"
  curl -sS -D "$work/$who.h" -o "$work/$who.body" "$url"
  grep -q "^HTTP/1.1 200" "$work/$who.h" || { echo "$who: no 200" >&2; cat "$work/$who.h" >&2; exit 1; }
  cmp -s "$work/$who.body" "$atom" || { echo "$who: the body is not atom.xml" >&2; exit 1; }
  grep -qi '^content-type: application/atom+xml' "$work/$who.h" || { echo "$who: content-type" >&2; exit 1; }
  grep -qi '^cache-control: public, max-age=300' "$work/$who.h" || { echo "$who: cache-control" >&2; exit 1; }
  grep -qi '^last-modified: ' "$work/$who.h" || { echo "$who: last-modified" >&2; exit 1; }
  if grep -qi '^content-encoding' "$work/$who.h"; then echo "$who: compressed" >&2; exit 1; fi
  etag[$who]=$(grep -i '^etag:' "$work/$who.h" | cut -d' ' -f2- | tr -d '\r')
  [ -n "${etag[$who]}" ] || { echo "$who: no ETag" >&2; exit 1; }
  code=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: ${etag[$who]}" "$url")
  [ "$code" = 304 ] || { echo "$who: If-None-Match ${etag[$who]} got $code, not 304" >&2; exit 1; }
done
echo "atom.xml: $size bytes ($ARTICLES articles); gazette ETag ${etag[gazette]}, nginx ETag ${etag[nginx]}" >&2
echo "headers, gazette:" >&2; sed 's/^/  /' "$work/gazette.h" >&2
echo "headers, nginx:" >&2; sed 's/^/  /' "$work/nginx.h" >&2

# --- load ------------------------------------------------------------------------
# wrk prints "Requests/sec: N"; any socket error or an unexpected status
# fails the run (a 304 is not "non-2xx or 3xx" for wrk). Beside the rate, the
# CPU time the server's processes used (user + system, from /proc) per
# request: what the load costs the server, whatever share of the cores
# wrk and other processes left it.
hz=$(getconf CLK_TCK)
cpu_ticks() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s }'; }
load() { # WHO CASE -> "req/s cpu-us-per-request"
  local who=$1 case=$2 port hdr=() out t0 t1 server
  if [ "$who" = nginx ]; then port=$nport server=$nginx_workers; else port=$gport server=$gazette_pid; fi
  [ "$case" = 304 ] && hdr=(-H "If-None-Match: ${etag[$who]}")
  # shellcheck disable=SC2086
  t0=$(cpu_ticks $server)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "${hdr[@]}" "http://127.0.0.1:$port/feeds/atom.xml")
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $server)
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
    echo "$who $case: errors under load:" >&2; echo "$out" >&2; exit 1
  fi
  awk -v t="$((t1 - t0))" -v hz="$hz" '
    /requests in/ { n = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%s %.2f\n", rps, t / hz * 1e6 / n }' <<<"$out"
}

declare -A results cpu
for r in $(seq "$RUNS"); do
  for case in 200 304; do
    for who in nginx gazette; do
      read -r v us < <(load "$who" "$case")
      results[$who.$case]+="$v "
      cpu[$who.$case]+="$us "
      printf 'round %d: %-7s %s  %12.0f req/s  %6.2f us CPU/request\n' "$r" "$who" "$case" "$v" "$us" >&2
    done
  done
done

# The gazette process is still serving after the load: prove it.
curl -fsS -o /dev/null "http://127.0.0.1:$gport/healthz"

echo
echo "GET /feeds/atom.xml ($size bytes), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $RUNS rounds on $(nproc) cores"
echo "req/s: median (min-max) of the rounds; ratio = gazette/nginx of the medians"
echo "CPU: the server's user+system microseconds per request, median"
printf '%-18s %-24s %-24s %6s   %-10s %-10s\n' "case" "nginx $("$nginx_bin" -v 2>&1 | sed 's|.*/||')" "gazette" "ratio" "nginx CPU" "gazette CPU"
printf '%-18s %-24s %-24s %6s   %-10s %-10s\n' "------------------" "------------------------" "------------------------" "------" "----------" "-----------"
met=yes
for case in 200 304; do
  out=$(python3 - "$case" "${results[nginx.$case]}" "${results[gazette.$case]}" "${cpu[nginx.$case]}" "${cpu[gazette.$case]}" <<'PY'
import statistics, sys
case = sys.argv[1]
n, g, nc, gc = ([float(x) for x in a.split()] for a in sys.argv[2:6])
label = "200 full body" if case == "200" else "304 If-None-Match"
cell = lambda v: f"{statistics.median(v):8.0f} ({min(v):.0f}-{max(v):.0f})"
ratio = statistics.median(g) / statistics.median(n)
us = lambda v: f"{statistics.median(v):6.2f} us"
print(f"{label:<18} {cell(n):<24} {cell(g):<24} {ratio:6.2f}   {us(nc):<10} {us(gc):<10}", "1" if ratio >= 0.8 else "0")
PY
)
  echo "${out% *}"
  [ "${out##* }" = 1 ] || met=no
done
echo
if [ "$met" = yes ]; then
  echo "gazette/nginx >= 0.8 in both cases: met"
else
  echo "gazette/nginx >= 0.8 in both cases: NOT met"
fi
