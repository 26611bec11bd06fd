#!/usr/bin/env bash
# tollgate and nginx in front of an upstream with a short listen backlog (Python's http.server:
# 5), under more concurrent requests than it can accept at once (issue #27, class 8).
#
#   bench/small-backlog.sh             # CONCURRENCY=100 REQUESTS=3000
#
# Prints, per proxy, the responses by status and the slowest ones. A request that waits on a
# connection the upstream's kernel never completed shows up here as a slow 5xx.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CONCURRENCY=${CONCURRENCY:-100}
REQUESTS=${REQUESTS:-3000}
if [ -z "${TOLLGATE_BIN:-}" ]; then cargo build --profile dist --locked --quiet; fi
TOLLGATE=${TOLLGATE_BIN:-$ROOT/target/dist/tollgate}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
UPSTREAM=18180; TOLLGATE_PORT=18181; TOLLGATE_ADMIN=18182; NGINX_PORT=18183
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

mkdir -p "$WORK/www" "$WORK/nginx"
echo ok > "$WORK/www/ok"
(cd "$WORK/www" && exec python3 -m http.server --bind 127.0.0.1 "$UPSTREAM" >/dev/null 2>&1) & PIDS+=($!)
wait_port $UPSTREAM

cat > "$WORK/tollgate.toml" <<CONF
[server]
listen = ["127.0.0.1:$TOLLGATE_PORT"]
admin_listen = "127.0.0.1:$TOLLGATE_ADMIN"
[limits]
max_connections_per_ip = 10000
[[routes]]
prefix = "/"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "public"
CONF
"$TOLLGATE" serve --config "$WORK/tollgate.toml" 2>"$WORK/tollgate.log" & PIDS+=($!)
wait_port $TOLLGATE_PORT

cat > "$WORK/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://127.0.0.1:$UPSTREAM; } }
}
CONF
/usr/sbin/nginx -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!)
wait_port $NGINX_PORT

load() { # name port
  python3 - "$1" "$2" "$CONCURRENCY" "$REQUESTS" <<'PY'
import collections, http.client, sys, threading, time
name, port, workers, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
results, lock, left = [], threading.Lock(), [total]
def worker():
    conn = None
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        started = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", "/ok")
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.will_close:
                conn.close(); conn = None
        except Exception as e:
            status = type(e).__name__
            conn = None
        with lock:
            results.append((status, time.monotonic() - started))
threads = [threading.Thread(target=worker) for _ in range(workers)]
started = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - started
by_status = collections.Counter(s for s, _ in results)
slowest = sorted((d for _, d in results), reverse=True)[:3]
slow_failures = sorted(((round(d, 1), s) for s, d in results if s != 200), reverse=True)[:5]
print(f"{name}: {dict(by_status)} in {elapsed:.1f}s; slowest {', '.join(f'{d:.2f}s' for d in slowest)}; slowest failures {slow_failures}")
PY
}
load "nginx   " $NGINX_PORT
load "tollgate" $TOLLGATE_PORT
echo "tollgate's log lines for 5xx answers:"
grep '"status":5' "$WORK/tollgate.log" | head -5 || true
