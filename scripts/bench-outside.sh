#!/usr/bin/env bash
# The throughput bench with the publisher and the receiver outside the portal (issue 18): ab
# publishes events through the REST API (32 kept-alive connections), nginx answers every
# delivery 200 at once, and the portal (release build) runs alone in its own process. Prints
# deliveries per second from the first publish to the last arrival, how long publishing took,
# and the whole machine's and the portal's CPU share over the run.
#
#   scripts/bench-outside.sh [WEBHOOKS] [EVENTS]      # defaults: 1 webhook, 20000 events
#   scripts/bench-outside.sh 10 2000                  # fan-out: 20,000 deliveries
#   BENCH_DATABASE=postgres://root@127.0.0.1:5432/postgres scripts/bench-outside.sh
#   BENCH_RATE=200 scripts/bench-outside.sh 1 2000   # latency: 200 events/s, one at a time, and
#                                                    # publish-to-arrival p50/p99/max
#   BENCH_SQL='DROP INDEX deliveries_event' scripts/bench-outside.sh 10 2000   # without an index
#   BENCH_PORTAL=/tmp/portal-before scripts/bench-outside.sh 10 2000          # another build
#
# Installs ab (apache2-utils) and nginx from Debian's packages when they are missing. Figures go to
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WEBHOOKS="${1:-1}"
EVENTS="${2:-20000}"
CONNECTIONS=32

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v ab >/dev/null || as_root apt-get install -y apache2-utils
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || as_root apt-get install -y nginx-light
if [ -n "${BENCH_SQL:-}" ] && [[ "${BENCH_DATABASE:-}" != postgres* ]]; then
  command -v sqlite3 >/dev/null || as_root apt-get install -y sqlite3
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
# BENCH_PORTAL=path: a portal binary built before (to compare two builds side by side).
if [ -n "${BENCH_PORTAL:-}" ]; then
  PORTAL="$BENCH_PORTAL"
else
  cargo build --locked --release -p server --bin portal
  PORTAL="$PWD/target/release/portal"
fi

DIR="$(mktemp -d)"
chmod 755 "$DIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RECEIVER_PORT="$(free_port)"
PORTAL_PORT="$(free_port)"
TOKEN="bench-operator-token-0123456789abcdef"

# The database: a SQLite file, or a new database on BENCH_DATABASE's PostgreSQL server.
PG_DB=""
if [[ "${BENCH_DATABASE:-}" == postgres* ]]; then
  PG_DB="portal_bench_$(date +%s%N)"
  psql "$BENCH_DATABASE" -qc "CREATE DATABASE $PG_DB"
  export DATABASE_URL="${BENCH_DATABASE%/*}/$PG_DB"
else
  export DATABASE_URL="sqlite://$DIR/bench.db"
fi

cleanup() {
  # BENCH_LOG=file keeps the portal's log (RUST_LOG=server::dispatcher=debug adds each claim's
  # and each recorded batch's time) for a profile of where a delivery waits.
  [ -n "${BENCH_LOG:-}" ] && [ -f "$DIR/portal.log" ] && cp "$DIR/portal.log" "$BENCH_LOG"
  [ -n "${PORTAL_PID:-}" ] && kill "$PORTAL_PID" 2>/dev/null && wait "$PORTAL_PID" 2>/dev/null
  [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null
  [ -n "$PG_DB" ] && psql "$BENCH_DATABASE" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
  rm -rf "$DIR"
}
trap cleanup EXIT

# The receiver: nginx answers 200 at once and logs when each request arrived.
cat >"$DIR/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 4096; }
http {
  log_format arrival '\$msec \$status \$http_webhook_id';
  access_log $DIR/access.log arrival buffer=64k flush=50ms;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$RECEIVER_PORT;
    location / { return 200 "ok"; }
  }
}
EOF
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR"

# The portal, with a site folder that does not exist (pages are not part of this bench).
"$PORTAL" serve --addr "127.0.0.1:$PORTAL_PORT" --operator-token "$TOKEN" \
  --allow-private-targets true --site-root "$DIR/no-site" 2>"$DIR/portal.log" &
PORTAL_PID=$!
URL="http://127.0.0.1:$PORTAL_PORT"
for _ in $(seq 1 300); do curl -fs "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "$URL/healthz" >/dev/null || { cat "$DIR/portal.log"; exit 1; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
PARTNER="$("$PORTAL" partner create --name Bench --email bench@bench.test --json | json_field id)"
KEY="$("$PORTAL" api-key create --partner "$PARTNER" --json | json_field key)"
for i in $(seq 1 "$WEBHOOKS"); do
  curl -fs -o /dev/null -X POST "$URL/api/v1/webhooks" -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/hook/$i\"}"
done

# BENCH_SQL: a statement run on the bench's database before publishing, to measure what a
# schema choice costs (e.g. BENCH_SQL='DROP INDEX deliveries_event' for a run without it).
if [ -n "${BENCH_SQL:-}" ]; then
  if [ -n "$PG_DB" ]; then psql "$DATABASE_URL" -qc "$BENCH_SQL"; else sqlite3 "$DIR/bench.db" "$BENCH_SQL"; fi
fi

# The publisher: ab sends EVENTS events over CONNECTIONS kept-alive connections; each is
# published without an id, so the portal gives each a new one.
printf '%s' "{\"partnerId\":\"$PARTNER\",\"type\":\"verification.completed\",\"status\":\"success\",\"data\":{\"verificationId\":\"ver_1\"}}" >"$DIR/event.json"

cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
portal_ticks() { awk '{print $14+$15}' "/proc/$PORTAL_PID/stat"; }
read -r TOTAL0 IDLE0 < <(cpu)
P0="$(portal_ticks)"
START="$(date +%s.%N)"
if [ -n "${BENCH_RATE:-}" ]; then
  # Paced: one event every 1/RATE s over one kept-alive connection, each with its own id, and
  # the time it was sent, for the latency to its arrivals (nginx logs the webhook-id header).
  python3 - "$PORTAL_PORT" "$TOKEN" "$PARTNER" "$EVENTS" "$BENCH_RATE" "$DIR/sent.json" <<'EOF'
import http.client, json, sys, time
port, token, partner, events, rate, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
sent, start = {}, time.time()
for i in range(events):
    pause = start + i / rate - time.time()
    if pause > 0:
        time.sleep(pause)  # the publisher's pace, not a wait for the portal
    event_id = f"evt_rate_{i}"
    body = json.dumps({"partnerId": partner, "type": "verification.completed", "status": "success",
                       "id": event_id, "data": {"verificationId": "ver_1"}})
    at = time.time()
    conn.request("POST", "/api/v1/events", body, headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 202, answer.status
    sent[event_id] = at
json.dump(sent, open(out, "w"))
EOF
else
  ab -q -k -n "$EVENTS" -c "$CONNECTIONS" -p "$DIR/event.json" -T application/json \
    -H "authorization: Bearer $TOKEN" "$URL/api/v1/events" >"$DIR/ab.out"
fi
PUBLISHED_AT="$(date +%s.%N)"
PUBLISHED="$(curl -fs -H "authorization: Bearer $TOKEN" "$URL/metrics" | awk '/^portal_events_published_total /{print $2}')"
EXPECTED=$(( ${PUBLISHED%.*} * WEBHOOKS ))
arrived() { grep -c ' 200 ' "$DIR/access.log" 2>/dev/null || true; }
DEADLINE=$(( $(date +%s) + 600 ))
while [ "$(arrived)" -lt "$EXPECTED" ]; do
  [ "$(date +%s)" -lt "$DEADLINE" ] || { echo "only $(arrived) of $EXPECTED deliveries arrived"; exit 1; }
  sleep 0.05
done
read -r TOTAL1 IDLE1 < <(cpu)
P1="$(portal_ticks)"
LAST="$(tail -n 1 "$DIR/access.log" | cut -d' ' -f1)"
HZ="$(getconf CLK_TCK)"
CORES="$(nproc)"
BACKEND="SQLite"; [ -n "$PG_DB" ] && BACKEND="PostgreSQL"
python3 - "$START" "$PUBLISHED_AT" "$LAST" "$EXPECTED" "$TOTAL0" "$IDLE0" "$TOTAL1" "$IDLE1" "$P0" "$P1" "$HZ" "$CORES" \
  "$WEBHOOKS" "${PUBLISHED%.*}" "$BACKEND" <<'EOF'
import sys
start, published_at, last, expected, t0, i0, t1, i1, p0, p1, hz, cores = map(float, sys.argv[1:13])
webhooks, events, backend = sys.argv[13], sys.argv[14], sys.argv[15]
run = last - start
busy = 100 * (1 - (i1 - i0) / (t1 - t0))
portal = 100 * (p1 - p0) / hz / run / cores
print(f"{backend}, {webhooks} webhook(s), {events} events: {int(expected)} deliveries in {run:.2f} s = "
      f"{expected / run:.0f} deliveries/s; publishing took {published_at - start:.2f} s; "
      f"machine busy {busy:.0f} %, portal {portal:.0f} % of the machine ({cores:.0f} cores)")
EOF
if [ -n "${BENCH_RATE:-}" ]; then
  python3 - "$DIR/sent.json" "$DIR/access.log" "$BENCH_RATE" <<'EOF'
import json, sys
sent = json.load(open(sys.argv[1]))
ms = sorted((float(at) - sent[event]) * 1000 for at, status, event in (line.split() for line in open(sys.argv[2]))
            if status == "200" and event in sent)
pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"publish -> arrival at {sys.argv[3]} events/s, {len(ms)} deliveries: p50 {pick(0.5):.1f} ms, "
      f"p99 {pick(0.99):.1f} ms, max {ms[-1]:.1f} ms (nginx logs arrivals to the millisecond)")
EOF
else
  grep -E "^(Complete|Failed|Non-2xx) " "$DIR/ab.out" || true
fi
