#!/bin/sh
# OpenSSL: the pkcs11 engine of libengine-pkcs11-openssl loads
# coyeu-pkcs11.so and signs a self-signed certificate and a CSR with keys
# held by keymgrd; openssl verifies both. Then the same through OpenSSL 3's
# pkcs11-provider (bookworm-backports) when it is installed.
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
unset OPENSSL_CONF

PROVIDER=$(ls /usr/lib/*/ossl-modules/pkcs11.so 2>/dev/null | head -1)
if [ -z "$PROVIDER" ]; then
	echo "SKIP (provider): pkcs11-provider is not installed (bookworm-backports; scripts/install-deps tries)"
elif [ -n "${COYEU_SAN_PRELOAD:-}" ]; then
	# It dlopens the module with RTLD_DEEPBIND, which the sanitizer
	# runtimes refuse (google/sanitizers#611).
	echo "SKIP (provider): pkcs11-provider cannot load a sanitizer-built module (RTLD_DEEPBIND)"
else
	cat >"$TMP/provider.cnf" <<CONF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = $PROVIDER
pkcs11-module-path = $COYEU_MODULE
activate = 1
[req]
distinguished_name = dn
[dn]
CONF
	printf 'Quyết định 9/QĐ-UBND\n' >"$TMP/doc.txt"
	for key in rsa-key ec-key; do
		url="pkcs11:token=ossl-token;object=$key;type=private?pin-value=1234"
		OPENSSL_CONF="$TMP/provider.cnf" host timeout 120 openssl dgst -sha256 -sign "$url" -out "$TMP/$key.sig" \
			"$TMP/doc.txt" >"$TMP/prov.log" 2>&1 || { cat "$TMP/prov.log" >&2; fail "pkcs11-provider: sign with $key"; }
		OPENSSL_CONF=/dev/null openssl x509 -in "$TMP/$key.crt" -noout -pubkey >"$TMP/$key.pub"
		OPENSSL_CONF=/dev/null openssl dgst -sha256 -verify "$TMP/$key.pub" -signature "$TMP/$key.sig" "$TMP/doc.txt" \
			>/dev/null || fail "pkcs11-provider: the $key signature does not verify"
		OPENSSL_CONF="$TMP/provider.cnf" host timeout 120 openssl req -new -key "$url" -subj "/CN=Le Van C" \
			-out "$TMP/$key-prov.csr" >"$TMP/prov.log" 2>&1 || { cat "$TMP/prov.log" >&2; fail "pkcs11-provider: CSR with $key"; }
		OPENSSL_CONF=/dev/null openssl req -verify -noout -in "$TMP/$key-prov.csr" 2>/dev/null ||
			fail "pkcs11-provider: the $key CSR does not verify"
		echo "openssl provider: $key signed a document and a CSR on the token, verified"
	done
fi
stop_keymgrd
echo PASS
