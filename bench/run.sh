#!/bin/sh
# bench/run.sh - runs bench/bench (make bench): a keymgrd of its own on a
# socket in a temporary directory, a SoftHSM2 token directory beside it, the
# benchmark, then keymgrd stopped by PID. Installs SoftHSM2 first when it is
# missing (as root). The table goes to stdout and to bench-results.md;
# bench-results.csv and bench-results.json beside it, in the build directory.
#
# BENCH_REPS (5), BENCH_SECONDS (0.5 per repetition), BENCH_MAX_OBJECTS
# (100000) and BENCH_HOLDERS (5418) make it shorter or longer; BENCH_ONLY=remote
# runs bench/remote.sh alone (BENCH_DELAYS, BENCH_SIGNS), BENCH_ONLY=store
# bench/store.sh (SQLite against PostgreSQL).
set -eu
BUILD=${BUILD:-$(pwd)}
: "${AGENCIES:?AGENCIES not set (make bench sets it)}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ ! -r "$SOFTHSM_MODULE" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && apt-get install -y --no-install-recommends softhsm2
	else
		echo "bench: SoftHSM2 is missing; run scripts/install-deps as root" >&2
		exit 1
	fi
fi
MODULE="$BUILD/.libs/coyeu-pkcs11.so"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/coyeu-bench.XXXXXX")
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkdir "$TMP/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP" \
	>"$TMP/softhsm2.conf"
export SOFTHSM2_CONF="$TMP/softhsm2.conf"
export COYEU_SOCKET="$TMP/run/keymgrd.sock"
"$BUILD/keymgrd/keymgrd" --foreground --data-dir "$TMP/data" --socket "$COYEU_SOCKET" --config /dev/null \
	--policy-interval 0 2>"$TMP/keymgrd.log" &
PID=$!
for _ in $(seq 100); do
	[ -S "$COYEU_SOCKET" ] && break
	sleep 0.1
done
[ -S "$COYEU_SOCKET" ] || { cat "$TMP/keymgrd.log" >&2; exit 1; }

{
	echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores," \
		"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "libgcrypt $(dpkg-query -W -f '${Version}' libgcrypt20 2>/dev/null || echo '?')," \
		"SoftHSM2 $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?')," \
		"GnuTLS $(dpkg-query -W -f '${Version}' libgnutls30 2>/dev/null || echo '?'); run $(date -u '+%Y-%m-%d %H:%M UTC')"
} >"$TMP/header"
cat "$TMP/header"

only=${BENCH_ONLY:-}
: >"$TMP/table.md"
if [ "$only" != remote ] && [ "$only" != store ]; then
	COYEU_MODULE="$MODULE" SOFTHSM_MODULE="$SOFTHSM_MODULE" KEYMGR="$BUILD/keymgr/keymgr" KEYMGRD_PID="$PID" \
		KEYMGRD="$BUILD/keymgrd/keymgrd" \
		GEN_CERTS="$BUILD/tests/gen_certs" AGENCIES="$AGENCIES" BENCH_DIR="$TMP" \
		"$BUILD/bench/bench" >"$TMP/table.md"
	cat "$TMP/table.md"
	cp "$TMP/bench-results.csv" "$TMP/bench-results.json" "$BUILD/"
fi
if [ -z "$only" ] || [ "$only" = remote ]; then
	# Over a delayed link: coyeu over TLS against p11-kit's client and server.
	{
		echo
		echo "Remote: round trips (counted by the delay proxy) and seconds, coyeu over TLS and p11-kit"
		echo
		BUILD="$BUILD" BENCH_DIR="$TMP" SOFTHSM_MODULE="$SOFTHSM_MODULE" sh "$(dirname "$0")/remote.sh"
	} >"$TMP/remote.md"
	cat "$TMP/remote.md"
	cat "$TMP/remote.md" >>"$TMP/table.md"
	cp "$TMP/bench-remote.csv" "$BUILD/"
fi
if [ -z "$only" ] || [ "$only" = store ]; then
	# The store-bound rows on SQLite and on PostgreSQL.
	{
		echo
		echo "Store: coyeu on its SQLite store and on PostgreSQL (docs/ha.md), one keymgrd each"
		echo
		BUILD="$BUILD" BENCH_DIR="$TMP" SOFTHSM_MODULE="$SOFTHSM_MODULE" AGENCIES="$AGENCIES" \
			sh "$(dirname "$0")/store.sh"
	} >"$TMP/store.md"
	cat "$TMP/store.md"
	cat "$TMP/store.md" >>"$TMP/table.md"
	cp "$TMP/bench-store.csv" "$BUILD/"
fi
{ cat "$TMP/header"; echo; cat "$TMP/table.md"; } >"$BUILD/bench-results.md"
echo "written: $BUILD/bench-results.md (and its .csv, .json, bench-remote.csv, bench-store.csv)"
