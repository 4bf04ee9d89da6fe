#!/bin/sh
# OpenSC's pkcs11-tool --test against coyeu-pkcs11.so with an RSA and an EC
# key on the token, then signatures made through the module and checked
# by openssl.
. "$(dirname "$0")/lib.sh"

command -v pkcs11-tool >/dev/null || fail "pkcs11-tool (opensc) is not installed"
start_keymgrd

"$KEYMGR" token init --label it-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token it-token --pin 1234 --type rsa:2048 --label rsa-key --id 01 || fail "rsa key"
"$KEYMGR" key generate --token it-token --pin 1234 --type ec:P-256 --label ec-key --id 02 || fail "ec key"
"$KEYMGR" key generate --token it-token --pin 1234 --type ec:Ed25519 --label ed-key --id 03 || fail "ed25519 key"
"$KEYMGR" key generate --token it-token --pin 1234 --type aes:256 --label aes-key --id 04 || fail "aes key"

P11="host pkcs11-tool --module $COYEU_MODULE --token-label it-token"
host timeout 300 pkcs11-tool --module "$COYEU_MODULE" --token-label it-token --login --pin 1234 --test --allow-sw >"$TMP/test.out" 2>&1 || {
	cat "$TMP/test.out" >&2
	fail "pkcs11-tool --test failed"
}
grep -q "No errors" "$TMP/test.out" || { cat "$TMP/test.out" >&2; fail "pkcs11-tool reported errors"; }
grep -q "SHA256-RSA-PKCS: OK" "$TMP/test.out" || { cat "$TMP/test.out" >&2; fail "RSA signatures were not tested"; }
echo "pkcs11-tool --test: No errors"

printf 'a document of the province\n' >"$TMP/doc"

# The RSA public key as pkcs11-tool exports it.
$P11 --read-object --type pubkey --id 01 -o "$TMP/pub-01.der" >/dev/null 2>&1 || fail "read key 01"
openssl pkey -pubin -inform DER -in "$TMP/pub-01.der" -out "$TMP/pub-01.pem" || fail "RSA public key"
# The EC public key from its CKA_EC_POINT (DER OCTET STRING 04 41 04 X Y)
# inside a P-256 SubjectPublicKeyInfo. (pkcs11-tool 0.23 --read-object of
# EC keys reads freed memory under ASan, a bug of its own.)
point=$($P11 --list-objects --type pubkey --id 02 2>/dev/null | sed -n 's/^ *EC_POINT: *//p')
case "$point" in 044104*) ;; *) fail "EC_POINT of key 02 is '$point'" ;; esac
spki="3059301306072a8648ce3d020106082a8648ce3d030107034200${point#0441}"
perl -e 'print pack("H*", $ARGV[0])' "$spki" >"$TMP/pub-02.der"
openssl pkey -pubin -inform DER -in "$TMP/pub-02.der" -out "$TMP/pub-02.pem" || fail "EC public key"

for spec in "01 SHA256-RSA-PKCS" "02 ECDSA-SHA256"; do
	set -- $spec
	$P11 --login --pin 1234 --sign --id "$1" -m "$2" --signature-format openssl \
		-i "$TMP/doc" -o "$TMP/sig-$1" >/dev/null 2>&1 || fail "sign with key $1"
	openssl dgst -sha256 -verify "$TMP/pub-$1.pem" -signature "$TMP/sig-$1" "$TMP/doc" >/dev/null ||
		fail "openssl does not verify the $2 signature"
	echo "$2 signature made through the module verified by openssl"
done

# Ed25519: pkcs11-tool exports the public key as PEM; openssl checks the
# signature over the raw message.
$P11 --login --pin 1234 --sign --id 03 -m EDDSA -i "$TMP/doc" -o "$TMP/sig-03" >/dev/null 2>&1 || fail "sign with Ed25519"
$P11 --read-object --type pubkey --id 03 -o "$TMP/pub-03.pem" >/dev/null 2>&1 || fail "read Ed25519 key"
openssl pkeyutl -verify -pubin -inkey "$TMP/pub-03.pem" -rawin -in "$TMP/doc" -sigfile "$TMP/sig-03" >/dev/null ||
	fail "openssl does not verify the Ed25519 signature"
echo "EDDSA signature made through the module verified by openssl"

# RSA decryption of what openssl encrypted to the token's public key.
head -c 48 /dev/urandom >"$TMP/secret"
openssl pkeyutl -encrypt -pubin -inkey "$TMP/pub-01.pem" -in "$TMP/secret" -out "$TMP/secret.v15" || fail "openssl encrypt"
$P11 --login --pin 1234 --decrypt --id 01 -m RSA-PKCS -i "$TMP/secret.v15" -o "$TMP/secret.out" >/dev/null 2>&1 ||
	fail "decrypt PKCS#1 v1.5"
cmp -s "$TMP/secret" "$TMP/secret.out" || fail "PKCS#1 v1.5 decryption differs"
openssl pkeyutl -encrypt -pubin -inkey "$TMP/pub-01.pem" -in "$TMP/secret" -out "$TMP/secret.oaep" \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 || fail "openssl OAEP"
$P11 --login --pin 1234 --decrypt --id 01 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
	-i "$TMP/secret.oaep" -o "$TMP/secret.out" >/dev/null 2>&1 || fail "decrypt OAEP"
cmp -s "$TMP/secret" "$TMP/secret.out" || fail "OAEP decryption differs"
echo "RSA PKCS#1 v1.5 and OAEP ciphertexts made by openssl decrypted on the token"

# AES-CBC-PAD through the module, both ways.
iv=000102030405060708090a0b0c0d0e0f
$P11 --login --pin 1234 --encrypt --id 04 -m AES-CBC-PAD --iv $iv -i "$TMP/doc" -o "$TMP/doc.aes" >/dev/null 2>&1 ||
	fail "AES encrypt"
$P11 --login --pin 1234 --decrypt --id 04 -m AES-CBC-PAD --iv $iv -i "$TMP/doc.aes" -o "$TMP/doc.back" >/dev/null 2>&1 ||
	fail "AES decrypt"
cmp -s "$TMP/doc" "$TMP/doc.back" || fail "AES round trip differs"
cmp -s "$TMP/doc" "$TMP/doc.aes" && fail "AES did not encrypt"
echo "AES-CBC-PAD encrypt/decrypt through the module"

# Certificates: write, list, delete.
openssl req -new -x509 -days 30 -newkey rsa:2048 -nodes -keyout "$TMP/ca.key" -subj "/CN=coyeu test CA" \
	-outform DER -out "$TMP/ca.der" 2>/dev/null || fail "openssl req"
$P11 --login --pin 1234 --write-object "$TMP/ca.der" --type cert --id 05 --label ca-cert >/dev/null 2>&1 ||
	fail "write certificate"
$P11 --list-objects --type cert 2>/dev/null | grep -q "label: *ca-cert" || fail "certificate not listed"
$P11 --read-object --type cert --id 05 -o "$TMP/ca.back" >/dev/null 2>&1 || fail "read certificate"
cmp -s "$TMP/ca.der" "$TMP/ca.back" || fail "certificate read back differs"
$P11 --login --pin 1234 --delete-object --type cert --id 05 >/dev/null 2>&1 || fail "delete certificate"
$P11 --list-objects --type cert 2>/dev/null | grep -q "ca-cert" && fail "certificate still listed after delete"
echo "certificate written, listed, read back and deleted"

# pkcs11-tool generates its own key pairs too.
for kt in rsa:2048 EC:secp384r1 EC:edwards25519; do
	$P11 --login --pin 1234 --keypairgen --key-type "$kt" --label "gen-$kt" >/dev/null 2>&1 || fail "keypairgen $kt"
done
echo "pkcs11-tool --keypairgen: RSA, EC P-384, Ed25519"

# A wrong PIN is refused cleanly.
if $P11 --login --pin 9999 --list-objects >/dev/null 2>&1; then
	fail "a wrong PIN was accepted"
fi
stop_keymgrd
echo PASS
