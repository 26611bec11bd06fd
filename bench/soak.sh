#!/usr/bin/env bash
# Bounded soak: SOAK_SECONDS (default 600) of steady load on loopback mixing valid service
# tokens, invalid tokens and vendor-route requests, with tollgate's RSS and open file
# descriptors sampled every 10 s. Passes when both stay flat (last sample within 20% + 4 MiB of
# the first after warm-up) and the count of non-2xx answers equals the invalid requests sent.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_SECONDS=${SOAK_SECONDS:-600}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-20}
for tool in wrk python3; do command -v $tool >/dev/null || NEED=1; done
[ -x /usr/sbin/nginx ] || NEED=1
if [ -n "${NEED:-}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk nginx-light python3 >/dev/null
fi
cargo build --profile dist --locked --quiet
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
UP=18180; TG=18184; SECRET="soak-secret-0123456789-0123456789-0123"
cat > "$WORK/up.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $WORK/up.pid; error_log /dev/null crit;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { listen 127.0.0.1:$UP;
    location = /login { default_type application/json; return 200 '{"accessToken":"vendor-token"}'; }
    location / { return 200 "ok"; } } }
CONF
/usr/sbin/nginx -c "$WORK/up.conf" -p "$WORK" &
cat > "$WORK/tollgate.toml" <<CONF
[server]
listen = ["127.0.0.1:$TG"]
admin_listen = ""
[log]
level = "warn"
[[issuers]]
issuer = "soak"
algorithms = ["HS256"]
secret = "$SECRET"
[[providers]]
name = "vendor"
kind = "login"
auth_url = "http://127.0.0.1:$UP/login"
email = "soak@example.com"
password = "soak-password"
ttl = "20s"
refresh_before = "5s"
[[routes]]
prefix = "/svc"
upstream = "http://127.0.0.1:$UP"
policy = "service"
[[routes]]
prefix = "/vendor"
upstream = "http://127.0.0.1:$UP"
policy = "service"
upstream_auth = "vendor"
CONF
./target/dist/tollgate serve --config "$WORK/tollgate.toml" 2>"$WORK/tollgate.log" &
PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$TG) 2>/dev/null && break; sleep 0.05; done
TOKEN=$(./target/dist/tollgate token issue soak --config "$WORK/tollgate.toml")
cat > "$WORK/mix.lua" <<LUA
-- Every third request carries an invalid token; the others alternate service and vendor routes.
local n = 0
local good = "Bearer $TOKEN"
request = function()
  n = n + 1
  if n % 3 == 0 then
    return wrk.format("GET", "/svc/x", { ["Authorization"] = "Bearer not.a.token" })
  elseif n % 3 == 1 then
    return wrk.format("GET", "/svc/x", { ["Authorization"] = good })
  end
  return wrk.format("GET", "/vendor/x", { ["Authorization"] = good })
end
LUA
sample() { echo "$(date +%s) $(awk '/^VmRSS/ {print $2}' /proc/$PID/status) $(ls /proc/$PID/fd | wc -l)"; }
( while kill -0 $PID 2>/dev/null; do sample >> "$WORK/samples"; sleep 10; done ) &
wrk -t1 -c"$RATE_CONNECTIONS" -d"${SOAK_SECONDS}s" -s "$WORK/mix.lua" "http://127.0.0.1:$TG" > "$WORK/wrk.txt"
sample >> "$WORK/samples"
cat "$WORK/wrk.txt"
python3 - "$WORK/wrk.txt" "$WORK/samples" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
non2xx = int(m.group(1)) if m else 0
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
# Requests are issued in a fixed cycle of three, one of them invalid; wrk may count up to
# -c unfinished requests at the end, so allow that slack on the invalid count.
expected_invalid = total // 3
samples = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if l.strip()]
warm = samples[min(2, len(samples) - 1)]
last = samples[-1]
print(f"requests {total}, non-2xx {non2xx}, expected invalid ~{expected_invalid}, socket errors {socket_errors}")
print(f"RSS {warm[1]} -> {last[1]} KiB, fds {warm[2]} -> {last[2]} over {len(samples)} samples")
ok = True
if abs(non2xx - expected_invalid) > 25 or socket_errors:
    print("FAIL: errors are not exactly the invalid requests"); ok = False
if last[1] > warm[1] * 1.2 + 4096:
    print("FAIL: RSS grew"); ok = False
if last[2] > warm[2] + 10:
    print("FAIL: file descriptors grew"); ok = False
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
