#!/bin/sh
# The administrator's guide (docs/admin-guide.md), run: setting up with an
# administrator account, a CA token and holders imported from a CSV file
# (an agency with a comma in its name), access rules, a certificate per
# holder; the yearly renewal (rotate --due over the holders, issue, import,
# the new version signs); the lost token (revoke by serial, the rule
# removed, a new one-time PIN, a CRL that shows the revocation).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to make local users"; exit 77; }
sfx=$$
G=cyg-g$sfx ADM=cyg-adm$sfx OFF=cyg-off$sfx
EXTRA_CLEANUP="userdel $ADM 2>/dev/null; userdel $OFF 2>/dev/null; groupdel $G 2>/dev/null"
groupadd "$G" && useradd -M -N -g "$G" -s /usr/sbin/nologin "$ADM" && useradd -M -N -g "$G" -s /usr/sbin/nologin "$OFF" ||
	fail "useradd"
as() { u=$1; shift; setpriv --reuid="$u" --regid="$G" --init-groups "$@"; }
chmod 0755 "$TMP"
W="$TMP/work"
mkdir -p "$W/csr"
chown -R "$ADM:$G" "$W"
cd "$W"

# Setting up.
start_keymgrd --socket-group "$G"
echo "correct horse battery" | "$KEYMGR" account add admin1 --role admin --uid "$ADM" || fail "account add"
echo "correct horse battery" >"$W/.coyeu-pass"
chown "$ADM" "$W/.coyeu-pass"
chmod 0400 "$W/.coyeu-pass"
km() { as "$ADM" "$KEYMGR" --passphrase-file "$W/.coyeu-pass" "$@"; }
km token init --label ca-token --so-pin 87654321 --pin 1234 || fail "CA token"
km key generate --token ca-token --pin 1234 --type ec:P-384 --label ca >/dev/null || fail "CA key"
km ca init --token ca-token --pin 1234 --label ca \
	--subject "CN=Ban Cơ yếu tỉnh Điện Biên,O=UBND tỉnh Điện Biên,C=VN" --out ca.pem >/dev/null || fail "ca init"
cat >officials.csv <<'CSV'
id,name,agency,unit
DB-0001,Nguyễn Văn A,Sở Nội vụ tỉnh Điện Biên,Phòng Tổ chức
DB-0002,Trần Thị B,"Sở Văn hóa, Thể thao và Du lịch",
DB-0003,Lò Văn C,Sở Tài chính tỉnh Điện Biên,
CSV
chown "$ADM" officials.csv
km holder import officials.csv --key ec:P-256 --pin-out pins.csv --pin-letters letters.txt || fail "holder import"
[ "$(stat -c %a pins.csv)" = 600 ] && [ "$(grep -c '^DB-' pins.csv)" -eq 3 ] || fail "the PIN file"
grep -q "Sở Văn hóa, Thể thao và Du lịch" letters.txt || fail "the PIN letters lack the agency"
km holder import officials.csv --pin-out pins2.csv 2>/dev/null && fail "a second import made the holders twice"
km holder list | grep -c "initial" | grep -qx 3 || fail "holder list"
km access grant --uid "$OFF" --holder DB-0002 || fail "access grant"
km access list | grep -q "DB-0002" || fail "access list"
# The requests in one go, from a CSV of subjects (the agency with a comma
# needs no escaping there).
cat >subjects.csv <<'CSV'
token,key,cn,ou,o,c
DB-0001,signing,DB-0001,Phòng Tổ chức,Sở Nội vụ tỉnh Điện Biên,VN
DB-0002,signing,DB-0002,,"Sở Văn hóa, Thể thao và Du lịch",VN
DB-0003,signing,DB-0003,,Sở Tài chính tỉnh Điện Biên,VN
CSV
chown "$ADM" subjects.csv
km key csr --batch subjects.csv --out "$W" | grep -q "^wrote 3 request(s)" || fail "key csr --batch"
openssl req -in DB-0002-signing.csr -noout -subject -nameopt utf8,sep_multiline |
	grep -q "O=Sở Văn hóa, Thể thao và Du lịch$" || fail "the batch request lost the agency's comma"
for h in DB-0001 DB-0002 DB-0003; do
	mv "$h-signing.csr" "$h.csr"
	# Certificates that expire within the renewal window (20 days).
	km cert issue --token ca-token --pin 1234 --ca ca --days 20 --out "$h.pem" "$h.csr" >/dev/null || fail "issue $h"
	km cert import --token $h "$h.pem" >/dev/null || fail "import $h"
done
km inventory report --token DB-0001 >/dev/null || fail "inventory report"

# Worked example 1: the yearly renewal.
km inventory list --token DB-0001 --expiring 30d | grep -q DB-0001 || fail "not listed as expiring"
for h in $(km holder list --json | grep -o '"id":"[^"]*"' | cut -d'"' -f4); do
	as "$ADM" mkdir -p "csr/$h"
	km key rotate --token "$h" --due --within 30d --out "csr/$h" >/dev/null || fail "rotate --due $h"
	km cert issue --token ca-token --pin 1234 --ca ca --days 365 \
		--out "csr/$h/signing-v2.pem" "csr/$h/signing-v2.csr" >/dev/null || fail "issue v2 $h"
	km cert import --token "$h" "csr/$h/signing-v2.pem" | grep -q "activated 1 new key version" ||
		fail "import v2 $h did not activate"
done
km key show --token DB-0001 signing | grep -q "^2 *active" || fail "version 2 not active"
km key show --token DB-0001 signing | grep -q "^1 *retired" || fail "version 1 not retired"
echo "renewal: 3 holders rotated, issued, imported; version 2 active"

# Worked example 2: a lost token.
pin=$(grep '^DB-0002,' pins.csv | cut -d, -f4)
[ -n "$pin" ] || pin=$(grep '^DB-0002,' pins.csv | awk -F, '{print $NF}')
serial=$(openssl x509 -in csr/DB-0002/signing-v2.pem -noout -serial | cut -d= -f2)
km inventory list --token DB-0002 | grep -qi "$(printf %.16s "$serial")" || fail "the serial is not in the inventory"
km key revoke --token DB-0002 --serial "$serial" --reason keyCompromise || fail "revoke by serial"
km access revoke --uid "$OFF" --holder DB-0002 || fail "access revoke"
km holder reset-pin --id DB-0002 --pin-letters b-letter.txt || fail "reset-pin"
n=$(host as "$OFF" pkcs11-tool --module "$COYEU_MODULE" -L 2>/dev/null | grep -c "token label" || true)
[ "$n" -eq 0 ] || fail "the lost laptop's user still sees the token"
km crl generate --token ca-token --pin 1234 --ca ca --days 7 --out ca.crl >/dev/null || fail "crl generate"
cat ca.pem ca.crl >chain.pem
openssl verify -crl_check -CAfile chain.pem csr/DB-0002/signing-v2.pem >verify.out 2>&1 &&
	fail "the revoked certificate verifies"
grep -q "certificate revoked" verify.out || { cat verify.out >&2; fail "openssl: not revoked"; }
openssl verify -crl_check -CAfile chain.pem csr/DB-0001/signing-v2.pem >/dev/null || fail "a good certificate fails"
km audit verify || fail "audit verify"
km audit list --op key-state | grep -q "admin1 *admin" || fail "the revocation is not attributed"
cd /
stop_keymgrd
echo PASS
