#!/bin/sh
# OpenSSL: the pkcs11 engine of libengine-pkcs11-openssl loads
# coyeu-pkcs11.so and signs a self-signed certificate and a CSR with keys
# held by keymgrd; openssl verifies both.
. "$(dirname "$0")/lib.sh"

start_keymgrd
"$KEYMGR" token init --label ossl-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token ossl-token --pin 1234 --type rsa:2048 --label rsa-key --id 01 || fail "rsa key"
"$KEYMGR" key generate --token ossl-token --pin 1234 --type ec:P-256 --label ec-key --id 02 || fail "ec key"

engine_conf "$TMP/openssl.cnf"
export OPENSSL_CONF="$TMP/openssl.cnf"
for key in rsa-key ec-key; do
	url="pkcs11:token=ossl-token;object=$key;type=private;pin-value=1234"
	host timeout 120 openssl req -new -x509 -days 30 -engine pkcs11 -keyform engine -key "$url" \
		-subj "/CN=Le Van C/O=UBND tinh Dien Bien" -out "$TMP/$key.crt" >"$TMP/req.log" 2>&1 ||
		{ cat "$TMP/req.log" >&2; fail "openssl req -x509 with $key"; }
	OPENSSL_CONF=/dev/null openssl verify -CAfile "$TMP/$key.crt" "$TMP/$key.crt" >/dev/null ||
		fail "the $key certificate does not verify"
	host timeout 120 openssl req -new -engine pkcs11 -keyform engine -key "$url" \
		-subj "/CN=Le Van C" -out "$TMP/$key.csr" >"$TMP/req.log" 2>&1 ||
		{ cat "$TMP/req.log" >&2; fail "openssl req (CSR) with $key"; }
	OPENSSL_CONF=/dev/null openssl req -verify -noout -in "$TMP/$key.csr" 2>/dev/null ||
		fail "the $key CSR does not verify"
	echo "openssl engine: $key certificate and CSR signed on the token, verified"
done
stop_keymgrd
echo PASS
