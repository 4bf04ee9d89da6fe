#!/bin/sh
# Two keymgrd on one PostgreSQL database (docs/ha.md), each with its own
# data directory and socket, sharing the master key: a token made through
# A is used through B; wrong PINs spread over both lock the PIN on both; a
# key revoked through A cannot sign through B a moment later; a signing
# loop through the module goes on through B when A is killed (over UNIX
# sockets, then over TLS); two rotate
# --due at once make one new version of each key; an unlock given through
# one holds on the other, a lock through one ends it on both; the audit
# trail is one chain with entries of both, verified through either.
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}"
pg_start
A_SOCKET=$COYEU_SOCKET
B_SOCKET="$TMP/b/keymgrd.sock"
B_PID=
EXTRA_CLEANUP="[ -z \"\$B_PID\" ] || { kill \$B_PID; wait \$B_PID; } 2>/dev/null; ${EXTRA_CLEANUP}"

# Both also listen on TLS (127.0.0.1, ports PA and PB), with one server
# certificate and client CA.
command -v certtool >/dev/null || fail "certtool (gnutls-bin) is needed"
PA=$((20000 + $$ % 20000))
PB=$((PA + 1))
tls_ca unit "Điện Biên coyeu CA"
tls_cert server unit 'cn = "localhost"' 'dns_name = "localhost"' tls_www_server 'expiration_days = 30'
tls_cert official unit 'cn = "Lò Văn Thắng"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30'
start_a() { # the flags of A, and TLS on PA
	start_keymgrd --store "$PG_URI" --max-pin-failures 3 --listen "tls://127.0.0.1:$PA" --tls-cert "$TMP/server.pem" \
		--tls-key "$TMP/server.key" --tls-client-ca "$TMP/unit.pem"
}

# The master key, provisioned once (32 random bytes, mode 0600) and copied
# to both; then both start at once on the empty database: each migration
# is applied once (an advisory lock), whichever comes first.
mkdir -p "$TMP/data" "$TMP/b/data" && chmod 700 "$TMP/data" "$TMP/b/data"
(umask 077 && head -c 32 /dev/urandom >"$TMP/data/master.key")
cp -p "$TMP/data/master.key" "$TMP/b/data/master.key"
"$KEYMGRD" --foreground --data-dir "$TMP/b/data" --socket "$B_SOCKET" --store "$PG_URI" --config /dev/null \
	--max-pin-failures 3 --listen "tls://127.0.0.1:$PB" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
	--tls-client-ca "$TMP/unit.pem" >"$TMP/b.log" 2>&1 &
B_PID=$!
start_a
for _ in $(seq 100); do [ -S "$B_SOCKET" ] && break; sleep 0.1; done
[ -S "$B_SOCKET" ] || { cat "$TMP/b.log" >&2; fail "keymgrd B did not start"; }
cat "$TMP/keymgrd.log" "$TMP/b.log" | sed -n 's/.*migrated schema to version \([0-9]*\)$/\1/p' | sort -n >"$TMP/migrated"
twice=$(uniq -d "$TMP/migrated")
[ -z "$twice" ] && [ "$(tail -1 "$TMP/migrated")" = 14 ] ||
	{ cat "$TMP/keymgrd.log" "$TMP/b.log" >&2; fail "migrations applied twice ($twice) or not up to 14"; }
echo "A and B started at once on an empty database: each migration applied once ($(tr '\n' ' ' <"$TMP/migrated"))"
on_b() { COYEU_SOCKET=$B_SOCKET "$@"; }

# A token and a key made through A, used through B.
"$KEYMGR" token init --label ha --so-pin 87654321 --pin 1234 >/dev/null || fail "token init on A"
"$KEYMGR" key generate --token ha --pin 1234 --type ec:P-256 --label signer >/dev/null || fail "key generate on A"
on_b "$KEYMGR" token list >"$TMP/list-b" 2>&1 || { cat "$TMP/list-b" >&2; fail "token list on B"; }
grep -q " ha " "$TMP/list-b" || grep -q "ha" "$TMP/list-b" || { cat "$TMP/list-b" >&2; fail "B does not see A's token"; }
on_b host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha 1234 >"$TMP/sign-b" 2>&1 ||
	{ cat "$TMP/sign-b" "$TMP/b.log" >&2; fail "B cannot sign with the key made through A"; }
echo "a token and key made through A sign through B"

# Three wrong PINs, two through A and one through B: locked for both.
wrong() { # SOCKET: one login with a wrong PIN; prints what C_Login said
	COYEU_SOCKET=$1 host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha 9999 2>&1 | grep -o "C_Login CKR_[A-Z_]*" | head -1
}
[ "$(wrong "$A_SOCKET")" = "C_Login CKR_PIN_INCORRECT" ] || fail "first wrong PIN on A"
[ "$(wrong "$B_SOCKET")" = "C_Login CKR_PIN_INCORRECT" ] || fail "second wrong PIN on B"
[ "$(wrong "$A_SOCKET")" = "C_Login CKR_PIN_LOCKED" ] || fail "the third wrong PIN (on A) did not lock"
for s in "$B_SOCKET" "$A_SOCKET"; do
	COYEU_SOCKET=$s host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha 1234 >"$TMP/locked" 2>&1 &&
		fail "the right PIN logged in on a locked token ($s)"
	grep -q "C_Login CKR_PIN_LOCKED" "$TMP/locked" || { cat "$TMP/locked" >&2; fail "not locked through $s"; }
done
echo "3 wrong PINs over two daemons: locked on both"
"$KEYMGR" token init --label ha2 --so-pin 87654321 --pin 1234 >/dev/null || fail "second token"
"$KEYMGR" key generate --token ha2 --pin 1234 --type ec:P-256 --label signer >/dev/null || fail "second key"
id=$("$KEYMGR" key list --token ha2 --pin 1234 | awk '$2 == "private" {print $NF; exit}')
[ -n "$id" ] || { "$KEYMGR" key list --token ha2 --pin 1234 >&2; fail "no key id"; }
on_b host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha2 1234 >/dev/null 2>&1 || fail "B signs before the revocation"
"$KEYMGR" key revoke --token ha2 --pin 1234 --id "$id" --reason keyCompromise >/dev/null || fail "revoke on A"
on_b host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha2 1234 >"$TMP/revoked" 2>&1 &&
	{ cat "$TMP/revoked" >&2; fail "a key revoked through A signed through B"; }
echo "a key revoked through A does not sign through B: $(grep -o 'C_Sign[A-Za-z]* CKR_[A-Z_]*' "$TMP/revoked" | head -1)"

# The module fails over: a signing loop (a signature every 0.1 s, logged
# in once) through "unix:A, unix:B" while A is killed (SIGKILL): the loop
# goes on through B, whose login it took from the store; at most the call
# in flight fails.
"$KEYMGR" token init --label ha3 --so-pin 87654321 --pin 1234 >/dev/null || fail "third token"
"$KEYMGR" key generate --token ha3 --pin 1234 --type ec:P-256 --label signer >/dev/null || fail "third key"
COYEU_SERVER="unix:$A_SOCKET, unix:$B_SOCKET" host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop ha3 1234 8 \
	>"$TMP/loop.out" 2>&1 &
LOOP=$!
for _ in $(seq 100); do [ "$(grep -c '^sig' "$TMP/loop.out")" -ge 10 ] && break; sleep 0.1; done
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
wait "$LOOP" || { cat "$TMP/loop.out" >&2; cat "$TMP/b.log" >&2; fail "the signing loop did not go on through B"; }
tail -1 "$TMP/loop.out"
failed=$(sed -n 's/^ok [0-9]* failed \([0-9]*\)$/\1/p' "$TMP/loop.out")
[ -n "$failed" ] && [ "$failed" -le 1 ] || { cat "$TMP/loop.out" >&2; fail "more calls failed than the one in flight"; }
grep -q "user login on token [0-9]* taken back from the store" "$TMP/b.log" ||
	{ cat "$TMP/b.log" >&2; fail "B did not take the login from the store"; }
echo "A killed during a signing loop: the loop went on through B with its login ($failed failed)"

# keymgr token unlock through B holds on A (no login: p11probe sign with
# PIN "-"), and keymgr token lock through A ends it on B.
echo 1234 | on_b "$KEYMGR" token unlock --token ha3 --timeout 60 --pin-fd 0 >/dev/null || fail "unlock on B"
COYEU_SOCKET=$B_SOCKET host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha3 - >"$TMP/unl-b" 2>&1 ||
	{ cat "$TMP/unl-b" >&2; fail "B does not honour its own unlock"; }
echo "B's unlock honoured on B"
# (A was killed above: the unlock is checked on A after it is back.)

# One audit chain, entries of both daemons, verified through each.
on_b "$KEYMGR" audit verify >"$TMP/vb" 2>&1 || { cat "$TMP/vb" >&2; fail "audit verify on B"; }
grep -q "audit head" "$TMP/b.log" || fail "B wrote no audit entry"
echo "one audit chain with entries of A and B: $(head -1 "$TMP/vb")"
# A again, on the same store: the chain B went on with verifies there too.
start_a
"$KEYMGR" audit verify >"$TMP/va" 2>&1 || { cat "$TMP/va" >&2; fail "audit verify on A"; }
host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha3 - >"$TMP/unl-a" 2>&1 ||
	{ cat "$TMP/unl-a" >&2; fail "the unlock given through B does not hold on A"; }
"$KEYMGR" token lock --token ha3 >/dev/null || fail "lock on A"
COYEU_SOCKET=$B_SOCKET host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign ha3 - >"$TMP/unl-b2" 2>&1 &&
	{ cat "$TMP/unl-b2" >&2; fail "B still honours an unlock ended through A"; }
echo "keymgr token unlock through B holds on A; keymgr token lock through A ends it on B"

# Two rotate --due at once, one through A and one through B: each key due
# gets one new version, not two.
T="--token rot --pin 1234"
"$KEYMGR" token init --label rot --so-pin 87654321 --pin 1234 >/dev/null || fail "token rot"
"$KEYMGR" key generate $T --type ec:P-256 --label ca >/dev/null 2>&1 || fail "CA key"
"$KEYMGR" ca init $T --label ca --subject "CN=Ban Cơ yếu tỉnh Điện Biên,C=VN" >/dev/null || fail "ca init"
for i in 1 2 3 4; do
	"$KEYMGR" key generate $T --type rsa:2048 --label "due-$i" >/dev/null 2>&1 || fail "key due-$i"
	"$KEYMGR" key csr $T "due-$i" --subject "CN=Cán bộ $i,O=Sở Y tế tỉnh Điện Biên,C=VN" --out "$TMP/d.csr" &&
		"$KEYMGR" cert issue $T --ca ca --days 5 --out "$TMP/d.pem" "$TMP/d.csr" >/dev/null &&
		"$KEYMGR" cert import $T "$TMP/d.pem" >/dev/null || fail "due-$i certificate"
done
mkdir "$TMP/due-a" "$TMP/due-b"
"$KEYMGR" key rotate $T --due --within 30d --out "$TMP/due-a" >"$TMP/rot-a" 2>&1 &
RA=$!
on_b "$KEYMGR" key rotate $T --due --within 30d --out "$TMP/due-b" >"$TMP/rot-b" 2>&1 &
RB=$!
wait "$RA" || true
wait "$RB" || true
versions=$("$KEYMGR" key list $T | awk '$2 == "private" && $5 ~ /^due-/' | wc -l)
[ "$versions" -eq 8 ] || { cat "$TMP/rot-a" "$TMP/rot-b" >&2; "$KEYMGR" key list $T >&2; fail "$versions key versions, not 8"; }
grep -hq "0 failed" "$TMP/rot-a" && grep -hq "0 failed" "$TMP/rot-b" ||
	{ cat "$TMP/rot-a" "$TMP/rot-b" >&2; fail "a rotate --due failed"; }
echo "rotate --due through A and B at once: 4 keys, one new version each ($(grep -c "^rotated '" "$TMP/rot-a") made by A, $(grep -c "^rotated '" "$TMP/rot-b") by B)"
# The same failover over TLS: an official's workstation whose coyeu.conf
# names both servers (tls://localhost:PA, tls://localhost:PB) signs in a
# loop while A is killed; the loop goes on through B, logged in.
"$KEYMGR" holder add --id HA-T --name "Lò Văn Thắng" --agency "Sở Nội vụ" --key ec:P-256 \
	--pin-out "$TMP/pin-t" >/dev/null || fail "holder add"
"$KEYMGR" access grant --cert 'CN=Lò Văn Thắng,O=Sở Nội vụ' --holder HA-T >/dev/null || fail "access grant"
tls_client_conf official "tls://localhost:$PA, tls://localhost:$PB"
remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label HA-T --login \
	--pin "$(tail -1 "$TMP/pin-t" | awk -F, '{print $NF}')" --change-pin --new-pin 24681357 \
	>"$TMP/chpin.out" 2>&1 || { cat "$TMP/chpin.out" >&2; fail "PIN change over TLS"; }
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop HA-T 24681357 8 >"$TMP/tloop.out" 2>&1 &
LOOP=$!
for _ in $(seq 100); do [ "$(grep -c '^sig' "$TMP/tloop.out")" -ge 10 ] && break; sleep 0.1; done
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
wait "$LOOP" || { cat "$TMP/tloop.out" "$TMP/b.log" >&2; fail "the signing loop over TLS did not go on through B"; }
failed=$(sed -n 's/^ok [0-9]* failed \([0-9]*\)$/\1/p' "$TMP/tloop.out")
[ -n "$failed" ] && [ "$failed" -le 1 ] || { cat "$TMP/tloop.out" >&2; fail "more TLS calls failed than the one in flight"; }
grep -q "cert:CN=Lò Văn Thắng.*user login on token [0-9]* taken back from the store" "$TMP/b.log" ||
	{ cat "$TMP/b.log" >&2; fail "B did not take the TLS application's login from the store"; }
echo "over TLS: A killed during a signing loop, the loop went on through B ($(tail -1 "$TMP/tloop.out"))"

# A workstation certificate of coyeu's CA revoked through A is refused by
# B's TLS listener too: the CRL A signs is kept in the store and B writes
# it to its own CRL directory (at start, and within 2 s while running).
on_b "$KEYMGR" token init --label unit-ca --so-pin 87654321 --pin 1234 >/dev/null || fail "token unit-ca"
on_b "$KEYMGR" key generate --token unit-ca --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "CA key"
on_b "$KEYMGR" ca init --token unit-ca --pin 1234 --label ca --subject "CN=Ban Cơ yếu tỉnh Điện Biên,C=VN" \
	--out "$TMP/coyeu-ca.pem" >/dev/null || fail "ca init"
cat "$TMP/unit.pem" "$TMP/coyeu-ca.pem" >"$TMP/clients.pem"
kill -TERM "$B_PID"; wait "$B_PID" || fail "keymgrd B did not stop cleanly"
"$KEYMGRD" --foreground --data-dir "$TMP/b/data" --socket "$B_SOCKET" --store "$PG_URI" --config /dev/null \
	--listen "tls://127.0.0.1:$PB" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
	--tls-client-ca "$TMP/clients.pem" --tls-crl "$TMP/b/data/crl/ca.crl" >>"$TMP/b.log" 2>&1 &
B_PID=$!
start_keymgrd --store "$PG_URI" --listen "tls://127.0.0.1:$PA" --tls-cert "$TMP/server.pem" \
	--tls-key "$TMP/server.key" --tls-client-ca "$TMP/clients.pem" --tls-crl "$TMP/data/crl/ca.crl"
for _ in $(seq 100); do [ -S "$B_SOCKET" ] && break; sleep 0.1; done
grep -q "CRL [0-9]* of 'ca', signed by another keymgrd of the store, written to" "$TMP/keymgrd.log" ||
	fail "A did not write the CRL B signed to its own CRL directory at start"
tls_key "$TMP/ws.key"
printf 'cn = "Lò Thị Hoa"\norganization = "Sở Y tế"\n' >"$TMP/ws-req.tmpl"
certtool --generate-request --load-privkey "$TMP/ws.key" --template "$TMP/ws-req.tmpl" --outfile "$TMP/ws.csr" \
	2>/dev/null || fail "request"
"$KEYMGR" workstation enroll --csr "$TMP/ws.csr" --token unit-ca --pin 1234 --ca ca --out "$TMP/ws.pem" \
	--holder HA-T >"$TMP/enroll.out" || { cat "$TMP/enroll.out" >&2; fail "enroll through A"; }
tls_client_conf ws "tls://localhost:$PB"
remote ws host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >"$TMP/ws.out" 2>&1
grep -q "^slots [1-9]" "$TMP/ws.out" || { cat "$TMP/ws.out" "$TMP/b.log" >&2; fail "B does not take the workstation"; }
serial=$(sed -n 's/^issued a certificate for [0-9]* days, serial \([0-9A-F]*\): .*/\1/p' "$TMP/enroll.out")
published() { grep -c "CRL [0-9]* of 'ca', signed by another keymgrd of the store, written to" "$TMP/b.log"; }
before=$(published)
"$KEYMGR" cert revoke --token unit-ca --pin 1234 --ca ca --serial "$serial" >/dev/null || fail "revoke through A"
for _ in $(seq 100); do [ "$(published)" -gt "$before" ] && break; sleep 0.1; done
[ "$(published)" -gt "$before" ] || { cat "$TMP/b.log" >&2; fail "B did not write the new CRL within 10 s"; }
remote ws host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >"$TMP/ws2.out" 2>&1 || true
grep -q "^slots [1-9]" "$TMP/ws2.out" && { cat "$TMP/b.log" >&2; fail "B took a workstation revoked through A"; }
grep -q "refused: client certificate.*revoked" "$TMP/b.log" || { cat "$TMP/b.log" >&2; fail "B did not say why"; }
echo "a workstation revoked through A is refused by B's TLS listener (B wrote the CRL A signed)"
kill -TERM "$B_PID"; wait "$B_PID" || fail "keymgrd B did not stop cleanly"; B_PID=
stop_keymgrd
