#!/bin/sh
# The store's Check suite (the tests of /store-both) against a real
# PostgreSQL server started here, and keymgrd on it: a token, a key and a
# signature through the module, then the same key after a restart; then
# PostgreSQL stopped and started again under a signing loop.
. "$(dirname "$0")/lib.sh"
: "${TOP_BUILDDIR:?TOP_BUILDDIR not set}" "${P11PROBE:?P11PROBE not set}"
pg_start

COYEU_TEST_PG="$PG_URI" "$TOP_BUILDDIR/tests/check_store" >"$TMP/check.out" 2>&1 ||
	{ cat "$TMP/check.out" >&2; fail "the store's tests on PostgreSQL"; }
grep "Checks:" "$TMP/check.out"
echo "the store's tests pass on PostgreSQL"

# keymgrd on the database, emptied (the tests above leave their rows; a
# master key of its own would not open them: keymgrd says so and stops).
psql_coyeu() { runuser -u "$PG_OS_USER" -- psql -h "$PG_DIR" -U coyeu -d coyeu -Atqc "$1"; }
"$KEYMGRD" --foreground --data-dir "$TMP/other" --socket "$TMP/other.sock" --store "$PG_URI" --config /dev/null \
	>"$TMP/other.log" 2>&1 && fail "keymgrd with another master key started on the database"
grep -q "cannot open its data key" "$TMP/other.log" || { cat "$TMP/other.log" >&2; fail "no reason given"; }
psql_coyeu "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public" || fail "psql"
start_keymgrd --store "$PG_URI"
grep -q "migrated schema to version" "$TMP/keymgrd.log" || fail "keymgrd did not migrate the PostgreSQL store"
"$KEYMGR" token init --label pg --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" key generate --token pg --pin 1234 --type ec:P-256 --label signer >/dev/null || fail "key generate"
host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign pg 1234 >"$TMP/sign.out" 2>&1 ||
	{ cat "$TMP/sign.out" >&2; fail "a signature through the module on PostgreSQL"; }
stop_keymgrd
start_keymgrd --store "$PG_URI"
host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign pg 1234 >"$TMP/sign2.out" 2>&1 ||
	{ cat "$TMP/sign2.out" >&2; fail "the key after a restart"; }
"$KEYMGR" audit verify >"$TMP/verify.out" 2>&1 || { cat "$TMP/verify.out" >&2; fail "audit verify"; }
# What PostgreSQL holds of the key: sealed only (no private value in clear).
psql_coyeu "SELECT count(*) FROM objects WHERE secret IS NOT NULL" >"$TMP/count" || fail "psql"
[ "$(cat "$TMP/count")" -ge 1 ] || fail "no sealed secret in the database"

# PostgreSQL stopped under a signing loop (a signature every 0.1 s, logged
# in once), then started again: meanwhile every call fails with
# CKR_DEVICE_ERROR (nothing is signed with what the store cannot confirm),
# keymgrd stays up, and the loop signs again once the database is back.
host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop pg 1234 10 >"$TMP/loop.out" 2>&1 &
LOOP=$!
for _ in $(seq 100); do [ "$(grep -c '^sig' "$TMP/loop.out")" -ge 10 ] && break; sleep 0.1; done
pg_halt
sleep 2
kill -0 "$DAEMON_PID" || fail "keymgrd died with PostgreSQL"
pg_resume
wait "$LOOP" || { cat "$TMP/loop.out" >&2; fail "the loop did not sign again once PostgreSQL was back"; }
tail -1 "$TMP/loop.out"
grep -q "^sig [0-9]* CKR_DEVICE_ERROR" "$TMP/loop.out" || { cat "$TMP/loop.out" >&2; fail "no call failed while PostgreSQL was down"; }
grep "^sig" "$TMP/loop.out" | grep -v "CKR_OK\|CKR_DEVICE_ERROR" && fail "a call failed with another code"
grep -q "connected to PostgreSQL again" "$TMP/keymgrd.log" || fail "keymgrd did not say it connected again"
echo "PostgreSQL stopped and started under a signing loop: CKR_DEVICE_ERROR meanwhile, then signatures again"
stop_keymgrd
echo "keymgrd on PostgreSQL: token, key, signature, restart, audit verified"
