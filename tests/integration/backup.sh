#!/bin/sh
# keymgr backup while keymgrd serves, keymgr backup verify, keymgr restore:
# every token, object, key version, certificate, access rule and the audit
# chain come back (and the chain verifies); a signature made before and one
# made after with the restored key verify with the same public key; a
# changed, truncated or wrongly-opened backup is refused with a sentence; a
# restore never writes into a directory that holds something.
. "$(dirname "$0")/lib.sh"
: "${GEN_CERTS:?}" "${AGENCIES:?}"
cd "$TMP"
start_keymgrd
"$KEYMGR" token init --label province --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" key generate --token province --pin 1234 --type rsa:2048 --label signer --id 51 >/dev/null || fail "key"
"$KEYMGR" key generate --token province --pin 1234 --type ec:P-256 --label "Lò Văn Thắng" --id 5a >/dev/null ||
	fail "key 2"
make_cert province "Lò Văn Thắng" "/CN=Lò Văn Thắng/O=Sở Văn hóa, Thể thao và Du lịch" own.pem
"$KEYMGR" cert import --token province --pin 1234 own.pem >/dev/null || fail "cert import"
"$KEYMGR" key rotate --token province --pin 1234 --label "Lò Văn Thắng" --out "$TMP" >/dev/null || fail "rotate"
mkdir certs
"$GEN_CERTS" certs 300 "$AGENCIES" >/dev/null || fail "gen_certs"
"$KEYMGR" cert import --token province --pin 1234 certs/agency-*.pem >/dev/null || fail "inventory import"
"$KEYMGR" holder add --id DB-1 --name "Quàng Thị Bích" --agency "Sở Y tế" --key ec:P-256 --pin-out pin-1 \
	>/dev/null || fail "holder add"
"$KEYMGR" access grant --uid 4242 --holder DB-1 >/dev/null || fail "access grant"
printf 'Quyết định 7/QĐ-UBND\n' >doc.txt
sign() { # OUT
	host pkcs11-tool --module "$COYEU_MODULE" --token-label province --login --pin 1234 --sign \
		--mechanism SHA256-RSA-PKCS --label signer --input-file doc.txt --output-file "$1" >/dev/null 2>&1 ||
		fail "sign $1"
}
sign before.sig
host pkcs11-tool --module "$COYEU_MODULE" --token-label province --read-object --type pubkey --label signer \
	--output-file pub-before.der >/dev/null 2>&1 || fail "public key"
"$KEYMGR" key pubkey --token province --label signer | openssl pkey -pubin -outform DER >pub-keymgr.der ||
	fail "keymgr key pubkey (RSA)"
cmp -s pub-before.der pub-keymgr.der || fail "keymgr key pubkey and pkcs11-tool give different RSA public keys"

# What the store holds, in every listing keymgr has.
listings() { # DIR
	mkdir -p "$1"
	"$KEYMGR" token list >"$1/tokens" &&
		"$KEYMGR" key list --token province --pin 1234 >"$1/objects" &&
		"$KEYMGR" key show --token province --pin 1234 "Lò Văn Thắng" >"$1/versions" &&
		"$KEYMGR" inventory list --token province --csv >"$1/inventory" &&
		"$KEYMGR" holder list >"$1/holders" &&
		"$KEYMGR" access list >"$1/access" &&
		"$KEYMGR" audit list --json >"$1/audit.json" || fail "listings into $1"
	# One entry a line: a table's widths follow its longest entry, later ones too.
	perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->canonical;
		print $j->encode($_), "\n" for @{ $j->decode(<STDIN>) }' <"$1/audit.json" >"$1/audit" ||
		fail "audit list --json into $1"
}
listings was
grep -q "2 version(s)" was/versions || { cat was/versions >&2; fail "no second key version to back up"; }

# ---- backup while serving: a signature goes on at the same time ----
printf 'một cụm mật khẩu sao lưu dài\n' >pass
sign during.sig &
SPID=$!
"$KEYMGR" backup --out province.cyb --passphrase-file pass >backup.out || fail "keymgr backup"
wait "$SPID" || fail "the signature made during the backup"
grep -q "^backup written to province.cyb" backup.out || fail "backup said: $(cat backup.out)"
[ "$(stat -c %a province.cyb)" = 600 ] || fail "the backup file is mode $(stat -c %a province.cyb)"
grep -q "backup.*backup of [0-9]* bytes" keymgrd.log || "$KEYMGR" audit list | grep -q "backup" || fail "not audited"
"$KEYMGR" audit list | grep -q "backup" || fail "the backup is not in the audit trail"
# Sealed stays sealed: no PIN, no key value in clear, and not the SQLite
# file itself (it is encrypted whole).
! grep -q "SQLite format 3" province.cyb || fail "the backup holds the store in the clear"
! cmp -s province.cyb data/keymgr.db || fail "the backup is the store file"
"$KEYMGR" backup --out province.cyb --passphrase-file pass 2>err && fail "a backup overwrote a file"
grep -q "File exists" err || { cat err >&2; fail "no reason for refusing to overwrite"; }
printf 'short\n' >shortpass
"$KEYMGR" backup --out x.cyb --passphrase-file shortpass 2>err && fail "a 5-character passphrase was taken"
grep -q "at least 10 characters" err || fail "no reason for the short passphrase"
echo "backup: $(stat -c %s province.cyb) bytes while serving, mode 0600, audited, encrypted whole"

# ---- verify, tamper, truncate ----
"$KEYMGR" backup verify --passphrase-file pass province.cyb >verify.out || fail "backup verify"
grep -q "a whole coyeu backup, made .*schema 14" verify.out || fail "verify said: $(cat verify.out)"
refused() { # WHAT REGEX FILE [PASSFILE]
	st=0
	"$KEYMGR" backup verify --passphrase-file "${4:-pass}" "$3" >/dev/null 2>err || st=$?
	[ "$st" -eq 1 ] || fail "backup verify took $1 (status $st)"
	grep -q "$2" err || { cat err >&2; fail "no clear reason for $1"; }
	echo "refused: $1: $(cut -c1-100 err)"
}
printf 'không phải mật khẩu này\n' >wrong
refused "a wrong passphrase" "a wrong passphrase, or the file was changed" province.cyb wrong
size=$(stat -c %s province.cyb)
cp province.cyb flipped.cyb
# One byte in the middle of the ciphertext, one in the header's salt: a
# bit of it flipped (writing a given byte leaves one that was already it).
flip() { # FILE OFFSET
	perl -e 'open(my $f, "+<", $ARGV[0]) or die; seek($f, $ARGV[1], 0); read($f, my $c, 1);
		seek($f, $ARGV[1], 0); print $f chr(ord($c) ^ 1)' "$1" "$2" || fail "cannot change $1"
}
flip flipped.cyb $((size / 2))
cmp -s province.cyb flipped.cyb && fail "the tamper did not change the file"
refused "a changed byte" "the file was changed" flipped.cyb
cp province.cyb salt.cyb
flip salt.cyb 40
cmp -s province.cyb salt.cyb && fail "the tamper did not change the header"
refused "a changed header" "the file was changed" salt.cyb
head -c $((size - 1)) province.cyb >cut.cyb
refused "a truncated backup" "cut short" cut.cyb
head -c 30 province.cyb >head.cyb
refused "a backup cut inside its header" "cut short" head.cyb
{ cat province.cyb; printf 'x'; } >long.cyb
refused "bytes after the end" "bytes after its end" long.cyb
printf 'SQLite format 3\000' >notone.cyb
refused "another file" "not a coyeu backup" notone.cyb

# ---- restore ----
mkdir -p full && : >full/something
"$KEYMGR" restore --data-dir "$TMP/full" --passphrase-file pass province.cyb 2>err && fail "restored into a full dir"
grep -q "is not empty" err || fail "no reason for the full directory"
[ "$(ls full)" = something ] || fail "restore touched the full directory"
"$KEYMGR" restore --data-dir "$TMP/full2" --passphrase-file pass flipped.cyb 2>/dev/null && fail "restored a changed backup"
[ ! -e full2/master.key ] && [ ! -e full2/keymgr.db ] || fail "a refused restore left files"
"$KEYMGR" restore --data-dir "$TMP/restored" --passphrase-file pass province.cyb >restore.out || fail "restore"
[ "$(stat -c %a restored/master.key)" = 600 ] && [ "$(stat -c %a restored/keymgr.db)" = 600 ] ||
	fail "restored files are not 0600"
stop_keymgrd
mv data data.original
mv restored data
start_keymgrd
"$KEYMGR" audit verify >averify.out || { cat averify.out >&2; fail "the restored audit chain does not verify"; }
listings now
# The restored store holds what the backup saw; its audit trail begins
# with every entry listed before the backup (the logins of these listings,
# and of the signature made during it, come after).
for f in tokens objects versions inventory holders access; do
	diff was/$f now/$f >diff.out || { cat diff.out >&2; fail "after restore, $f differ"; }
done
head -n "$(wc -l <was/audit)" now/audit | diff was/audit - >diff.out ||
	{ cat diff.out >&2; fail "after restore, the audit trail lacks entries"; }
sign after.sig
host pkcs11-tool --module "$COYEU_MODULE" --token-label province --read-object --type pubkey --label signer \
	--output-file pub-after.der >/dev/null 2>&1 || fail "public key after"
cmp -s pub-before.der pub-after.der || fail "the restored key's public key differs"
for s in before during after; do
	openssl dgst -sha256 -verify pub-before.der -keyform DER -signature $s.sig doc.txt >/dev/null ||
		fail "the signature made $s the backup does not verify"
done
echo "restore: tokens, objects, key versions, $(($(wc -l <now/inventory) - 1)) certificates, holders, access rules and $(grep -c . now/audit) audit entries back; chain verifies; signatures before/during/after verify with one key"
