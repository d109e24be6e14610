#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md on this machine: the whole flow under load (without
# and with Redis) against the raw SQL limit, a CPU profile of that load, 10,000 subscriptions,
# the time to ready, and the criterion micro-benchmarks. Needs Postgres on 127.0.0.1:5432 (and
# Redis on 127.0.0.1:6379 for the Redis round); results go to target/bench-results/<time>/.
#
#   bash benches/reproduce.sh                 # everything, about 10 minutes
#   DURATION=5 SUBSCRIBERS=2000 bash benches/reproduce.sh   # a quicker pass
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONCURRENCY=${CONCURRENCY:-64}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
DB=mc_bench
PORT=${PORT:-18090}
OUT=target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log() { printf '\n== %s\n' "$*" | tee -a "$OUT/summary.txt"; }

cargo build --release --bin missedcall --bin loadgen

export DATABASE_URL=$SERVER/$DB MISSEDCALL_LISTEN=127.0.0.1:$PORT \
  MISSEDCALL_SIMULATOR_RING_DELAY_MS=0 MISSEDCALL_LIMIT_VERIFY_IP_PER_MINUTE=100000000 \
  MISSEDCALL_DATABASE_POOL_SIZE=32 RUST_LOG=warn
SERVICE_PID=

fresh_database() {
  psql -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  ./target/release/missedcall migrate
}

start_service() {
  ./target/release/missedcall serve >>"$OUT/service.log" 2>&1 &
  SERVICE_PID=$!
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.005; done
}

stop_service() {
  kill -TERM "$SERVICE_PID"
  wait "$SERVICE_PID" || true
}

flow() {
  ./target/release/loadgen flow --url "http://127.0.0.1:$PORT" --database-url "$DATABASE_URL" \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --service-pid "$SERVICE_PID" "$@"
}

log "ready to serve (ms from process start to a 200 from /readyz, on a migrated database)"
fresh_database
for _ in 1 2 3 4 5; do
  started=$(date +%s%N)
  start_service
  echo "$(( ($(date +%s%N) - started) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
  stop_service
done

log "flow, $CONCURRENCY phones, in-process fan-out, then the raw SQL"
fresh_database
start_service
flow | tee "$OUT/flow-local.txt" | tee -a "$OUT/summary.txt"
stop_service

if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  log "flow, $CONCURRENCY phones, with Redis (fan-out and limits)"
  fresh_database
  REDIS_URL=redis://127.0.0.1:6379 MISSEDCALL_REDIS_PREFIX=bench-$$ start_service
  flow | tee "$OUT/flow-redis.txt" | tee -a "$OUT/summary.txt"
  stop_service
fi

if command -v perf >/dev/null && perf record -o /dev/null -e cpu-clock true >/dev/null 2>&1; then
  log "where the CPU goes during the flow (perf, cpu-clock, whole machine)"
  fresh_database
  start_service
  perf record -q -a -g -e cpu-clock -F 499 -o "$OUT/perf.data" -- \
    ./target/release/loadgen flow --url "http://127.0.0.1:$PORT" --database-url "$DATABASE_URL" \
    --concurrency "$CONCURRENCY" --duration 10 --no-raw --service-pid "$SERVICE_PID" \
    >"$OUT/flow-profiled.txt"
  stop_service
  # The reports are long; only their heads are kept (and a closed pipe is no failure).
  { perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | head -12 | tee -a "$OUT/summary.txt"; } || true
  { perf report -i "$OUT/perf.data" --no-children --comm postgres --sort sym --stdio -g none \
    2>/dev/null | grep -E '^ +[0-9]' | head -30 >"$OUT/profile-postgres.txt"; } || true
  { perf report -i "$OUT/perf.data" --no-children --pid "$SERVICE_PID" --sort sym --stdio -g none \
    2>/dev/null | grep -E '^ +[0-9]' | head -30 >"$OUT/profile-service.txt"; } || true
fi

log "subscriptions: $SUBSCRIBERS held, then verified at 250/s and at 1000/s"
for rate in 250 1000; do
  fresh_database
  start_service
  ./target/release/loadgen subscribe --url "http://127.0.0.1:$PORT" --database-url "$DATABASE_URL" \
    --subscribers "$SUBSCRIBERS" --rate "$rate" --hold 5 --service-pid "$SERVICE_PID" \
    | tee "$OUT/subscribe-$rate.txt" | tee -a "$OUT/summary.txt"
  stop_service
done

log "micro-benchmarks (criterion)"
cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3 2>/dev/null \
  | tee "$OUT/hot_paths.txt" | { grep -E '^[a-z_]+/|time:' || true; } | tee -a "$OUT/summary.txt"
cargo bench --bench rls_cost 2>/dev/null | tee "$OUT/rls_cost.txt" | { tail -8 || true; } \
  | tee -a "$OUT/summary.txt"

psql -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
echo
echo "results: $OUT/summary.txt"
