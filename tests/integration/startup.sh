#!/bin/sh
# keymgrd refuses, with a line that says why, to start on what it should
# not trust (docs/security.md): a store without its master key, a master
# key without its store (an unmounted data directory), a master key that is
# a link or readable by others, a data, CRL or outbox directory (or one
# above it) another user can write to or owns. And a CRL written where a
# link was planted replaces the link, never what it points to.
. "$(dirname "$0")/lib.sh"
D="$TMP/data"
refused() { # WHAT REGEX [ARGS...]: keymgrd must exit at start, saying REGEX
	what=$1 re=$2
	shift 2
	: >"$TMP/start.log"
	if timeout 20 "$KEYMGRD" --foreground --data-dir "$D" --socket "$COYEU_SOCKET" --config /dev/null "$@" \
		>"$TMP/start.log" 2>&1; then
		fail "keymgrd started with $what"
	fi
	grep -q "$re" "$TMP/start.log" || { cat "$TMP/start.log" >&2; fail "keymgrd did not say why ($what)"; }
	echo "refused: $what: $(grep -o "refused: .*" "$TMP/start.log" | head -1 | cut -c1-110)"
}

start_keymgrd
"$KEYMGR" token init --label t1 --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
stop_keymgrd

mv "$D/master.key" "$TMP/master.key.saved"
refused "a store without its master key" "restore master.key"
[ ! -e "$D/master.key" ] || fail "a new master key was made for an existing store"
mv "$TMP/master.key.saved" "$D/master.key"

mkdir "$TMP/db.saved"
mv "$D"/keymgr.db* "$TMP/db.saved/"
refused "a master key without its store" "is the file system of the data directory"
mv "$TMP/db.saved"/* "$D/"

mv "$D/master.key" "$TMP/real.key"
ln -s "$TMP/real.key" "$D/master.key"
refused "a master key that is a symbolic link" "master.key is a symbolic link"
rm "$D/master.key"
mv "$TMP/real.key" "$D/master.key"
chmod 0640 "$D/master.key"
refused "a master key others can read" "readable by keymgrd alone"
chmod 0600 "$D/master.key"

chmod 0770 "$D"
refused "a data directory its group can write" "can be written by its group"
chmod 0700 "$D"
chmod 0777 "$TMP"
refused "a parent of the data directory anyone can write" "can be written by every user"
chmod 0700 "$TMP"
mkdir -p "$TMP/crl"
chown 65534 "$TMP/crl"
refused "a CRL directory of another user" "belongs to uid 65534" --crl-dir "$TMP/crl"
chown 0 "$TMP/crl"

# All fixed: it starts, and its tokens are there.
start_keymgrd --crl-dir "$TMP/crl"
"$KEYMGR" token list | grep -q t1 || fail "the token is not there after the refusals"
# A link planted as the CRL's temporary file is replaced, not followed.
"$KEYMGR" key generate --token t1 --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "CA key"
"$KEYMGR" ca init --token t1 --pin 1234 --label ca --subject "CN=Test CA,O=coyeu" --out "$TMP/ca.pem" >/dev/null ||
	fail "ca init"
for id in 0e 0f; do
	"$KEYMGR" key generate --token t1 --pin 1234 --type ec:P-256 --label "k$id" --id $id >/dev/null || fail "key $id"
done
# A revocation has keymgrd write the CA's CRL into the CRL directory.
"$KEYMGR" key revoke --token t1 --pin 1234 --id 0e --reason keyCompromise >/dev/null || fail "revoke 0e"
ls "$TMP"/crl/*.crl >/dev/null 2>&1 || fail "no CRL in the CRL directory after a revocation"
echo "precious" >"$TMP/precious"
for f in "$TMP"/crl/*.crl; do ln -sf "$TMP/precious" "$f.tmp"; done
"$KEYMGR" key revoke --token t1 --pin 1234 --id 0f --reason keyCompromise >/dev/null || fail "revoke 0f"
[ "$(cat "$TMP/precious")" = precious ] || fail "writing the CRL followed a planted link"
for f in "$TMP"/crl/*.crl; do
	[ -f "$f" ] && [ ! -L "$f" ] && [ ! -e "$f.tmp" ] || fail "$f is not a CRL file of its own"
done
stop_keymgrd
echo PASS
