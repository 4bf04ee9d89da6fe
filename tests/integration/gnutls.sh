#!/bin/sh
# GnuTLS: p11tool generates keys on the token, certtool makes a
# self-signed certificate and a CSR with them, openssl verifies both.
. "$(dirname "$0")/lib.sh"
# With the ASan runtime preloaded, GnuTLS tools deadlock in libp11-kit's
# exit-time destructor (freelocale), after doing their work: skipped there.
skip_under_sanitizers "GnuTLS tools hang at exit in libp11-kit under a preloaded ASan"

command -v p11tool >/dev/null && command -v certtool >/dev/null || fail "gnutls-bin is not installed"
start_keymgrd
"$KEYMGR" token init --label gnutls-token --so-pin 87654321 --pin 1234 || fail "token init"
GNUTLS_PIN=1234
export GNUTLS_PIN
P11TOOL="host timeout 120 p11tool --batch --provider $COYEU_MODULE"
CERTTOOL="host timeout 120 certtool --provider $COYEU_MODULE"

$P11TOOL --list-tokens >"$TMP/tokens" 2>&1 || fail "p11tool --list-tokens"
grep -q "Label: gnutls-token" "$TMP/tokens" || { cat "$TMP/tokens" >&2; fail "token not listed"; }
$P11TOOL --login --generate-privkey=rsa --bits=2048 --label=rsa-key "pkcs11:token=gnutls-token" \
	>/dev/null 2>&1 || fail "p11tool RSA key"
$P11TOOL --login --generate-privkey=ecdsa --curve=secp256r1 --label=ec-key "pkcs11:token=gnutls-token" \
	>/dev/null 2>&1 || fail "p11tool EC key"
$P11TOOL --login --list-privkeys "pkcs11:token=gnutls-token" >"$TMP/keys" 2>&1 || fail "p11tool --list-privkeys"
[ "$(grep -c 'Type: Private key' "$TMP/keys")" -eq 2 ] || { cat "$TMP/keys" >&2; fail "keys not listed"; }

cat >"$TMP/template" <<'TEMPLATE'
cn = "Nguyen Van A"
organization = "So Thong tin va Truyen thong Dien Bien"
serial = 7
expiration_days = 30
signing_key
tls_www_client
TEMPLATE
for key in rsa-key ec-key; do
	url="pkcs11:token=gnutls-token;object=$key;type=private"
	$CERTTOOL --generate-self-signed --load-privkey "$url" --template "$TMP/template" \
		--outfile "$TMP/$key.crt" >/dev/null 2>&1 || fail "certtool self-signed with $key"
	openssl verify -CAfile "$TMP/$key.crt" "$TMP/$key.crt" >/dev/null || fail "openssl rejects the $key certificate"
	$CERTTOOL --generate-request --load-privkey "$url" --template "$TMP/template" \
		--outfile "$TMP/$key.csr" >/dev/null 2>&1 || fail "certtool CSR with $key"
	openssl req -verify -noout -in "$TMP/$key.csr" 2>/dev/null || fail "openssl rejects the $key CSR"
	# The certificate carries the token's public key.
	$P11TOOL --export-pubkey "pkcs11:token=gnutls-token;object=$key;type=public" \
		--outfile "$TMP/$key.pub" >/dev/null 2>&1 || fail "export $key"
	[ "$(openssl pkey -pubin -in "$TMP/$key.pub" -outform DER | sha256sum)" = \
	  "$(openssl x509 -in "$TMP/$key.crt" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum)" ] ||
		fail "the $key certificate does not hold the token key"
	echo "certtool: $key certificate and CSR made on the token, verified by openssl"
done
stop_keymgrd
echo PASS
