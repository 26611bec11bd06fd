#!/usr/bin/env bash
# Side-by-side benchmark of tollgate against nginx and HAProxy on one machine over loopback.
#
#   bench/run.sh                       # DURATION=10 CONNECTIONS=50 WARMUP=3 by default
#   DURATION=20 CONNECTIONS=100 REPEAT=5 bench/run.sh
#
# Each proxy runs alone, pinned to CPU 0; wrk and the upstream (nginx answering "200 ok") share
# CPU 1. Per row: requests/s, p50 and p99 latency, non-2xx count, and the proxy's own CPU time
# per request from /proc/<pid>/stat (the figure that holds best on a shared, noisy machine).
# Writes bench/results.md (override with OUT=...). Needs root or sudo for apt-get on first run.
# Each row's CPU and req/s are also given as a ratio to nginx proxying the same kind of traffic
# (plain keep-alive, a new connection per request, h2c, TLS keep-alive, a TLS handshake per
# request) in the same run. tollgate runs at its default log level (info: the access log is
# on); LOG_LEVEL=warn measures it without. The idle-connection rows open 10,000 idle HTTP/1.1,
# h2c and TLS connections to a fresh tollgate and a fresh nginx, one kind at a time.
# ONLY=<regex> runs only the matching rows (keep an nginx row in it for the ratios).
# REVOCATIONS=<n> loads a revocation list of n tokens into tollgate (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-3}
REPEAT=${REPEAT:-3}
OUT=${OUT:-$ROOT/bench/results.md}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

install_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v h2load >/dev/null || missing+=(nghttp2-client)
  [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_tools
# TOLLGATE_BIN=<path> benchmarks another build (e.g. an older commit) instead of this tree's.
if [ -z "${TOLLGATE_BIN:-}" ]; then cargo build --profile dist --locked --quiet; fi
TOLLGATE=${TOLLGATE_BIN:-$ROOT/target/dist/tollgate}
NGINX=/usr/sbin/nginx
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

UPSTREAM=18080; NGINX_PROXY=18081; HAPROXY_PLAIN=18082; HAPROXY_JWT=18083; TOLLGATE_PORT=18084; TOLLGATE_ADMIN=18085
NGINX_TLS=18086; HAPROXY_TLS=18087; TOLLGATE_TLS=18088; NGINX_H2C=18089
# The same tollgate with traces on, at two sample ratios: data, admin and TLS ports each.
TRACED_1PCT=(18090 18091 18092); TRACED_ALL=(18093 18094 18095)
# A copy whose rate limits are kept in Redis (redis-server on REDIS_PORT); data, admin, TLS.
REDIS_PORT=18096; REDIS_KEPT=(18097 18098 18099); REDIS_BATCHED=(18100 18101 18102)
SECRET="bench-secret-0123456789-0123456789-0123456789"

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

# --- upstream: nginx answering 200 ok, and a fake vendor login -----------------------------
mkdir -p "$WORK/nginx"
# One nginx process, no daemon, no logs, temp files in $WORK; `$1` names its pid file.
nginx_conf_head() {
  cat <<CONF
worker_processes 1; daemon off; master_process off; pid $WORK/$1.pid;
error_log /dev/null crit;
events { worker_connections 20000; }
http {
  access_log off; client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  keepalive_requests 1000000;
CONF
}
{ nginx_conf_head upstream; cat <<CONF
  server {
    listen 127.0.0.1:$UPSTREAM;
    client_max_body_size 0;
    location = /login { default_type application/json; return 200 '{"statusCode":200,"accessToken":"vendor-token"}'; }
    # The OTLP collector of the traced tollgates: takes every export, keeps nothing.
    location = /v1/traces { default_type application/x-protobuf; return 200 ""; }
    location / { default_type text/plain; return 200 "ok"; }
  }
}
CONF
} > "$WORK/upstream.conf"
taskset -c "$LOAD_CPU" $NGINX -c "$WORK/upstream.conf" -p "$WORK" & UPSTREAM_PID=$!; PIDS+=($UPSTREAM_PID)
wait_port $UPSTREAM

# --- tokens: minted by tollgate itself ------------------------------------------------------
KEYS=$ROOT/tests/fixtures/keys
issuers() {
  cat <<CONF
# Only the [tokens] signing issuer may vouch for services unless an issuer says so.
[[issuers]]
issuer = "bench-hs"
algorithms = ["HS256"]
secret = "$SECRET"
service_tokens = true
[[issuers]]
issuer = "bench-rs"
algorithms = ["RS256"]
signing_key = { private_key_file = "$KEYS/rsa.key", algorithm = "RS256", kid = "rs" }
service_tokens = true
[[issuers]]
issuer = "bench-es"
algorithms = ["ES256"]
signing_key = { private_key_file = "$KEYS/ec256.key", algorithm = "ES256", kid = "es" }
service_tokens = true
CONF
}
mint() { # issuer
  { issuers; printf '[tokens]\nissuer = "%s"\n' "$1"; } > "$WORK/mint-$1.toml"
  "$TOLLGATE" token issue bench --ttl 1d --config "$WORK/mint-$1.toml"
}
HS_TOKEN=$(mint bench-hs); RS_TOKEN=$(mint bench-rs); ES_TOKEN=$(mint bench-es)

# --- measurement ------------------------------------------------------------------------------
ROWS=()
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# SCHEME=https measures over TLS; CLOSE=1 sends `Connection: close`, so every request pays a
# new connection and a TLS handshake: a resumed one, since wrk (OpenSSL) offers the session
# ticket of an earlier connection, and nginx and tollgate take it.
kind() { # the kind of traffic, which names the nginx row a row is compared with
  local k=h1
  [ "${SCHEME:-http}" = https ] && k=tls
  [ "${CLOSE:-0}" = 1 ] && k="$k-close"
  echo "$k"
}

# h2c with prior knowledge: 10 connections of 10 concurrent streams each (h2load, from nghttp2).
measure_h2c() { # name port path pid token
  local name=$1 port=$2 path=$3 pid=$4 token=${5:-}
  if [ -n "${ONLY:-}" ] && [[ ! "$name" =~ $ONLY ]]; then return 0; fi
  local auth=()
  [ -n "$token" ] && auth=(-H "authorization: Bearer $token")
  local url="http://127.0.0.1:$port$path"
  taskset -c "$LOAD_CPU" h2load -c10 -m10 -D"$WARMUP" "${auth[@]}" "$url" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CPU" h2load -c10 -m10 -D"$DURATION" "${auth[@]}" "$url" > "$WORK/$name.h2load"
  after=$(cpu_ticks "$pid")
  local row
  row=$(python3 - "$WORK/$name.h2load" "$before" "$after" "$CLK_TCK" "$name" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
before, after, tck, name = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
done, failed, errored = int(m.group(1)), int(m.group(3)), int(m.group(4))
status = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
errors = failed + errored + (sum(int(x) for x in status.groups()) if status else 0)
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
cpu_us = (after - before) / tck * 1e6 / max(done, 1)
# h2load gives no percentiles: the mean stands in the p50 column, p99 is left 0.
print(f"{name}|{rps:.0f}|{ms(*mean.groups()) if mean else 0:.2f}|0|{cpu_us:.1f}|{errors}|h2c")
PY
)
  echo "  $row" >&2
  ROWS+=("$row")
}
measure() { # name port path pid token
  local name=$1 port=$2 path=$3 pid=$4 token=${5:-}
  if [ -n "${ONLY:-}" ] && [[ ! "$name" =~ $ONLY ]]; then return 0; fi
  local auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  [ "${CLOSE:-0}" = 1 ] && auth+=(-H "Connection: close")
  local url="${SCHEME:-http}://127.0.0.1:$port$path"
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${auth[@]}" "$url" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${auth[@]}" \
    "$url" > "$WORK/$name.wrk"
  after=$(cpu_ticks "$pid")
  local row
  row=$(python3 - "$WORK/$name.wrk" "$before" "$after" "$CLK_TCK" "$name" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
before, after, tck, name = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
reqs = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = dict((p, ms(v, u)) for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)", text))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = int(non2xx.group(1)) if non2xx else 0
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if sock:
    errors += sum(int(x) for x in sock.groups())
cpu_us = (after - before) / tck * 1e6 / max(reqs, 1)
print(f"{name}|{rps:.0f}|{lat.get('50', 0):.2f}|{lat.get('99', 0):.2f}|{cpu_us:.1f}|{errors}")
PY
)
  row="$row|$(kind)"
  echo "  $row" >&2
  ROWS+=("$row")
}


echo "nginx proxy" >&2
{ nginx_conf_head proxy; cat <<CONF
  upstream up { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PROXY;
    listen 127.0.0.1:$NGINX_H2C http2;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
} > "$WORK/proxy.conf"
start_nginx() { # conf port: sets NGINX_STARTED
  taskset -c "$PROXY_CPU" $NGINX -c "$WORK/$1" -p "$WORK" & NGINX_STARTED=$!; PIDS+=($NGINX_STARTED)
  wait_port "$2"
}
start_nginx proxy.conf $NGINX_PROXY; NGINX_PID=$NGINX_STARTED

# One certificate for every TLS row: ECDSA P-256, the usual choice, generated per run.
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" > "$WORK/tls/haproxy.pem"

echo "nginx tls proxy" >&2
{ nginx_conf_head tls; cat <<CONF
  upstream up { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl;
    ssl_certificate $WORK/tls/cert.pem; ssl_certificate_key $WORK/tls/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
} > "$WORK/tls.conf"
start_nginx tls.conf $NGINX_TLS; NGINX_TLS_PID=$NGINX_STARTED

haproxy_conf() { # port extra-frontend-lines [bind options]
  cat <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$1 ${3:-}
$2
  default_backend be
backend be
  server up 127.0.0.1:$UPSTREAM
CONF
}

echo "haproxy proxy" >&2
haproxy_conf $HAPROXY_PLAIN "" > "$WORK/haproxy-plain.cfg"
taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy-plain.cfg" & HAPROXY_PID=$!; PIDS+=($HAPROXY_PID); wait_port $HAPROXY_PLAIN

echo "haproxy jwt" >&2
HAPROXY_JWT_RULES="  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str HS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,\"$SECRET\") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request del-header x-user-id
  http-request del-header x-user-type
  http-request del-header x-service-name
  http-request set-header x-user-id %[var(txn.bearer),jwt_payload_query('\$.user_id')]
  http-request set-header x-user-type %[var(txn.bearer),jwt_payload_query('\$.type')]
  http-request set-header x-service-name %[var(txn.bearer),jwt_payload_query('\$.service')]"
haproxy_conf $HAPROXY_JWT "$HAPROXY_JWT_RULES" > "$WORK/haproxy-jwt.cfg"
taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy-jwt.cfg" & HAPROXY_JWT_PID=$!; PIDS+=($HAPROXY_JWT_PID); wait_port $HAPROXY_JWT

echo "haproxy tls jwt" >&2
haproxy_conf $HAPROXY_TLS "$HAPROXY_JWT_RULES" "ssl crt $WORK/tls/haproxy.pem alpn http/1.1" > "$WORK/haproxy-tls.cfg"
taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy-tls.cfg" & HAPROXY_TLS_PID=$!; PIDS+=($HAPROXY_TLS_PID); wait_port $HAPROXY_TLS

echo "tollgate" >&2
{
  cat <<CONF
[server]
listen = ["127.0.0.1:$TOLLGATE_PORT"]
admin_listen = "127.0.0.1:$TOLLGATE_ADMIN"
[limits]
max_connections = 20000
# Opening the 10,000 idle connections below takes longer than the default 10 s after which an
# idle keep-alive connection is closed; all of them must still be open when RSS is read.
header_read_timeout = "60s"
# The 10,000 idle clients below all come from 127.0.0.1; real ones come from many addresses.
max_connections_per_ip = 20000
$( [ -n "${LOG_LEVEL:-}" ] && printf '[log]\nlevel = "%s"\n' "$LOG_LEVEL" )
[server.tls]
listen = ["127.0.0.1:$TOLLGATE_TLS"]
certificates = [{ cert_file = "$WORK/tls/cert.pem", key_file = "$WORK/tls/key.pem" }]
CONF
  # REVOCATIONS=N: the gateway enforces a revocation list of N tokens (none of them the
  # benchmark's), to measure what the per-request revocation check costs with a full list.
  if [ "${REVOCATIONS:-0}" -gt 0 ]; then
    python3 - "$WORK/revocations.json" "$REVOCATIONS" <<'PY'
import json, sys, time
now = int(time.time())
entries = [{"jti": f"revoked-{i:06d}", "revoked_at": now, "expires_at": now + 86400} for i in range(int(sys.argv[2]))]
json.dump({"revocations": entries}, open(sys.argv[1], "w"))
PY
    printf '[state]\npath = "%s"\n' "$WORK/revocations.json"
  fi
  issuers
  cat <<CONF
[[providers]]
name = "vendor"
kind = "login"
auth_url = "http://127.0.0.1:$UPSTREAM/login"
email = "bench@example.com"
password = "bench-password"
ttl = "${VENDOR_TTL:-4s}"
refresh_before = "2s"
[[routes]]
prefix = "/svc"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "service"
# /svc with a limit no load here reaches: what checking a limit costs.
[[routes]]
prefix = "/limited"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "service"
rate_limit = { rate = "1000000/s", by = "service" }
[[routes]]
prefix = "/vendor"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "service"
upstream_auth = "vendor"
[[routes]]
prefix = "/upload"
upstream = "http://127.0.0.1:$UPSTREAM"
policy = "public"
max_body_bytes = 4294967296
timeout = "300s"
CONF
} > "$WORK/tollgate.toml"
start_tollgate() { # sets TG
  taskset -c "$PROXY_CPU" "$TOLLGATE" serve --config "$WORK/tollgate.toml" 2>>"$WORK/tollgate.log" & TG=$!; PIDS+=($TG)
  wait_port $TOLLGATE_PORT
}
start_tollgate
# traced PORTS RATIO: starts a copy of tollgate.toml on other ports with traces exported to the
# upstream nginx at RATIO; sets TRACED_PID.
traced() {
  local ports=("${@:1:3}") ratio=$4 conf="$WORK/tollgate-traced-$4.toml"
  sed -e "s/:$TOLLGATE_PORT\"/:${ports[0]}\"/; s/:$TOLLGATE_ADMIN\"/:${ports[1]}\"/; s/:$TOLLGATE_TLS\"/:${ports[2]}\"/" \
    "$WORK/tollgate.toml" > "$conf"
  printf '[telemetry]\notlp_endpoint = "http://127.0.0.1:%s"\nsample_ratio = %s\n' "$UPSTREAM" "$ratio" >> "$conf"
  taskset -c "$PROXY_CPU" "$TOLLGATE" serve --config "$conf" 2>>"$WORK/tollgate-traced.log" & TRACED_PID=$!; PIDS+=($TRACED_PID)
  wait_port "${ports[0]}"
}
if [ -z "${ONLY:-}" ] || [[ "tollgate HS256, traces" =~ $ONLY ]]; then
  echo "tollgate with traces" >&2
  traced "${TRACED_1PCT[@]}" 0.01; TG_1PCT=$TRACED_PID
  traced "${TRACED_ALL[@]}" 1.0; TG_ALL=$TRACED_PID
fi
if [ -z "${ONLY:-}" ] || [[ "tollgate HS256, rate limit kept in Redis" =~ $ONLY ]] || [[ "tollgate HS256, rate limit in Redis, batches of 20" =~ $ONLY ]]; then
  command -v redis-server >/dev/null || { sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo; $sudo_ apt-get install -y -qq redis-server >/dev/null; }
  echo "tollgate with its limits in Redis" >&2
  taskset -c "$LOAD_CPU" redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >/dev/null & PIDS+=($!)
  wait_port $REDIS_PORT
  conf="$WORK/tollgate-redis.toml"
  sed -e "s/:$TOLLGATE_PORT\"/:${REDIS_KEPT[0]}\"/; s/:$TOLLGATE_ADMIN\"/:${REDIS_KEPT[1]}\"/; s/:$TOLLGATE_TLS\"/:${REDIS_KEPT[2]}\"/" \
    "$WORK/tollgate.toml" > "$conf"
  printf '[state]\nbackend = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$REDIS_PORT" >> "$conf"
  taskset -c "$PROXY_CPU" "$TOLLGATE" serve --config "$conf" 2>>"$WORK/tollgate-redis.log" & TG_REDIS=$!; PIDS+=($TG_REDIS)
  wait_port "${REDIS_KEPT[0]}"
  # The same with batches of 20 reserved per Redis call.
  sed -e "s/:${REDIS_KEPT[0]}\"/:${REDIS_BATCHED[0]}\"/; s/:${REDIS_KEPT[1]}\"/:${REDIS_BATCHED[1]}\"/; s/:${REDIS_KEPT[2]}\"/:${REDIS_BATCHED[2]}\"/" \
    "$conf" > "$WORK/tollgate-redis-batched.toml"
  printf 'rate_limit_batch = 20\n' >> "$WORK/tollgate-redis-batched.toml"
  taskset -c "$PROXY_CPU" "$TOLLGATE" serve --config "$WORK/tollgate-redis-batched.toml" 2>>"$WORK/tollgate-redis.log" & TG_BATCHED=$!; PIDS+=($TG_BATCHED)
  wait_port "${REDIS_BATCHED[0]}"
fi
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
IDLE_RSS=$(rss_kib $TG)

# Every setup is up (idle ones cost nothing); the rows run round-robin REPEAT times so that
# a noisy neighbour hurts all of them alike, and the report keeps each row's median.
for round in $(seq 1 "$REPEAT"); do
  echo "round $round of $REPEAT" >&2
  measure "direct (nginx upstream)" $UPSTREAM / $UPSTREAM_PID
  measure "nginx proxy" $NGINX_PROXY / $NGINX_PID
  CLOSE=1 measure "nginx proxy (new connection per request)" $NGINX_PROXY / $NGINX_PID
  measure_h2c "nginx h2c proxy" $NGINX_H2C / $NGINX_PID
  measure "haproxy proxy" $HAPROXY_PLAIN / $HAPROXY_PID
  measure "haproxy jwt (HS256)" $HAPROXY_JWT / $HAPROXY_JWT_PID "$HS_TOKEN"
  measure "tollgate HS256 (service route)" $TOLLGATE_PORT /svc/x $TG "$HS_TOKEN"
  [ -n "${TG_1PCT:-}" ] && measure "tollgate HS256, traces sampled at 0.01" "${TRACED_1PCT[0]}" /svc/x "$TG_1PCT" "$HS_TOKEN"
  [ -n "${TG_ALL:-}" ] && measure "tollgate HS256, traces sampled at 1.0" "${TRACED_ALL[0]}" /svc/x "$TG_ALL" "$HS_TOKEN"
  measure "tollgate HS256, local rate limit" $TOLLGATE_PORT /limited/x $TG "$HS_TOKEN"
  [ -n "${TG_REDIS:-}" ] && measure "tollgate HS256, rate limit kept in Redis" "${REDIS_KEPT[0]}" /limited/x "$TG_REDIS" "$HS_TOKEN"
  [ -n "${TG_BATCHED:-}" ] && measure "tollgate HS256, rate limit in Redis, batches of 20" "${REDIS_BATCHED[0]}" /limited/x "$TG_BATCHED" "$HS_TOKEN"
  CLOSE=1 measure "tollgate HS256 (new connection per request)" $TOLLGATE_PORT /svc/x $TG "$HS_TOKEN"
  measure_h2c "tollgate h2c HS256" $TOLLGATE_PORT /svc/x $TG "$HS_TOKEN"
  measure "tollgate RS256 (service route)" $TOLLGATE_PORT /svc/x $TG "$RS_TOKEN"
  measure "tollgate ES256 (service route)" $TOLLGATE_PORT /svc/x $TG "$ES_TOKEN"
  measure "tollgate vendor route (token rolls over every ~2s)" $TOLLGATE_PORT /vendor/x $TG "$HS_TOKEN"
  SCHEME=https measure "nginx tls proxy (keep-alive)" $NGINX_TLS / $NGINX_TLS_PID
  SCHEME=https measure "haproxy tls jwt (HS256, keep-alive)" $HAPROXY_TLS / $HAPROXY_TLS_PID "$HS_TOKEN"
  SCHEME=https measure "tollgate tls HS256 (keep-alive)" $TOLLGATE_TLS /svc/x $TG "$HS_TOKEN"
  SCHEME=https CLOSE=1 measure "nginx tls proxy (handshake per request)" $NGINX_TLS / $NGINX_TLS_PID
  SCHEME=https CLOSE=1 measure "haproxy tls jwt (HS256, handshake per request)" $HAPROXY_TLS / $HAPROXY_TLS_PID "$HS_TOKEN"
  SCHEME=https CLOSE=1 measure "tollgate tls HS256 (handshake per request)" $TOLLGATE_TLS /svc/x $TG "$HS_TOKEN"
done
LOADED_RSS=$(rss_kib $TG)

echo "1 GiB streamed upload" >&2
BEFORE_UPLOAD_RSS=$(rss_kib $TG)
head -c 1073741824 /dev/zero | taskset -c "$LOAD_CPU" curl -sS -o /dev/null -w '%{http_code}' -T - \
  -H 'content-type: application/octet-stream' "http://127.0.0.1:$TOLLGATE_PORT/upload" > "$WORK/upload.txt" &
UPLOAD_PID=$!
# RSS sampled every 100 ms while the upload streams: flat means the body is never buffered.
PEAK_UPLOAD_RSS=$BEFORE_UPLOAD_RSS
while kill -0 $UPLOAD_PID 2>/dev/null; do
  now=$(rss_kib $TG); [ "$now" -gt "$PEAK_UPLOAD_RSS" ] && PEAK_UPLOAD_RSS=$now
  sleep 0.1
done
wait $UPLOAD_PID || true
UPLOAD_STATUS=$(cat "$WORK/upload.txt")
UPLOAD_RSS="$BEFORE_UPLOAD_RSS:$PEAK_UPLOAD_RSS:$(rss_kib $TG)"

# --- idle connections: a fresh process per kind, for tollgate and for nginx ------------------
# What an idle connection costs: RSS with IDLE_CONNS idle connections open, minus RSS before
# they were opened, divided by IDLE_CONNS. Each connection has had one request answered.
IDLE_CONNS=${IDLE_CONNS:-10000}
idle_cost() { # port pid kind: prints "before_kib after_kib"
  python3 - "$1" "$2" "$3" "$IDLE_CONNS" <<'PY'
import socket, ssl, struct, sys, time
port, pid, kind, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
rss = lambda: int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0])
def frame(kind_, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind_, flags]) + struct.pack(">I", stream) + payload
# h2c with prior knowledge: the preface, empty SETTINGS, and GET /nothing (HPACK literals).
path, authority = b"/nothing", b"bench"
headers = b"\x82\x86\x44" + bytes([len(path)]) + path + b"\x41" + bytes([len(authority)]) + authority
H2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 5, 1, headers)
H1 = b"GET /nothing HTTP/1.1\r\nhost: bench\r\n\r\n"
tls = ssl.create_default_context()
tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
tls.set_alpn_protocols(["http/1.1"])
time.sleep(1)
before = rss()
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if kind == "tls":
        s = tls.wrap_socket(s, server_hostname="localhost")
    s.sendall(H2 if kind == "h2c" else H1)
    conns.append(s)
for s in conns:
    s.recv(65536)
    if kind == "h2c":
        s.sendall(frame(4, 1, 0, b""))  # SETTINGS ACK
time.sleep(3)
print(before, rss())
for s in conns:
    s.close()
PY
}
IDLE=()
idle_row() { # name kind port start-command pid-variable
  local name=$1 kind=$2 port=$3
  "$4"; local pid=${!5}
  echo "  idle $name ($kind)" >&2
  IDLE+=("$name|$kind|$(idle_cost "$port" "$pid" "$kind")")
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
kill "$TG" "$NGINX_PID" "$NGINX_TLS_PID" ${TG_1PCT:-} ${TG_ALL:-} ${TG_REDIS:-} ${TG_BATCHED:-}; wait "$TG" "$NGINX_PID" "$NGINX_TLS_PID" 2>/dev/null || true
echo "$IDLE_CONNS idle connections per kind" >&2
nginx_proxy() { start_nginx proxy.conf $NGINX_PROXY; }
nginx_tls() { start_nginx tls.conf $NGINX_TLS; }
if [ -z "${ONLY:-}" ] || [[ "idle" =~ $ONLY ]]; then
  for kind in h1 h2c tls; do
    case $kind in
      h1) idle_row tollgate h1 $TOLLGATE_PORT start_tollgate TG; idle_row nginx h1 $NGINX_PROXY nginx_proxy NGINX_STARTED ;;
      h2c) idle_row tollgate h2c $TOLLGATE_PORT start_tollgate TG; idle_row nginx h2c $NGINX_H2C nginx_proxy NGINX_STARTED ;;
      tls) idle_row tollgate tls $TOLLGATE_TLS start_tollgate TG; idle_row nginx tls $NGINX_TLS nginx_tls NGINX_STARTED ;;
    esac
  done
fi

# --- report -----------------------------------------------------------------------------------
python3 - "$OUT" "$DURATION" "$CONNECTIONS" "$IDLE_RSS" "$LOADED_RSS" "$UPLOAD_RSS" "$UPLOAD_STATUS" "$IDLE_CONNS" "${LOG_LEVEL:-info (default)}" "${IDLE[@]+"${IDLE[@]}"}" -- "${ROWS[@]}" <<'PY'
import platform, subprocess, sys, datetime, statistics
out, duration, conns, idle, loaded, upload, upload_status, idle_conns, level = sys.argv[1:10]
split = sys.argv.index("--")
idles = [r.split("|") for r in sys.argv[10:split]]
runs = [r.split("|") for r in sys.argv[split + 1:]]
rows = []
for name in dict.fromkeys(r[0] for r in runs):
    mine = [r for r in runs if r[0] == name]
    med = lambda i, fmt: fmt.format(statistics.median(float(r[i]) for r in mine))
    rows.append([name, med(1, "{:.0f}"), med(2, "{:.2f}"), med(3, "{:.2f}"), med(4, "{:.1f}"), str(sum(int(r[5]) for r in mine)), mine[0][6]])
# Each row is compared with nginx proxying the same kind of traffic in this run.
nginx = {kind: r for r in rows for kind in [r[6]] if r[0].startswith("nginx")}
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
lines = [
    f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {cpu or platform.machine()}, {subprocess.getoutput('nproc')} cores, kernel {platform.release()}.",
    f"`bench/run.sh` with DURATION={duration}s, CONNECTIONS={conns}, wrk -t1 (h2c: h2load, 10 connections × 10 streams); proxy pinned to CPU 0, the load and the upstream on CPU 1; each row is the median of {len(runs) // max(len(rows), 1)} round-robin runs (errors: the sum). tollgate log level: {level}.",
    "",
    "| setup | kind | req/s | p50 ms | p99 ms | proxy CPU µs/req | errors | req/s vs nginx | CPU vs nginx |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for name, rps, p50, p99, cpu_us, errors, kind in rows:
    ref = nginx.get(kind)
    r_rps = f"{float(rps) / float(ref[1]):.2f}×" if ref and float(ref[1]) else "–"
    r_cpu = f"{float(cpu_us) / float(ref[4]):.2f}×" if ref and float(ref[4]) else "–"
    lines.append(f"| {name} | {kind} | {rps} | {p50} | {p99} | {cpu_us} | {errors} | {r_rps} | {r_cpu} |")
lines += [
    "",
    "h2c: h2load reports no percentiles; its mean time per request is in the p50 column.",
    "",
    "| tollgate memory | RSS |",
    "| --- | ---: |",
    f"| idle, after start | {int(idle) / 1024:.1f} MiB |",
    f"| after the load rows | {int(loaded) / 1024:.1f} MiB |",
    "| during a 1 GiB streamed upload (status {}): before / peak / after | {} |".format(
        upload_status, " / ".join(f"{int(v) / 1024:.1f} MiB" for v in upload.split(":"))),
]
if idles:
    lines += [
        "",
        f"| {int(idle_conns):,} idle connections (fresh process each) | kind | RSS before | RSS with them | per connection |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, kind, sizes in idles:
        before, after = (int(v) for v in sizes.split())
        per = (after - before) * 1024 / int(idle_conns)
        lines.append(f"| {name} | {kind} | {before / 1024:.1f} MiB | {after / 1024:.1f} MiB | {per / 1000:.1f} KB |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
