#!/bin/sh
# keymgr holder split: a store from before holder tokens, with every
# official's key on one shared token, moves to one token per holder. Each
# key version goes with its certificates to the holder its subject names;
# the CA key and a certificate of nobody in the file stay; the moved key
# still signs (as its holder, after the first PIN change) and verifies
# with its old certificate; a second run has nothing left to do.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to make a local group"; exit 77; }
# The official is nobody (uid 65534) in a group made here for the socket.
G=cys-g$$
EXTRA_CLEANUP="groupdel $G 2>/dev/null"
groupadd "$G" || fail "groupadd"
chmod 0755 "$TMP"
cd "$TMP"
km() { "$KEYMGR" "$@"; }
start_keymgrd --socket-group "$G"

km token init --label shared --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
km key generate --token shared --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "CA key"
km ca init --token shared --pin 1234 --label ca --subject "CN=Ban Cơ yếu,O=UBND tỉnh Điện Biên,C=VN" \
	--out ca.pem >/dev/null || fail "ca init"
# Officials A (two key versions), B (one), and one nobody in the file.
cert() { # LABEL SUBJECT
	km key generate --token shared --pin 1234 --type ec:P-256 --label "$1" >/dev/null || fail "key $1"
	km key csr --token shared --pin 1234 "$1" --subject "$2" --out "$1.csr" || fail "csr $1"
	km cert issue --token shared --pin 1234 --ca ca --days 365 --out "$1.pem" "$1.csr" >/dev/null ||
		fail "issue $1"
	km cert import --token shared "$1.pem" >/dev/null || fail "import $1"
}
cert a-sign "CN=Nguyễn Văn A,O=Sở Nội vụ,OU=Phòng Tổ chức,C=VN"
cert a-enc "CN=Nguyễn Văn A,O=Sở Nội vụ,C=VN"
cert b-sign 'CN=Trần Thị B,O=Sở Văn hóa\, Thể thao và Du lịch,C=VN'
cert x-sign "CN=Người Lạ,O=Sở Nội vụ,C=VN"
cat >holders.csv <<'CSV'
id,name,agency,unit
DB-A,Nguyễn Văn A,Sở Nội vụ,Phòng Tổ chức
DB-B,Trần Thị B,"Sở Văn hóa, Thể thao và Du lịch",
DB-C,Lò Văn C,Sở Tài chính,
DB-CA,Ban Cơ yếu,UBND tỉnh Điện Biên,
CSV
before=$(km inventory list --token shared | grep -c "valid")
[ "$before" -eq 5 ] || fail "the shared token lists $before valid certificates, not 5"

km holder split --token shared --holders holders.csv --dry-run >dry.out || fail "dry run"
grep -q "^would move 4 key version(s) of 3 holder(s), 3 new token(s); 1 key version(s) left" dry.out ||
	{ cat dry.out >&2; fail "dry run plan"; }
[ "$(km inventory list --token shared | grep -c valid)" -eq 5 ] || fail "the dry run moved something"
km holder split --token shared --holders holders.csv --pin-out pins.csv 2>err.out && fail "split without the PIN"
grep -q -- "--pin" err.out || fail "no word about the missing PIN"
km holder split --token shared --holders holders.csv --pin 9999 --pin-out pins.csv 2>err.out &&
	fail "split with a wrong PIN"
grep -q "CKR_PIN_INCORRECT" err.out || { cat err.out >&2; fail "a wrong PIN was not named"; }
km holder list | grep -q DB-A && fail "a holder was made before the PIN was checked"
rm -f pins.csv

km holder split --token shared --holders holders.csv --pin 1234 --pin-out pins.csv >split.out ||
	{ cat split.out >&2; fail "split"; }
cat split.out
grep -q "^holder DB-A (Nguyễn Văn A): 2 key version(s), 6 object(s) moved to a new token" split.out ||
	fail "A's two versions (pair and certificate each) did not move"
grep -q "^holder DB-B .*1 key version(s), 3 object(s) moved" split.out || fail "B's key did not move"
grep -q "Người Lạ.*no holder in the file" split.out || fail "the stranger's key is not reported as left"
grep -q "Ban Cơ yếu.*a CA's key" split.out || fail "the CA's key is not reported as staying"
grep -q "^moved 3 key version(s) of 2 holder(s), 3 new token(s); 2 key version(s) left" split.out ||
	fail "the summary"
grep -q "holder DB-C (" split.out && fail "a holder without keys was touched"
[ "$(stat -c %a pins.csv)" = 600 ] && [ "$(grep -c '^DB-' pins.csv)" -eq 3 ] || fail "the PIN file"

# The inventory follows the keys; the CA and the stranger stay.
km inventory list --token shared >shared.inv
grep -q "Ban Cơ yếu" shared.inv && grep -q "Người Lạ" shared.inv || fail "the CA or the stranger moved"
grep -q "Nguyễn Văn A\|Trần Thị B" shared.inv && fail "a moved certificate is still listed on the shared token"
[ "$(km inventory list --token DB-A | grep -c 'Nguyễn Văn A')" -eq 2 ] || fail "A's inventory"
km key list --token shared --pin 1234 | grep -q "a-sign" && fail "A's key is still on the shared token"

# The moved key signs as its holder and verifies with its old certificate.
km access grant --uid 65534 --holder DB-A >/dev/null || fail "access grant"
mkdir w && chown 65534 w && cd w
P11="host setpriv --reuid=65534 --regid=65534 --groups $(getent group "$G" | cut -d: -f3) timeout 60 pkcs11-tool --module $COYEU_MODULE --token-label DB-A"
pin=$(grep '^DB-A,' ../pins.csv | awk -F, '{print $NF}')
$P11 --login --pin "$pin" --change-pin --new-pin 24681357 >chpin.out 2>&1 || { cat chpin.out >&2; fail "PIN change"; }
echo "a document" >doc
chmod 0644 doc
ok=0
for k in $($P11 --login --pin 24681357 --list-objects --type privkey 2>/dev/null | sed -n 's/^ *ID: *//p'); do
	$P11 --login --pin 24681357 --sign --id "$k" -m ECDSA-SHA256 --signature-format openssl -i doc -o "sig-$k" \
		>/dev/null 2>&1 || fail "sign with moved key $k"
	for c in a-sign a-enc; do
		openssl x509 -in "../$c.pem" -pubkey -noout >"$c.pub"
		openssl dgst -sha256 -verify "$c.pub" -signature "sig-$k" doc >/dev/null 2>&1 && ok=$((ok + 1))
	done
done
[ "$ok" -eq 2 ] || fail "$ok of A's two moved keys verify with their old certificates"
echo "both of A's moved keys sign and verify with their certificates"
cd "$TMP"

# Again: nothing left to move, nothing made twice.
km holder split --token shared --holders holders.csv --pin 1234 --pin-out pins2.csv >again.out ||
	{ cat again.out >&2; fail "second split"; }
grep -q "^moved 0 key version(s) of 0 holder(s), 0 new token(s); 2 key version(s) left" again.out ||
	{ cat again.out >&2; fail "the second run did something"; }
km audit list --op key-move | grep -c "CKR_OK" | grep -qx 3 || fail "three key-move entries"
km audit list --op key-move | grep -q "CKR_KEY_FUNCTION_NOT_PERMITTED" || fail "the refused CA move is not audited"
km audit verify >/dev/null || fail "audit verify"
stop_keymgrd
# (A directory keymgrd makes for its socket lets in whom the socket mode
# does, whatever keymgrd's umask.)
COYEU_SOCKET="$TMP/open/keymgrd.sock"
start_keymgrd --socket-mode 0666
[ "$(stat -c %a "$TMP/open")" = 755 ] || fail "the socket directory for mode 0666 is $(stat -c %a "$TMP/open")"
stop_keymgrd
echo "holder split: 3 key versions of 2 holders moved; 2 left, listed"
