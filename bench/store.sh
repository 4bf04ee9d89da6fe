#!/bin/sh
# bench/store.sh - coyeu's rows that depend on its store, on SQLite and on
# PostgreSQL, side by side (make bench; BENCH_ONLY=store alone): a P-256
# signature, create / find by CKA_ID / cold start at 500, 5,418 and
# 100,000 objects (BENCH_MAX_OBJECTS), keymgr cert import of 5,418
# certificates. Each store gets a keymgrd of its own: SQLite in a data
# directory here, PostgreSQL a server started here (tests/pg-local.sh, on
# a UNIX socket, fsync on, as a user made for the run; root only). Prints a
# Markdown table; bench-store.csv beside it in BENCH_DIR.
set -eu
: "${BUILD:?}" "${BENCH_DIR:?}" "${AGENCIES:?}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
D="$BENCH_DIR/store"
mkdir -p "$D"
PID=
fail() { echo "bench store: $*" >&2; exit 1; }
EXTRA_CLEANUP=
stop_all() {
	[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; } || true
	PID=
	eval "$EXTRA_CLEANUP" || true
}
trap stop_all EXIT INT TERM
[ "$(id -u)" -eq 0 ] || fail "PostgreSQL is started as a user made for the run: root only"
. "$(dirname "$0")/../tests/pg-local.sh"
pg_start

# One run of bench/bench (BENCH_ONLY=store) against a keymgrd on store $2
# ("" for SQLite), its CSV into $D/$1.csv.
run() {
	name=$1 store=$2
	sock="$D/$name.sock"
	set -- --foreground --data-dir "$D/$name-data" --socket "$sock" --config /dev/null --policy-interval 0
	[ -z "$store" ] || set -- "$@" --store "$store"
	"$BUILD/keymgrd/keymgrd" "$@" 2>"$D/$name.log" &
	PID=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || { cat "$D/$name.log" >&2; fail "keymgrd on $name did not start"; }
	mkdir -p "$D/$name-bench"
	COYEU_SOCKET="$sock" COYEU_MODULE="$BUILD/.libs/coyeu-pkcs11.so" SOFTHSM_MODULE="$SOFTHSM_MODULE" \
		KEYMGR="$BUILD/keymgr/keymgr" KEYMGRD="$BUILD/keymgrd/keymgrd" KEYMGRD_PID="$PID" \
		GEN_CERTS="$BUILD/tests/gen_certs" AGENCIES="$AGENCIES" BENCH_DIR="$D/$name-bench" BENCH_ONLY=store \
		"$BUILD/bench/bench" >/dev/null
	cp "$D/$name-bench/bench-results.csv" "$D/$name.csv"
	kill "$PID"
	wait "$PID" || true
	PID=
}
# The SoftHSM2 token the bench binary opens beside coyeu's (not measured).
mkdir -p "$D/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$D" >"$D/softhsm2.conf"
export SOFTHSM2_CONF="$D/softhsm2.conf"
run sqlite ""
run postgresql "$PG_URI"

# workload,unit,value of each (the same rows in the same order).
echo "| workload | unit | SQLite | PostgreSQL | PostgreSQL / SQLite (time) |"
echo "|---|---|---:|---:|---:|"
echo "workload,unit,sqlite,postgresql" >"$BENCH_DIR/bench-store.csv"
paste "$D/sqlite.csv" "$D/postgresql.csv" | tail -n +2 | awk -F '\t' '
function field(s, i,   n, a) { n = split(s, a, ","); return a[i] }
{
	name = $1; sub(/^"/, "", name); sub(/",.*/, "", name)
	rest1 = $1; sub(/^"[^"]*",/, "", rest1)
	rest2 = $2; sub(/^"[^"]*",/, "", rest2)
	unit = field(rest1, 1); s = field(rest1, 2) + 0; p = field(rest2, 2) + 0
	# Time units: PostgreSQL / SQLite; rates: SQLite / PostgreSQL (above 1: PostgreSQL slower).
	r = (unit == "ops/s" || unit == "MB/s") ? (p > 0 ? s / p : 0) : (s > 0 ? p / s : 0)
	printf "| %s | %s | %.3f | %.3f | %.2f |\n", name, unit, s, p, r
	printf "\"%s\",%s,%.4f,%.4f\n", name, unit, s, p >> "'"$BENCH_DIR/bench-store.csv"'"
}'
