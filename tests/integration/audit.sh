#!/bin/sh
# The audit trail: logins (failed ones too), token and key operations are
# recorded with who did them; keymgr audit verify passes, then finds an
# entry changed, removed in the middle, removed at the end, or removed at
# the end with the head rewritten, directly in the SQLite file; a second
# keymgrd on the same data directory refuses to start.
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
"$KEYMGR" audit list --op login --who uid:0 >"$TMP/logins" || fail "audit list --op --who"
grep -q " login " "$TMP/logins" && ! grep -q "generate-key-pair" "$TMP/logins" ||
	{ cat "$TMP/logins" >&2; fail "audit list --op login shows other operations"; }
grep -q " uid:0 *admin " "$TMP/list" || { cat "$TMP/list" >&2; fail "entries do not name who and the role"; }

# What changes nothing writes no entry: a client cannot fill the trail with
# locks of nothing, or with requests refused before they do anything.
before=$(sqlite3 "$TMP/data/keymgr.db" "SELECT count(*) FROM audit")
for _ in $(seq 20); do "$KEYMGR" token lock >/dev/null || fail "token lock"; done
host timeout 60 pkcs11-tool --module "$COYEU_MODULE" --token-label audit-token --login --pin 1234 \
	--delete-object --type data --label nothing >/dev/null 2>&1 || true
after=$(sqlite3 "$TMP/data/keymgr.db" "SELECT count(*) FROM audit")
# (the pkcs11-tool run logs in once: one entry)
[ "$after" -le $((before + 1)) ] || fail "20 locks of nothing wrote $((after - before)) audit entries"

# One keymgrd per data directory: a second one refuses, saying why.
timeout 20 "$KEYMGRD" --foreground --data-dir "$TMP/data" --socket "$TMP/second.sock" --config /dev/null \
	>"$TMP/second.log" 2>&1 && fail "a second keymgrd started on the same data directory"
grep -q "another keymgrd (pid $DAEMON_PID) uses $TMP/data" "$TMP/second.log" ||
	{ cat "$TMP/second.log" >&2; fail "the second keymgrd did not say why"; }
[ ! -e "$TMP/second.sock" ] || fail "the second keymgrd made a socket"
echo "second keymgrd refused: $(grep -o 'another keymgrd.*' "$TMP/second.log")"
stop_keymgrd
# Every head of the trail went to the log too (a copy outside the store).
last=$(sqlite3 "$TMP/data/keymgr.db" "SELECT max(id) FROM audit")
head=$(sqlite3 "$TMP/data/keymgr.db" "SELECT lower(hex(hash)) FROM audit WHERE id = $last")
grep -q "audit head $last $head " "$TMP/keymgrd.log" || fail "the newest head is not in the log"

# Three copies of the stopped daemon's data, each tampered with one way.
db="$TMP/data/keymgr.db"
last=$(sqlite3 "$db" "SELECT max(id) FROM audit")
for how in edit delete-middle delete-last truncate; do
	rm -rf "$TMP/data.orig"
	cp -a "$TMP/data" "$TMP/data.orig"
	case $how in
	edit) want=$(sqlite3 "$db" "SELECT min(id) FROM audit WHERE result != 0")
		sqlite3 "$db" "UPDATE audit SET result = 0 WHERE id = $want" ;;
	delete-middle) sqlite3 "$db" "DELETE FROM audit WHERE id = 3"; want=4 ;;
	delete-last) sqlite3 "$db" "DELETE FROM audit WHERE id = $last"; want=$last ;;
	# The newest entry deleted and the head moved back to the one before.
	truncate) sqlite3 "$db" "DELETE FROM audit WHERE id = $last;
		UPDATE audit_head SET last_id = $((last - 1)), hash = (SELECT hash FROM audit WHERE id = $((last - 1)))"
		want=$((last - 1)) ;;
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
