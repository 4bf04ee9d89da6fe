#!/bin/sh
# CA mode's profiles: what keymgr cert issue puts in a certificate for
# signing, a TLS client and e-mail (key usage, extended key usage, SAN
# e-mail), the CRL distribution point and AIA under keymgrd's ca_url (the
# files there: the CA's certificate and CRL), and the serial and subject
# of each in the audit trail.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
URL=http://pki.dienbien.example.vn/coyeu
start_keymgrd --ca-url "$URL/" --crl-dir "$TMP/pub"
"$KEYMGR" token init --label unit-ca --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" key generate --token unit-ca --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "CA key"
"$KEYMGR" ca init --token unit-ca --pin 1234 --label ca --subject "CN=Điện Biên test CA,O=Ban Cơ yếu" \
	--out ca.pem >/dev/null || fail "ca init"
req() { # NAME KEYTYPE SUBJECT [OPENSSL-ARGS...]: NAME.csr
	n=$1 t=$2 subj=$3
	shift 3
	openssl genpkey -algorithm "$t" $( [ "$t" = RSA ] && echo -pkeyopt rsa_keygen_bits:2048 ) \
		$( [ "$t" = EC ] && echo -pkeyopt ec_paramgen_curve:P-256 ) -out "$n.key" 2>/dev/null || fail "key $n"
	openssl req -new -utf8 -key "$n.key" -subj "$subj" "$@" -out "$n.csr" 2>/dev/null || fail "request $n"
}
issue() { # NAME ARGS...: NAME.pem, NAME.txt (its text)
	n=$1
	shift
	"$KEYMGR" cert issue --token unit-ca --pin 1234 --ca ca "$@" --out "$n.pem" "$n.csr" >/dev/null 2>"$n.err" ||
		{ cat "$n.err" >&2; fail "cert issue $n"; }
	openssl x509 -in "$n.pem" -noout -text >"$n.txt" || fail "$n.pem"
}
has() { grep -q "$2" "$1.txt" || { cat "$1.txt" >&2; fail "$1: no '$2'"; }; }
hasnt() { grep -q "$2" "$1.txt" && { cat "$1.txt" >&2; fail "$1: '$2'"; }; return 0; }
kusage() { grep -A1 "X509v3 Key Usage" "$1.txt" | tail -1 | sed 's/^ *//'; }

req sig RSA "/C=VN/O=Sở Văn hóa, Thể thao và Du lịch/CN=Lò Văn Thắng"
issue sig
[ "$(kusage sig)" = "Digital Signature, Non Repudiation" ] || fail "signing: key usage $(kusage sig)"
hasnt sig "Extended Key Usage"
has sig "URI:$URL/ca.crl"
has sig "CA Issuers - URI:$URL/ca.crt"
req tls EC "/O=Sở Y tế/CN=ws-01"
issue tls --profile tls-client
[ "$(kusage tls)" = "Digital Signature" ] || fail "tls-client: key usage $(kusage tls)"
has tls "TLS Web Client Authentication"
openssl verify -CAfile ca.pem -purpose sslclient tls.pem >/dev/null || fail "openssl: not a TLS client certificate"
echo "signing and tls-client: their key usage and EKU, the CRL distribution point and AIA under ca_url"

req mail-rsa RSA "/O=Sở Nội vụ/CN=Quàng Thị Mai"
issue mail-rsa --profile email --email mai.qt@dienbien.example.vn
[ "$(kusage mail-rsa)" = "Digital Signature, Non Repudiation, Key Encipherment" ] ||
	fail "email RSA: key usage $(kusage mail-rsa)"
has mail-rsa "E-mail Protection"
has mail-rsa "email:mai.qt@dienbien.example.vn"
req mail-ec EC "/O=Sở Nội vụ/CN=Lường Văn Bình" -addext "subjectAltName=email:binh.lv@dienbien.example.vn"
issue mail-ec --profile email
[ "$(kusage mail-ec)" = "Digital Signature, Non Repudiation, Key Agreement" ] ||
	fail "email EC: key usage $(kusage mail-ec)"
has mail-ec "email:binh.lv@dienbien.example.vn"
[ "$(grep -c "email:" mail-ec.txt)" = 1 ] || fail "email EC: the address twice"
# OpenSSL's smimeencrypt purpose asks keyEncipherment of every key; an EC
# key agrees (RFC 5753): checked for RSA, and mail encrypted to both.
openssl verify -CAfile ca.pem -purpose smimeencrypt mail-rsa.pem >/dev/null || fail "openssl: RSA cannot encrypt mail"
echo "Kính gửi" >msg.txt
for c in mail-rsa mail-ec; do
	openssl verify -CAfile ca.pem -purpose smimesign $c.pem >/dev/null || fail "openssl: $c cannot sign mail"
	openssl cms -encrypt -in msg.txt -out $c.cms -aes256 $c.pem 2>/dev/null || fail "cms encrypt to $c"
	openssl cms -decrypt -in $c.cms -inkey $c.key -recip $c.pem | grep -q "Kính gửi" || fail "cms decrypt $c"
done
req mail-none EC "/O=Sở Nội vụ/CN=Không Địa Chỉ"
"$KEYMGR" cert issue --token unit-ca --pin 1234 --ca ca --profile email --out x.pem mail-none.csr 2>err &&
	fail "an email certificate without an address"
grep -q "needs an e-mail address.*--email.*(CKR_TEMPLATE_INCOMPLETE)" err || { cat err >&2; fail "no sentence"; }
"$KEYMGR" cert issue --token unit-ca --pin 1234 --ca ca --profile email --email "a b@c" --out x.pem \
	mail-none.csr 2>err && fail "a malformed address was taken"
grep -q "not an e-mail address" err || { cat err >&2; fail "no sentence for a malformed address"; }
st=0
"$KEYMGR" cert issue --token unit-ca --pin 1234 --ca ca --profile sms --out x.pem mail-none.csr 2>/dev/null || st=$?
[ "$st" = 2 ] || fail "an unknown profile: exit $st, not 2"
echo "email: keyEncipherment (RSA) or keyAgreement (EC), emailProtection, the address given or the request's; openssl cms encrypts to it"

# What ca_url names is in crl_dir: the CA's certificate (DER) and its CRL.
openssl x509 -inform DER -in pub/ca.crt -noout -fingerprint >a.fp || fail "pub/ca.crt is no DER certificate"
openssl x509 -in ca.pem -noout -fingerprint >b.fp
cmp -s a.fp b.fp || fail "pub/ca.crt is not the CA's certificate"
"$KEYMGR" cert revoke --token unit-ca --pin 1234 --ca ca --serial "$(openssl x509 -in tls.pem -noout -serial |
	cut -d= -f2)" --reason keyCompromise >/dev/null || fail "cert revoke"
openssl verify -crl_check -CAfile ca.pem -CRLfile pub/ca.crl sig.pem >/dev/null || fail "sig.pem with the CRL"
openssl verify -crl_check -CAfile ca.pem -CRLfile pub/ca.crl tls.pem >/dev/null 2>&1 && fail "revoked tls.pem verifies"
echo "the CA's certificate and CRL are where the certificates point"

# keymgr crl export: the current CRL as signed, no PIN, nothing signed anew.
"$KEYMGR" crl export --token unit-ca --ca ca --out now.crl >/dev/null || fail "crl export"
openssl crl -in now.crl -outform DER -out now.der || fail "now.crl is no CRL"
openssl crl -in pub/ca.crl -outform DER -out pub.der
cmp -s now.der pub.der || fail "crl export is not the CRL keymgrd published"
"$KEYMGR" crl export --token unit-ca --ca ca --der >again.der || fail "crl export --der"
cmp -s now.der again.der || fail "a second export differs (a new CRL was signed?)"
openssl crl -in now.crl -noout -text | grep -q "$(openssl x509 -in tls.pem -noout -serial | cut -d= -f2)" ||
	fail "the exported CRL lacks the revoked serial"
"$KEYMGR" key generate --token unit-ca --pin 1234 --type ec:P-256 --label plain >/dev/null || fail "plain key"
"$KEYMGR" crl export --token unit-ca --ca plain >/dev/null 2>err && fail "a CRL of a key that is no CA"
grep -q "is no CA here" err || { cat err >&2; fail "no sentence for a key that is no CA"; }
"$KEYMGR" cert export --token unit-ca ca >ca2.pem || fail "cert export of the CA"
cmp -s ca.pem ca2.pem || openssl x509 -in ca2.pem -noout -fingerprint | cmp -s - b.fp || fail "cert export: not the CA's"
echo "crl export: the published CRL, PEM or DER, without a PIN; cert export gives the CA's certificate"

# Each issue in the audit trail: its serial and subject.
"$KEYMGR" audit list --op cert-issue >audit.txt || fail "audit list"
for c in sig tls mail-rsa mail-ec; do
	serial=$(openssl x509 -in $c.pem -noout -serial | cut -d= -f2)
	grep "serial $serial to " audit.txt | grep -q "profile" || { cat audit.txt >&2; fail "$c ($serial) not audited"; }
done
grep -q "serial [0-9A-F]* to .*CN=Lò Văn Thắng" audit.txt || { cat audit.txt >&2; fail "no subject in the audit"; }
grep -q "profile email" audit.txt || fail "the profile is not audited"
stop_keymgrd
echo "cert issue: serial, subject and profile of each in the audit trail"
