#!/bin/sh
# The audit trail: logins (failed ones too), token and key operations are
# recorded; keymgr audit verify passes, then finds an entry changed,
# removed in the middle, or removed at the end directly in the SQLite file.
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is not installed"
start_keymgrd
"$KEYMGR" token init --label audit-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token audit-token --pin 1234 --type ec:P-256 --label k --id 01 || fail "key"
"$KEYMGR" key list --token audit-token --pin 9999 2>/dev/null && fail "a wrong PIN was accepted"
"$KEYMGR" audit list >"$TMP/list" || fail "audit list"
for op in init-token init-pin generate-key-pair; do
	grep -q " $op .*CKR_OK" "$TMP/list" || { cat "$TMP/list" >&2; fail "no $op entry"; }
done
grep -q " login *user *CKR_PIN_INCORRECT" "$TMP/list" || { cat "$TMP/list" >&2; fail "the failed login is not recorded"; }
"$KEYMGR" audit list --json | grep -q '"operation":"generate-key-pair"' || fail "audit list --json"
"$KEYMGR" audit verify || fail "a fresh trail does not verify"
stop_keymgrd

# Three copies of the stopped daemon's data, each tampered with one way.
db="$TMP/data/keymgr.db"
last=$(sqlite3 "$db" "SELECT max(id) FROM audit")
for how in edit delete-middle delete-last; do
	rm -rf "$TMP/data.orig"
	cp -a "$TMP/data" "$TMP/data.orig"
	case $how in
	edit) sqlite3 "$db" "UPDATE audit SET result = 0 WHERE result != 0"; want=$last ;;
	delete-middle) sqlite3 "$db" "DELETE FROM audit WHERE id = 3"; want=4 ;;
	delete-last) sqlite3 "$db" "DELETE FROM audit WHERE id = $last"; want=$last ;;
	esac
	start_keymgrd
	"$KEYMGR" audit verify >"$TMP/verify" 2>&1 && fail "audit verify missed the $how"
	grep -q "broken at entry $want" "$TMP/verify" || { cat "$TMP/verify" >&2; fail "$how: wrong entry named"; }
	echo "$how detected: $(cat "$TMP/verify")"
	stop_keymgrd
	rm -rf "$TMP/data"
	mv "$TMP/data.orig" "$TMP/data"
done

# Another user may not read the trail.
start_keymgrd
chmod 0666 "$COYEU_SOCKET"
chmod 0755 "$TMP" "$(dirname "$COYEU_SOCKET")"
setpriv --reuid=65534 --regid=65534 --clear-groups "$KEYMGR" audit verify 2>"$TMP/denied" &&
	fail "an unprivileged user read the audit trail"
grep -q CKR_ACTION_PROHIBITED "$TMP/denied" || { cat "$TMP/denied" >&2; fail "not refused for the right reason"; }
stop_keymgrd
echo PASS
