#!/bin/sh
# The key lifecycle end to end, with the token's own CA (no outside CA):
# rotate -> the request verifies and carries the subject -> the CA issues ->
# import activates the new version and retires the old one -> signing with
# the old is refused, verifying with it works -> after the grace period the
# old material is gone and the audit entry stays. Then revocation: the key
# cannot sign, the CRL keymgrd rewrites verifies, openssl verify -crl_check
# rejects the revoked certificate and accepts a good one. Then rotate --due
# and the policy timer that rotates by itself into the outbox.
. "$(dirname "$0")/lib.sh"

K="$KEYMGR"
T="--token rot --pin 1234"
start_keymgrd --grace 3s --policy-interval 1s --rotate-policy flag
"$K" token init --label rot --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"

# The provincial CA on the token.
"$K" key generate $T --type ec:P-384 --label ca >/dev/null 2>&1 || fail "CA key"
"$K" ca init $T --label ca --subject "CN=Ban Cơ yếu tỉnh Điện Biên,O=UBND tỉnh Điện Biên,C=VN" \
	--out "$TMP/ca.pem" >/dev/null || fail "ca init"
openssl x509 -in "$TMP/ca.pem" -noout -ext basicConstraints | grep -q "CA:TRUE" || fail "CA certificate"

# An official's key and first certificate (expiring in 20 days).
SUBJ="CN=Nguyễn Văn Ánh,OU=Phòng Tổ chức cán bộ,O=Sở Nội vụ tỉnh Điện Biên,C=VN"
"$K" key generate $T --type ec:P-256 --label nva >/dev/null 2>&1 || fail "key"
"$K" key csr $T nva --subject "$SUBJ" --out "$TMP/nva1.csr" || fail "key csr"
"$K" cert issue $T --ca ca --days 20 --out "$TMP/nva1.pem" "$TMP/nva1.csr" >/dev/null || fail "issue v1"
"$K" cert import $T "$TMP/nva1.pem" >/dev/null || fail "import v1"
openssl verify -CAfile "$TMP/ca.pem" "$TMP/nva1.pem" >/dev/null || fail "v1 does not verify"
OLD=$("$K" key show $T nva --json | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')
[ -n "$OLD" ] || fail "no id for version 1"

# A subject with a comma in the agency (one of the province's): given as
# parts, nothing to escape; as one DN without "\," it is refused with a
# sentence that says what to escape; escaped, it works.
"$K" key generate $T --type ec:P-256 --label vh >/dev/null 2>&1 || fail "key vh"
AG="Sở Văn hóa, Thể thao và Du lịch"
"$K" key csr $T vh --cn "Lò Thị Mai" --ou "Phòng Văn hóa" --o "$AG" --st "Điện Biên" --c VN --out "$TMP/vh.csr" ||
	fail "key csr with --cn --ou --o --st --c"
openssl req -in "$TMP/vh.csr" -noout -subject -nameopt utf8,sep_multiline >"$TMP/vh.subj" || fail "the request"
grep -q "O=$AG\$" "$TMP/vh.subj" && grep -q "CN=Lò Thị Mai" "$TMP/vh.subj" && grep -q "ST=Điện Biên" "$TMP/vh.subj" &&
	grep -q "C=VN" "$TMP/vh.subj" || { cat "$TMP/vh.subj" >&2; fail "the parts did not make the subject"; }
"$K" key csr $T vh --subject "CN=Lò Thị Mai,O=$AG,C=VN" --out "$TMP/vh2.csr" 2>"$TMP/dn.err" &&
	fail "a DN with a bare comma in a value was taken"
grep -q 'write it as \\,' "$TMP/dn.err" && grep -q -- "--o" "$TMP/dn.err" ||
	{ cat "$TMP/dn.err" >&2; fail "the refusal does not say what to escape"; }
"$K" key csr $T vh --subject "CN=Lò Thị Mai,O=Sở Văn hóa\, Thể thao và Du lịch,C=VN" --out "$TMP/vh3.csr" ||
	fail "the escaped DN"
openssl req -in "$TMP/vh3.csr" -noout -subject -nameopt utf8,sep_multiline | grep -q "O=$AG\$" ||
	fail "the escaped DN lost its comma"
"$K" key csr $T vh --subject "CN=x" --cn y 2>/dev/null && fail "--subject and --cn together"
echo "DN: parts with a comma need no escaping; a bare comma is refused naming \\, and --o; escaped works"

# Rotate: a pre-active version 2 and its request.
mkdir "$TMP/out"
"$K" key rotate $T nva --out "$TMP/out" >"$TMP/rotate.log" || fail "rotate"
CSR="$TMP/out/nva-v2.csr"
openssl req -in "$CSR" -verify -noout 2>&1 | grep -q "verify OK" || fail "the request does not verify"
want=$(openssl x509 -in "$TMP/nva1.pem" -noout -subject -nameopt utf8,sep_comma_plus)
got=$(openssl req -in "$CSR" -noout -subject -nameopt utf8,sep_comma_plus)
[ "$got" = "$want" ] || fail "request subject '$got' is not the certificate's '$want'"
echo "rotated: request verifies, subject kept byte for byte: $got"
# Rotating again while version 2 waits makes nothing new: its request again.
mkdir "$TMP/again"
"$K" key rotate $T nva --out "$TMP/again" >"$TMP/again.log" || fail "rotating a pending key again"
grep -q "^already rotated 'nva' to version 2" "$TMP/again.log" || fail "second rotation: $(cat "$TMP/again.log")"
openssl req -in "$TMP/again/nva-v2.csr" -verify -noout 2>&1 | grep -q "verify OK" || fail "request made again"
[ "$(openssl req -in "$CSR" -noout -pubkey)" = "$(openssl req -in "$TMP/again/nva-v2.csr" -noout -pubkey)" ] ||
	fail "the request made again is for another key"
NEW=$("$K" key show $T nva | awk '$1 == 2 { print $5 }')
"$K" key show $T nva | grep -q "^2 *pre-active" || fail "version 2 not pre-active"

P11="host pkcs11-tool --module $COYEU_MODULE --token-label rot --login --pin 1234"
printf 'quyết định số 1' >"$TMP/doc"
sign() { $P11 --sign --id "$1" -m ECDSA-SHA256 -i "$TMP/doc" -o "$TMP/sig-$1" >"$TMP/sign.log" 2>&1; }
verify() { $P11 --verify --id "$1" -m ECDSA-SHA256 -i "$TMP/doc" --signature-file "$TMP/sig-$1" >"$TMP/verify.log" 2>&1; }
sign "$NEW" && fail "a pre-active version signed"
sign "$OLD" || fail "version 1 does not sign before the new certificate"

# The CA issues; importing activates version 2 and retires version 1.
"$K" cert issue $T --ca ca --days 365 --out "$TMP/nva2.pem" "$CSR" >/dev/null || fail "issue v2"
"$K" cert import $T "$TMP/nva2.pem" >"$TMP/import.log" || fail "import v2"
grep -q "activated 1 new key version" "$TMP/import.log" || fail "import did not activate"
sign "$NEW" || { cat "$TMP/sign.log" >&2; fail "the new version does not sign"; }
verify "$NEW" || fail "the new version's signature does not verify"
sign "$OLD" && fail "the retired version signed"
grep -q CKR_KEY_FUNCTION_NOT_PERMITTED "$TMP/sign.log" || { cat "$TMP/sign.log" >&2; fail "wrong refusal"; }
cp "$TMP/sig-$NEW" "$TMP/sig-keep"
"$K" key show $T nva | grep -q "^1 *retired" || fail "version 1 not retired"
# The inventory tells the truth after the renewal: version 1's certificate
# (20 days left) is superseded, not valid and expiring; nothing is due.
"$K" inventory list --token rot --csv | grep "Nguyễn Văn Ánh" >"$TMP/inv.csv"
grep -q ",superseded,$OLD," "$TMP/inv.csv" || { cat "$TMP/inv.csv" >&2; fail "version 1's certificate is not superseded"; }
grep -q ",valid,$NEW," "$TMP/inv.csv" || { cat "$TMP/inv.csv" >&2; fail "version 2's certificate is not valid"; }
[ "$("$K" inventory list --token rot --expiring 30d --csv | grep -c "Nguyễn Văn Ánh")" -eq 0 ] ||
	fail "a superseded certificate is listed as expiring"
"$K" inventory list --token rot --status superseded --csv | grep -q ",superseded,$OLD," ||
	fail "--status superseded does not find it"
"$K" key rotate $T --due --within 30d --out "$TMP/out" | grep -q "^0 key(s) due" || fail "the renewed key is due"
# The table shows whole serials (coyeu's CA writes 16 bytes), as the CSV.
serial=$(grep ",valid,$NEW," "$TMP/inv.csv" | cut -d, -f4)
[ "${#serial}" -gt 16 ] || fail "the test needs a serial longer than 16 hex digits: $serial"
"$K" inventory list --token rot | grep -q " $serial " || fail "the inventory table does not show the whole serial $serial"
# Taking out what others need: the key's newest certificate (the renewal's),
# with its chain; by the inventory's serial; the CA's own; the public key.
"$KEYMGR" cert export --token rot --label nva --out "$TMP/exp.pem" 2>"$TMP/exp.err" || { cat "$TMP/exp.err" >&2; fail "cert export"; }
[ "$(openssl x509 -in "$TMP/exp.pem" -noout -fingerprint)" = "$(openssl x509 -in "$TMP/nva2.pem" -noout -fingerprint)" ] ||
	fail "cert export did not give version 2's certificate"
"$KEYMGR" cert export --token rot --label nva --chain --out "$TMP/chain.pem" 2>/dev/null || fail "cert export --chain"
[ "$(grep -c "BEGIN CERTIFICATE" "$TMP/chain.pem")" -eq 2 ] || fail "the chain is not the certificate and the CA's"
openssl verify -CAfile "$TMP/ca.pem" "$TMP/exp.pem" >/dev/null || fail "the exported certificate does not verify"
"$KEYMGR" cert export --token rot --serial "$serial" | openssl x509 -noout -fingerprint >"$TMP/fp1" || fail "by serial"
[ "$(cat "$TMP/fp1")" = "$(openssl x509 -in "$TMP/nva2.pem" -noout -fingerprint)" ] || fail "cert export --serial"
"$KEYMGR" cert export --token rot --label ca --out "$TMP/ca-exp.pem" 2>/dev/null || fail "the CA's certificate"
[ "$(openssl x509 -in "$TMP/ca-exp.pem" -noout -fingerprint)" = "$(openssl x509 -in "$TMP/ca.pem" -noout -fingerprint)" ] ||
	fail "the exported CA certificate differs"
"$KEYMGR" cert export --token rot --serial 0bad 2>/dev/null && fail "a serial that is not there was exported"
"$KEYMGR" key pubkey --token rot --label nva --out "$TMP/nva.pub" || fail "key pubkey"
[ "$(openssl pkey -pubin -in "$TMP/nva.pub" -outform DER | od -An -tx1)" = \
	"$(openssl x509 -in "$TMP/nva2.pem" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1)" ] ||
	fail "key pubkey is not version 2's public key"
echo "export: newest certificate, chain to the CA, by serial, the CA's, the public key"
echo "activated: version 2 signs, version 1 refuses (CKR_KEY_FUNCTION_NOT_PERMITTED); its certificate superseded"

# Verifying with the retired version still works (a signature it made).
"$K" key generate $T --type ec:P-256 --label old-docs >/dev/null 2>&1 || fail "key old-docs"
"$K" key csr $T old-docs --subject "CN=Lưu trữ,O=Văn phòng UBND tỉnh Điện Biên,C=VN" --out "$TMP/od.csr" &&
	"$K" cert issue $T --ca ca --out "$TMP/od.pem" "$TMP/od.csr" >/dev/null &&
	"$K" cert import $T "$TMP/od.pem" >/dev/null || fail "old-docs certificate"
OD1=$("$K" key show $T old-docs | awk '$1 == 1 { print $5 }')
sign "$OD1" || fail "old-docs does not sign"
"$K" key rotate $T old-docs --out "$TMP/out" >/dev/null || fail "rotate old-docs"
"$K" cert issue $T --ca ca --out "$TMP/od2.pem" "$TMP/out/old-docs-v2.csr" >/dev/null &&
	"$K" cert import $T "$TMP/od2.pem" >/dev/null || fail "old-docs v2"
verify "$OD1" || { cat "$TMP/verify.log" >&2; fail "the retired version no longer verifies"; }
echo "retired: still verifies what it signed"

# After the grace period (3 s, policy every 1 s) version 1 is destroyed.
for _ in $(seq 100); do
	"$K" key show $T nva | grep -q "^1 *destroyed" && break
	sleep 0.1
done
"$K" key show $T nva | grep -q "^1 *destroyed" || fail "version 1 not destroyed after the grace period"
sign "$OLD" && fail "a destroyed version signed"
"$K" audit list >"$TMP/audit"
grep -q "policy-destroy .*id $OLD" "$TMP/audit" || fail "no audit entry for the destruction"
grep -q "key-rotate .*id $NEW version 2" "$TMP/audit" || fail "no audit entry for the rotation"
"$K" audit verify >/dev/null || fail "audit chain"
echo "grace period over: version 1 destroyed, audit entries kept, chain verifies"

# Revocation by certificate serial: unusable at once, recorded, published.
"$K" key generate $T --type rsa:2048 --label ttb >/dev/null 2>&1 || fail "key ttb"
"$K" key csr $T ttb --subject "CN=Trần Thị Bích,O=Sở Tài chính tỉnh Điện Biên,C=VN" --out "$TMP/ttb.csr" &&
	"$K" cert issue $T --ca ca --out "$TMP/ttb.pem" "$TMP/ttb.csr" >/dev/null &&
	"$K" cert import $T "$TMP/ttb.pem" >/dev/null || fail "ttb certificate"
TTB=$("$K" key show $T ttb | awk '$1 == 1 { print $5 }')
$P11 --sign --id "$TTB" -m SHA256-RSA-PKCS -i "$TMP/doc" -o "$TMP/s" >/dev/null 2>&1 || fail "ttb does not sign"
SERIAL=$(openssl x509 -in "$TMP/ttb.pem" -noout -serial | cut -d= -f2)
"$K" key revoke $T --serial "$SERIAL" --reason keyCompromise --dry-run >"$TMP/dry.log" || fail "revoke --dry-run"
grep -q "1 certificate(s) would be revoked, reason keyCompromise; nothing changed" "$TMP/dry.log" ||
	{ cat "$TMP/dry.log" >&2; fail "revoke --dry-run did not say what it would do"; }
"$K" inventory list --token rot --status revoked --csv | grep -q "Trần Thị Bích" && fail "--dry-run revoked"
"$K" key revoke $T --serial "$SERIAL" --reason keyCompromise >/dev/null || fail "revoke by serial"
$P11 --sign --id "$TTB" -m SHA256-RSA-PKCS -i "$TMP/doc" -o "$TMP/s" >/dev/null 2>&1 && fail "a revoked key signed"
"$K" inventory list --token rot --status revoked --csv | grep -q "Trần Thị Bích.*,revoked,$TTB,keyCompromise," ||
	fail "the inventory does not record the revocation"
CRL="$TMP/data/crl/ca.crl"
[ -f "$CRL" ] || fail "keymgrd wrote no CRL after the revocation"
openssl crl -in "$CRL" -CAfile "$TMP/ca.pem" -noout 2>&1 | grep -q "verify OK" || fail "the CRL does not verify"
openssl crl -in "$CRL" -noout -text | grep -A4 "Serial Number: $SERIAL" | grep -q "Key Compromise" ||
	fail "the CRL lacks the serial or its reason"
certtool --crl-info --infile "$CRL" >/dev/null 2>&1 || fail "GnuTLS cannot read the CRL"
cat "$TMP/ca.pem" "$CRL" >"$TMP/chain.pem"
openssl verify -crl_check -CAfile "$TMP/chain.pem" "$TMP/ttb.pem" >/dev/null 2>&1 && fail "a revoked certificate verified"
openssl verify -crl_check -CAfile "$TMP/chain.pem" "$TMP/nva2.pem" >/dev/null || fail "a good certificate was rejected"
"$K" crl generate $T --ca ca --days 7 --out "$TMP/crl.pem" >/dev/null || fail "crl generate"
openssl crl -in "$TMP/crl.pem" -noout -text | grep -A1 "CRL Number" | tail -1 | grep -q "[2-9]" ||
	fail "CRL number did not advance"
"$K" crl generate $T --ca nva 2>&1 | grep -q "is no CA" || fail "a key without a CA certificate signed a CRL"
echo "revoked: refused at once, inventory and CRL record it (with its reason); openssl rejects it, accepts the good one"

# rotate --due: every key whose certificate expires within 30 days, on all cores.
for i in 1 2 3 4 5 6; do
	"$K" key generate $T --type ec:P-256 --label "due-$i" >/dev/null 2>&1 || fail "key due-$i"
	"$K" key csr $T "due-$i" --subject "CN=Cán bộ $i,O=Sở Y tế tỉnh Điện Biên,C=VN" --out "$TMP/d.csr" &&
		"$K" cert issue $T --ca ca --days 5 --out "$TMP/d.pem" "$TMP/d.csr" >/dev/null &&
		"$K" cert import $T "$TMP/d.pem" >/dev/null || fail "due-$i certificate"
done
mkdir "$TMP/due"
"$K" key rotate $T --due --within 30d --dry-run >"$TMP/dry.log" || fail "rotate --due --dry-run"
grep -q "^6 key(s) due" "$TMP/dry.log" && grep -q "^dry run: nothing rotated" "$TMP/dry.log" &&
	[ "$(grep -c '^  due-' "$TMP/dry.log")" -eq 6 ] || { cat "$TMP/dry.log" >&2; fail "--dry-run did not list the 6 keys"; }
"$K" key rotate $T --due --within 30d --out "$TMP/due" --jobs 2 >"$TMP/due.log" || { cat "$TMP/due.log" >&2; fail "rotate --due"; }
grep -q "^6 key(s) due" "$TMP/due.log" || { cat "$TMP/due.log" >&2; fail "not 6 keys due"; }
[ "$(ls "$TMP/due" | wc -l)" -eq 6 ] || fail "not 6 requests"
for f in "$TMP"/due/*.csr; do
	openssl req -in "$f" -verify -noout 2>&1 | grep -q "verify OK" || fail "$f does not verify"
done
"$K" key rotate $T --due --within 30d --out "$TMP/due" | grep -q "^0 key(s) due" || fail "rotated twice"
echo "rotate --due: 6 keys rotated with 2 workers, 6 requests verify"
stop_keymgrd

# The policy rotates by itself: requests appear in the outbox.
start_keymgrd --policy-interval 1s --rotate-policy rotate --rotate-before 30d
"$K" key generate $T --type ed25519 --label auto 2>/dev/null && fail "bad type accepted"
"$K" key generate $T --type ec:Ed25519 --label auto >/dev/null 2>&1 || fail "key auto"
"$K" key csr $T auto --subject "CN=Tự động,O=Sở Thông tin và Truyền thông tỉnh Điện Biên,C=VN" --out "$TMP/a.csr" &&
	"$K" cert issue $T --ca ca --days 10 --out "$TMP/a.pem" "$TMP/a.csr" >/dev/null &&
	"$K" cert import $T "$TMP/a.pem" >/dev/null || fail "auto certificate"
for _ in $(seq 100); do
	[ -f "$TMP/data/outbox/auto-v2.csr" ] && break
	sleep 0.1
done
[ -f "$TMP/data/outbox/auto-v2.csr" ] || fail "the policy did not rotate 'auto' into the outbox"
openssl req -in "$TMP/data/outbox/auto-v2.csr" -verify -noout 2>&1 | grep -q "verify OK" || fail "outbox request"
"$K" audit list | grep -q "key-rotate .*version 2" || fail "policy rotation not audited"
"$K" audit verify >/dev/null || fail "audit chain after the policy"
stop_keymgrd
echo "policy: rotated 'auto' by itself, Ed25519 request in the outbox verifies"
