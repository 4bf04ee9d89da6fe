#!/bin/sh
# Key version states: a retired key verifies but no longer signs; a
# revoked key does nothing; a destroyed key's material is gone from the
# store while its objects and the audit entries remain.
. "$(dirname "$0")/lib.sh"

start_keymgrd
# PINs read from standard input (--pin -) stay out of the command line.
printf '87654321\n1234\n' | "$KEYMGR" token init --label life-token --so-pin - --pin - || fail "token init"
echo 1234 | "$KEYMGR" key generate --token life-token --pin - --type ec:P-256 --label official --id 0a || fail "key 0a"
echo 4321 | "$KEYMGR" key list --token life-token --pin - 2>"$TMP/err" && fail "a wrong PIN on stdin was taken"
grep -q CKR_PIN_INCORRECT "$TMP/err" || { cat "$TMP/err" >&2; fail "wrong PIN not reported"; }
"$KEYMGR" key list --token life-token --pin - </dev/null 2>"$TMP/err" && fail "no PIN was taken"
grep -q "no user PIN read" "$TMP/err" || { cat "$TMP/err" >&2; fail "missing PIN not reported"; }
"$KEYMGR" key generate --token life-token --pin 1234 --type rsa:2048 --label official --id 0b || fail "key 0b"
P11="host pkcs11-tool --module $COYEU_MODULE --token-label life-token --login --pin 1234"
printf 'quyet dinh' >"$TMP/doc"
sign() { $P11 --sign --id "$1" -m "$2" -i "$TMP/doc" -o "$TMP/sig-$1" >"$TMP/sign.log" 2>&1; }
verify() { $P11 --verify --id "$1" -m "$2" -i "$TMP/doc" --signature-file "$TMP/sig-$1" >"$TMP/verify.log" 2>&1; }

sign 0a ECDSA-SHA256 || fail "an active key does not sign"
"$KEYMGR" key list --token life-token --pin 1234 | grep -q "private  ec    active" || fail "state not listed"
"$KEYMGR" key list --token life-token --pin 1234 --json | grep -q '"class":"private","type":"ec","state":"active","label":"official","id":"0a"' ||
	fail "key list --json"

"$KEYMGR" key retire --token life-token --pin 1234 --id 0a || fail "retire"
sign 0a ECDSA-SHA256 && fail "a retired key signed"
grep -q CKR_KEY_FUNCTION_NOT_PERMITTED "$TMP/sign.log" || { cat "$TMP/sign.log" >&2; fail "wrong refusal"; }
verify 0a ECDSA-SHA256 || { cat "$TMP/verify.log" >&2; fail "a retired key no longer verifies"; }
echo "retired: signing refused (CKR_KEY_FUNCTION_NOT_PERMITTED), verification works"

sign 0b SHA256-RSA-PKCS || fail "key 0b does not sign"
"$KEYMGR" key revoke --token life-token --pin 1234 --id 0b --reason keyCompromise || fail "revoke"
sign 0b SHA256-RSA-PKCS && fail "a revoked key signed"
verify 0b SHA256-RSA-PKCS && fail "a revoked key verified"
"$KEYMGR" key retire --token life-token --pin 1234 --id 0b 2>/dev/null && fail "a revoked key was un-revoked"
"$KEYMGR" key revoke --token life-token --pin 1234 --id 0b --reason bogus 2>/dev/null && fail "bogus reason"
echo "revoked: no signing, no verification, no way back"

sealed=$(sqlite3 "$TMP/data/keymgr.db" "SELECT hex(secret) FROM objects WHERE secret IS NOT NULL AND hex(ckaid) = '0A'")
[ -n "$sealed" ] || fail "no sealed material for key 0a"
for id in 0a 0b; do
	"$KEYMGR" key destroy --token life-token --pin 1234 --id $id || fail "destroy $id"
done
# No copy of the sealed key is left in the database or its WAL (where,
# with master.key at hand, it could be unsealed).
SEALED=$sealed perl -e 'my $m = pack("H*", $ENV{SEALED}); for my $f (@ARGV) {
	open(my $h, "<:raw", $f) or next; local $/; my $d = <$h>; exit 1 if index($d, $m) >= 0 } exit 0' \
	"$TMP/data/keymgr.db" "$TMP/data/keymgr.db-wal" || fail "key 0a's sealed material is still in the store's files"
"$KEYMGR" key list --token life-token --pin 1234 >"$TMP/list"
[ "$(grep -c destroyed "$TMP/list")" -eq 4 ] || { cat "$TMP/list" >&2; fail "objects not kept as destroyed"; }
"$KEYMGR" audit list | grep -c " key-state .*CKR_OK" | grep -q '^4$' || fail "key-state audit entries"

# --json output is JSON, whatever a label holds (perl's core JSON::PP reads it).
odd=$(printf 'Sở "Nội vụ"\\\tx')
"$KEYMGR" key generate --token life-token --pin 1234 --type ec:P-256 --label "$odd" --id 0c >/dev/null || fail "key 0c"
json_ok() { perl -MJSON::PP -0777 -ne 'JSON::PP->new->utf8->decode($_)' "$TMP/json" || fail "$1 is not JSON"; }
"$KEYMGR" key list --token life-token --pin 1234 --json >"$TMP/json" && json_ok "key list --json"
ODD="$odd" perl -MJSON::PP -0777 -ne 'my $d = JSON::PP->new->decode($_);
	exit((grep { $_->{label} eq $ENV{ODD} } @$d) == 2 ? 0 : 1)' "$TMP/json" ||
	fail "the label does not come back from key list --json"
"$KEYMGR" key show --token life-token --pin 1234 --json "$odd" >"$TMP/json" && json_ok "key show --json"
"$KEYMGR" token list --json >"$TMP/json" && json_ok "token list --json"
"$KEYMGR" audit list --json >"$TMP/json" && json_ok "audit list --json"
"$KEYMGR" key retire --token life-token --pin 1234 --id 0c && "$KEYMGR" key destroy --token life-token --pin 1234 --id 0c || fail "destroy 0c"
echo "--json: valid JSON, a label with quotes, a backslash and a tab comes back whole"
"$KEYMGR" audit verify >/dev/null || fail "audit verify"
stop_keymgrd
left=$(sqlite3 "$TMP/data/keymgr.db" "SELECT count(*) FROM objects WHERE secret IS NOT NULL")
[ "$left" -eq 0 ] || fail "$left object(s) still hold sealed material after destroy"
echo "destroyed: material gone from the store, objects and audit entries kept"
echo PASS
