#!/bin/sh
# keymgr token unlock: after the PIN is given once, programs of the same
# user see the token logged in (no --login); keymgr token lock ends it.
. "$(dirname "$0")/lib.sh"

start_keymgrd
"$KEYMGR" token init --label unlock-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token unlock-token --pin 1234 --type ec:P-256 --label signer --id 01 || fail "key"
P11="host pkcs11-tool --module $COYEU_MODULE --token-label unlock-token"

count_private() {
	$P11 --list-objects --type privkey 2>/dev/null | grep -c "Private Key Object" || true
}
[ "$(count_private)" -eq 0 ] || fail "private key visible before unlock"

echo 9999 | "$KEYMGR" token unlock --token unlock-token --pin-fd 0 && fail "a wrong PIN unlocked"
echo 1234 | "$KEYMGR" token unlock --token unlock-token --timeout 60 --pin-fd 0 || fail "unlock"
[ "$(count_private)" -eq 1 ] || fail "private key not visible after unlock"
# GnuTLS asks for a PIN only when the session is not logged in: with no
# PIN given (--batch, no GNUTLS_PIN) it signs while the token is unlocked.
URL="pkcs11:token=unlock-token;object=signer;type=private"
sign() {
	GNUTLS_PIN= host timeout 60 p11tool --batch --provider "$COYEU_MODULE" --test-sign "$URL" </dev/null
}
sign >"$TMP/sign.out" 2>&1 || { cat "$TMP/sign.out" >&2; fail "no signature while unlocked"; }
grep -q "Signing using ECDSA-SHA256... ok" "$TMP/sign.out" || fail "p11tool did not sign"
echo "p11tool signed without a PIN after keymgr token unlock"
# A program that logs in anyway still gets its PIN checked.
$P11 --login --pin 0000 --list-objects >/dev/null 2>&1 && fail "a wrong PIN was accepted while unlocked"
$P11 --login --pin 1234 --list-objects >/dev/null 2>&1 || fail "the right PIN was refused while unlocked"

"$KEYMGR" token lock --token unlock-token || fail "lock"
[ "$(count_private)" -eq 0 ] || fail "private key visible after lock"
sign >/dev/null 2>&1 && fail "signed after lock"

# The unlock belongs to one uid: another user's programs do not see it.
echo 1234 | "$KEYMGR" token unlock --token unlock-token --pin-fd 0 >/dev/null || fail "unlock again"
chmod 0666 "$COYEU_SOCKET"
chmod 0755 "$TMP" "$(dirname "$COYEU_SOCKET")"
n=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	pkcs11-tool --module "$COYEU_MODULE" --token-label unlock-token --list-objects --type privkey 2>/dev/null |
	grep -c "Private Key Object" || true)
[ "$n" -eq 0 ] || fail "another uid saw the unlocked token"

# Labels name one token each: C_InitToken with a label in use is refused;
# a store with two tokens of one label (made before this rule) makes keymgr
# refuse the label and name the serials, and a serial works.
spare=$(host pkcs11-tool --module "$COYEU_MODULE" -L 2>/dev/null |
	awk '/^Slot/ { s = $3 } /uninitialized/ { print s; exit }' | tr -d '()')
[ -n "$spare" ] || fail "no spare slot listed"
host pkcs11-tool --module "$COYEU_MODULE" --slot "$spare" --init-token --label unlock-token --so-pin 87654321 \
	>/dev/null 2>&1 && fail "a second token labelled unlock-token was made"
"$KEYMGR" token init --label twin --so-pin 87654321 --pin 1234 >/dev/null || fail "token init twin"
stop_keymgrd
sqlite3 "$TMP/data/keymgr.db" "UPDATE tokens SET label = 'unlock-token' WHERE label = 'twin'"
start_keymgrd --max-pin-failures 3
"$KEYMGR" token lock --token unlock-token 2>"$TMP/err" && fail "lock picked one of two tokens labelled alike"
grep -q "name one by its serial" "$TMP/err" || { cat "$TMP/err" >&2; fail "no word about the serial"; }
serial=$("$KEYMGR" token list --json | grep -o '"serial":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
"$KEYMGR" token lock --token "$serial" >/dev/null || fail "lock by serial"

# A locked SO PIN is recovered by an administrator (audited): a new SO PIN.
sotry() { host timeout 60 pkcs11-tool --module "$COYEU_MODULE" --token-label twin --login --login-type so \
	--so-pin "$1" --init-pin --new-pin 1234 >"$TMP/so.out" 2>&1; }
stop_keymgrd
sqlite3 "$TMP/data/keymgr.db" "UPDATE tokens SET label = 'twin' WHERE serial <> '$serial' AND label = 'unlock-token'"
start_keymgrd --max-pin-failures 3
for _ in 1 2 3; do sotry 00000000 && fail "a wrong SO PIN logged in"; done
sotry 87654321 && fail "the SO PIN is not locked after 3 failures"
grep -q CKR_PIN_LOCKED "$TMP/so.out" || { cat "$TMP/so.out" >&2; fail "no CKR_PIN_LOCKED"; }
"$KEYMGR" token reset-so-pin --token twin --new-so-pin 11223344 >/dev/null || fail "reset-so-pin"
sotry 11223344 || { cat "$TMP/so.out" >&2; fail "no SO login with the new SO PIN"; }
sotry 87654321 && fail "the old SO PIN still works"
"$KEYMGR" audit list --op reset-so-pin | grep -q "CKR_OK" || fail "the SO PIN reset is not audited"
echo "a locked SO PIN recovered by an administrator, audited"
stop_keymgrd
echo PASS
