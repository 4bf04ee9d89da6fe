# lib.sh - shared by the shell integration tests: start a keymgrd of our
# own on a socket in a temporary directory, and stop it by PID.
# Expects KEYMGRD, KEYMGR and COYEU_MODULE in the environment (make check
# sets them).

set -eu

: "${KEYMGRD:?KEYMGRD not set}" "${KEYMGR:?KEYMGR not set}" "${COYEU_MODULE:?COYEU_MODULE not set}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/coyeu-it.XXXXXX")
COYEU_SOCKET="$TMP/run/keymgrd.sock"
export COYEU_SOCKET
DAEMON_PID=

cleanup() {
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# Runs a program that loads the module (pkcs11-tool...). In a sanitizer
# build the module needs the ASan/UBSan runtimes, which the program lacks:
# preload them; leaks of the host program itself are not ours to report.
host() {
	if [ -n "${COYEU_SAN_PRELOAD:-}" ]; then
		LD_PRELOAD="$COYEU_SAN_PRELOAD" ASAN_OPTIONS="detect_leaks=0" "$@"
	else
		"$@"
	fi
}

fail() {
	echo "FAIL: $*" >&2
	[ -f "$TMP/keymgrd.log" ] && sed 's/^/  keymgrd: /' "$TMP/keymgrd.log" >&2
	exit 1
}

start_keymgrd() {
	"$KEYMGRD" --foreground --data-dir "$TMP/data" --socket "$COYEU_SOCKET" \
		--config /dev/null >>"$TMP/keymgrd.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		[ -S "$COYEU_SOCKET" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "keymgrd exited at start"
		sleep 0.1
	done
	fail "keymgrd did not create its socket in 10 s"
}

stop_keymgrd() {
	kill -TERM "$DAEMON_PID"
	status=0
	wait "$DAEMON_PID" || status=$?
	DAEMON_PID=
	[ "$status" -eq 0 ] || fail "keymgrd exited with $status after SIGTERM"
}
