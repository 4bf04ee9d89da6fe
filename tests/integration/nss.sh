#!/bin/sh
# NSS: a fresh database, modutil -add, and certutil sees the token, its
# certificate, and the private key matched to it by CKA_ID.
. "$(dirname "$0")/lib.sh"

command -v certutil >/dev/null && command -v modutil >/dev/null || fail "libnss3-tools is not installed"
start_keymgrd
"$KEYMGR" token init --label nss-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token nss-token --pin 1234 --type rsa:2048 --label holder --id 01 || fail "key"

# A certificate for the key, written to the token without a CKA_ID:
# keymgrd finds the key it certifies (by key hash) and gives it the key's.
make_cert nss-token holder "/CN=Tran Thi B/O=UBND tinh Dien Bien" "$TMP/holder.pem"
openssl x509 -in "$TMP/holder.pem" -outform DER -out "$TMP/holder.der"
host pkcs11-tool --module "$COYEU_MODULE" --token-label nss-token --login --pin 1234 \
	--write-object "$TMP/holder.der" --type cert --label holder >/dev/null 2>&1 || fail "write certificate"
host pkcs11-tool --module "$COYEU_MODULE" --token-label nss-token --list-objects --type cert 2>/dev/null |
	grep -q "ID: *01" || fail "the certificate did not get its key's CKA_ID"

DB="sql:$TMP/nssdb"
mkdir "$TMP/nssdb"
echo 1234 >"$TMP/pin"
certutil -N -d "$DB" --empty-password || fail "certutil -N"
host modutil -dbdir "$DB" -add coyeu -libfile "$COYEU_MODULE" -force >/dev/null || fail "modutil -add"
host certutil -U -d "$DB" >"$TMP/tokens" 2>&1 || fail "certutil -U"
grep -q "token: nss-token" "$TMP/tokens" || { cat "$TMP/tokens" >&2; fail "certutil -U does not show the token"; }
host certutil -L -h nss-token -d "$DB" -f "$TMP/pin" >"$TMP/certs" 2>&1 || fail "certutil -L"
grep -q "nss-token:holder *u,u,u" "$TMP/certs" || { cat "$TMP/certs" >&2; fail "certificate not listed with its key"; }
host certutil -K -h nss-token -d "$DB" -f "$TMP/pin" >"$TMP/keys" 2>&1 || fail "certutil -K"
grep -q "rsa *01 *holder" "$TMP/keys" || { cat "$TMP/keys" >&2; fail "key not matched to the certificate"; }
echo "NSS: token, certificate nss-token:holder and its key (CKA_ID 01) listed"
stop_keymgrd
echo PASS
