#!/bin/sh
# Keys made elsewhere brought onto a token (keymgr key import): PKCS #12
# files with a password (RSA, P-256, Ed25519, Ed448), an encrypted PKCS #8 key
# with its certificate, and the round trip: the token signs with the
# imported key, cert export gives back the certificate and key pubkey the
# public key that went in. A wrong password, a certificate of another key
# and an unsupported key are refused with nothing left on the token; a key
# written by pkcs11-tool alone is paired with its certificate by cert
# import.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || fail "cd"
start_keymgrd
"$KEYMGR" token init --label imp --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
P11="host pkcs11-tool --module $COYEU_MODULE --token-label imp --login --pin 1234"
count_objects() { "$KEYMGR" key list --token imp --pin 1234 --json | grep -o '"label"' | wc -l; }

printf 'Mật khẩu 42\n' >pw
mk() { # NAME OPENSSL-GENPKEY-ARGS...: NAME.key, NAME.pem (self-signed), NAME.p12 (password in pw)
	name=$1
	shift
	openssl genpkey "$@" -out "$name.key" 2>/dev/null || fail "genpkey $name"
	openssl req -new -x509 -key "$name.key" -subj "/CN=Cán bộ $name/O=Sở Nội vụ" -utf8 -days 30 \
		-out "$name.pem" 2>/dev/null || fail "req $name"
	openssl pkcs12 -export -inkey "$name.key" -in "$name.pem" -passout file:pw -out "$name.p12" ||
		fail "pkcs12 $name"
}
mk rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mk ec -algorithm EC -pkeyopt ec_paramgen_curve:P-256
mk ed -algorithm ED25519
mk ed448 -algorithm ED448

# A wrong password: a sentence, exit 1, nothing on the token.
printf 'wrong\n' >badpw
out=$("$KEYMGR" key import --token imp --pin 1234 --p12 rsa.p12 --password-fd 3 3<badpw 2>&1) &&
	fail "a wrong password was taken"
echo "$out" | grep -q "wrong password" || fail "wrong password: '$out'"
# No password and no terminal to ask on: says how to give one.
out=$(setsid "$KEYMGR" key import --token imp --pin 1234 --p12 rsa.p12 2>&1 </dev/null) &&
	fail "imported without the password"
echo "$out" | grep -q -- "--password-fd" || fail "no password: '$out'"
[ "$(count_objects)" -eq 0 ] || fail "a refused import left objects"

for k in rsa ec ed ed448; do
	"$KEYMGR" key import --token imp --pin 1234 --p12 "$k.p12" --label "imp-$k" --password-fd 3 3<pw >out ||
		fail "import $k.p12"
	cat out
	grep -q "with 1 certificate(s)" out || fail "$k: certificate not imported"
	sed -n 's/.* id \([0-9a-f]*\) with.*/\1/p' out >"$k.id"
	# Round trip: what comes out is what went in.
	"$KEYMGR" cert export --token imp --label "imp-$k" --out "$k.out.pem" || fail "cert export $k"
	openssl x509 -in "$k.pem" -outform DER -out a.der && openssl x509 -in "$k.out.pem" -outform DER -out b.der ||
		fail "$k: the exported certificate does not read"
	cmp -s a.der b.der || fail "$k: the exported certificate is not the imported one"
	"$KEYMGR" key pubkey --token imp --label "imp-$k" --out "$k.pub" || fail "key pubkey $k"
	openssl pkey -in "$k.key" -pubout >"$k.want.pub"
	cmp -s "$k.pub" "$k.want.pub" || fail "$k: the public key differs"
done
# The token signs with them; OpenSSL verifies with the certificates.
printf 'công văn số 17\n' >doc
# (pkcs11-tool --sign picks its key by --id; --label it ignores.)
$P11 --sign --id "$(cat rsa.id)" --mechanism SHA256-RSA-PKCS --input-file doc --output-file rsa.sig >/dev/null 2>&1 ||
	fail "sign with the imported RSA key"
openssl dgst -sha256 -verify rsa.want.pub -signature rsa.sig doc >/dev/null || fail "RSA signature does not verify"
$P11 --sign --id "$(cat ec.id)" --mechanism ECDSA-SHA256 --signature-format openssl --input-file doc \
	--output-file ec.sig >ec.log 2>&1 || { cat ec.log; fail "sign with the imported EC key"; }
openssl dgst -sha256 -verify ec.want.pub -signature ec.sig doc >/dev/null || fail "EC signature does not verify"
echo "PKCS #12: RSA, P-256, Ed25519, Ed448 imported; certificates and public keys come back the same; signatures verify"
# The private key stays in: sensitive, not extractable.
$P11 --list-objects --type privkey >objs 2>&1 || fail "list-objects"
[ "$(grep -c "Access: *sensitive$" objs)" -eq 4 ] || { cat objs; fail "the imported keys are not sensitive and unextractable"; }
grep -A3 "label: *imp-ec" objs | grep "Usage:" | grep -q "decrypt" && fail "an EC key imported for decryption"
# The same file again: the CKA_ID is taken.
out=$("$KEYMGR" key import --token imp --pin 1234 --p12 rsa.p12 --password-fd 3 3<pw 2>&1) &&
	fail "imported the same key twice"
echo "$out" | grep -q "already has objects with this CKA_ID" || fail "twice: '$out'"

# PKCS #8, encrypted, and its certificate.
mk p8 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
openssl pkcs8 -topk8 -in p8.key -passout file:pw -out p8.enc 2>/dev/null || fail "pkcs8"
before=$(count_objects)
out=$("$KEYMGR" key import --token imp --pin 1234 --key p8.enc --cert rsa.pem --password-fd 3 3<pw 2>&1) &&
	fail "took a certificate of another key"
echo "$out" | grep -q "their public keys differ" || fail "mismatch: '$out'"
[ "$(count_objects)" -eq "$before" ] || fail "a refused import left objects"
"$KEYMGR" key import --token imp --pin 1234 --key p8.enc --cert p8.pem --password-fd 3 3<pw >out ||
	fail "import PKCS #8 + certificate"
grep -q "imported P-384 key 'Cán bộ p8'" out || { cat out; fail "PKCS #8: label from the CN"; }
"$KEYMGR" key pubkey --token imp --label "Cán bộ p8" --out p8.pub || fail "key pubkey p8"
openssl pkey -in p8.key -pubout | cmp -s - p8.pub || fail "p8: the public key differs"
echo "PKCS #8 (encrypted) + certificate: imported, labelled by its CN; another key's certificate refused"

# An unsupported key: said so, nothing sent.
openssl genpkey -algorithm X25519 -out x.key 2>/dev/null
out=$("$KEYMGR" key import --token imp --pin 1234 --key x.key 2>&1) && fail "imported an X25519 key"
echo "$out" | grep -q "coyeu takes RSA" || fail "X25519: '$out'"

# A key another tool wrote alone (pkcs11-tool, no public key object): the
# certificate cert import brings is paired with it by its public key.
mk other -algorithm EC -pkeyopt ec_paramgen_curve:P-256
openssl pkcs8 -topk8 -nocrypt -in other.key -outform DER -out other.der
$P11 --write-object other.der --type privkey --id 0badc0de --label other >/dev/null 2>&1 ||
	fail "pkcs11-tool --write-object"
"$KEYMGR" cert import --token imp --pin 1234 other.pem >out || fail "cert import"
grep -q "0 without their key" out || { cat out; fail "the certificate was not paired with pkcs11-tool's key"; }
$P11 --list-objects --type cert 2>/dev/null | grep -A4 "Cán bộ other" | grep -qi "ID: *0badc0de" ||
	fail "the certificate did not get the key's CKA_ID"
echo "a key written by pkcs11-tool alone: its certificate pairs with it (CKA_ID 0badc0de)"
stop_keymgrd
echo "import: all checks passed"
