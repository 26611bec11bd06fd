#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: repeatable for the same
# binary and inputs, whatever else the machine does, so two builds compare without noise.
#
#   bench/callgrind.sh                            # this tree's dist build
#   TOLLGATE_BIN=/path/to/old/tollgate bench/callgrind.sh   # another build, same requests
#   LOG_LEVEL=warn REQUESTS=4000 bench/callgrind.sh
#   ROUTE_EXTRA='rate_limit = { rate = "1000000/s" }' bench/callgrind.sh   # the route with more keys
#
# The gateway runs under valgrind with one HS256 service route to a small upstream (Python's
# http.server would be too slow under load; the upstream is not measured anyway). A client
# sends WARMUP requests, then REQUESTS more on one keep-alive connection; callgrind's counts
# are dumped (and zeroed) after each, so start-up, warm-up and shutdown are left out. LOG_LEVEL defaults to the gateway's own default (info).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "callgrind.sh: needs nginx" >&2; exit 1; }
if [ -z "${TOLLGATE_BIN:-}" ]; then cargo build --profile dist --locked --quiet; fi
TOLLGATE=${TOLLGATE_BIN:-$PWD/target/dist/tollgate}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPSTREAM=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off; worker_processes 1; error_log $WORK/nginx/error.log; pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$UPSTREAM; location / { return 200 "ok\n"; } } }
CONF
/usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
SECRET=callgrind-benchmark-secret-of-32-bytes-at-least
cat > "$WORK/tollgate.toml" <<CONF
[server]
listen = ["127.0.0.1:$PORT"]
admin_listen = "127.0.0.1:$ADMIN"
$( [ -n "${LOG_LEVEL:-}" ] && printf '[log]\nlevel = "%s"\n' "$LOG_LEVEL" )
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "$SECRET"
[tokens]
services = ["bench"]
[[routes]]
prefix = "/svc"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "service"
${ROUTE_EXTRA:-}
CONF
TOKEN=$("$TOLLGATE" token issue bench --config "$WORK/tollgate.toml")
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.%p" --dump-instr=no \
  "$TOLLGATE" serve --config "$WORK/tollgate.toml" 2>"$WORK/tollgate.log" & VG=$!; PIDS+=($VG)
python3 - "$PORT" "$TOKEN" "$WARMUP" "$REQUESTS" "$VG" "$WORK" <<'PY'
import glob, http.client, os, re, signal, subprocess, sys, time
port, token, warmup, requests, vg, work = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60); conn.connect(); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("callgrind.sh: the gateway did not listen")
def send(n):
    for _ in range(n):
        conn.request("GET", "/svc/x", headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse(); r.read()
        if r.status != 200: sys.exit(f"callgrind.sh: status {r.status}")
def dump():
    # The counts since the last dump (a dump zeroes them), without stopping the program.
    subprocess.run(["callgrind_control", "--dump", str(vg)], check=True, capture_output=True)
    time.sleep(0.5)
    files = sorted(glob.glob(os.path.join(work, "callgrind.*")), key=os.path.getmtime)
    text = open(files[-1]).read()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
send(warmup); dump()
send(requests); counted = dump()
print(f"{counted / requests:.0f} instructions per request ({requests} requests after {warmup} warm-up)")
PY
