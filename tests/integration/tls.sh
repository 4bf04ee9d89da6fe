#!/bin/sh
# Remote tokens over TLS (docs/remote.md): keymgrd listens on 127.0.0.1
# with a server certificate and a client CA made here with certtool; an
# official's workstation uses its holder token through the module over
# TLS (pkcs11-tool signs, p11probe signs), the principal being its client
# certificate's subject (a comma in the agency's name included); an
# administrator's account is a certificate too. Refused, with a clear
# line in keymgrd's log: no client certificate, one from another CA, an
# expired one, a revoked one (the CRL keymgrd is given); a certificate
# with no access rule sees no slot.
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}"
command -v certtool >/dev/null && command -v socat >/dev/null || fail "certtool (gnutls-bin) and socat are needed"
cd "$TMP"
PORT=$((20000 + $$ % 20000))
SERVER="tls://localhost:$PORT"

# ---- the certificates (tls_* in lib.sh) ----
tls_ca unit "Điện Biên coyeu CA"
tls_ca other "Somebody else's CA"
tls_cert server unit 'cn = "localhost"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' tls_www_server \
	'expiration_days = 30'
tls_cert official unit 'cn = "Lò Văn Thắng"' 'organization = "Sở Văn hóa, Thể thao và Du lịch"' \
	'email = "thang@sovhttdl.dienbien.gov.vn"' tls_www_client 'expiration_days = 30'
tls_cert admin unit 'cn = "Quản trị viên"' 'organization = "Sở Thông tin và Truyền thông"' tls_www_client \
	'expiration_days = 30'
tls_cert stranger unit 'cn = "Người lạ"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30'
tls_cert lost unit 'cn = "Máy mất"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30' 'serial = 4242'
tls_cert foreign other 'cn = "Lò Văn Thắng"' 'organization = "Sở Văn hóa, Thể thao và Du lịch"' tls_www_client \
	'expiration_days = 30'
tls_cert expired unit 'cn = "Hết hạn"' 'organization = "Sở Nội vụ"' tls_www_client \
	'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"'
printf 'crl_next_update = 30\ncrl_number = 1\n' >crl.tmpl
certtool --generate-crl --load-ca-privkey unit.key --load-ca-certificate unit.pem --load-certificate lost.pem \
	--template crl.tmpl --outfile unit.crl 2>/dev/null || fail "CRL"

start_keymgrd --listen "tls://127.0.0.1:$PORT" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
	--tls-client-ca "$TMP/unit.pem" --tls-crl "$TMP/unit.crl"
grep -q "listening on tls://127.0.0.1:$PORT" keymgrd.log || fail "keymgrd does not say it listens on TLS"

# The unit sets the official up over the local socket (root).
"$KEYMGR" holder add --id DB-T --name "Lò Văn Thắng" --agency "Sở Văn hóa, Thể thao và Du lịch" \
	--key ec:P-256 --pin-out "$TMP/pin-t" >/dev/null || fail "holder add"
pin=$(tail -1 "$TMP/pin-t" | awk -F, '{print $NF}')
DN='CN=Lò Văn Thắng,O=Sở Văn hóa\, Thể thao và Du lịch'
"$KEYMGR" access grant --cert "$DN" --holder DB-T || fail "access grant --cert"
"$KEYMGR" access grant --cert 'CN=Lò Văn Thắng,O=Sở Văn hóa, Thể thao' --holder DB-T 2>err &&
	fail "a DN with an unescaped comma in a value was taken"
grep -q 'as \\,' err || { cat err >&2; fail "the error does not say how to write a comma"; }
"$KEYMGR" access list | grep -qF "cert $DN" || { "$KEYMGR" access list >&2; fail "the rule is not listed"; }

# What each workstation's coyeu.conf holds (the first server of the list
# refuses connections: the next one is used).
for n in official admin stranger lost foreign expired; do tls_client_conf $n "tls://127.0.0.1:1, $SERVER"; done

# The official: first PIN change, then signatures, all over TLS.
remote official host pkcs11-tool --module "$COYEU_MODULE" -L >slots.out 2>&1 || { cat slots.out >&2; fail "pkcs11-tool -L over TLS"; }
grep -q "DB-T" slots.out || { cat slots.out >&2; fail "the official does not see their token over TLS"; }
remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login --pin "$pin" \
	--change-pin --new-pin 24681357 >chpin.out 2>&1 || { cat chpin.out >&2; fail "PIN change over TLS"; }
echo "data to sign" >tosign
remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login --pin 24681357 --sign \
	--mechanism ECDSA-SHA256 --input-file tosign --output-file sig >sign.out 2>&1 ||
	{ cat sign.out >&2; fail "pkcs11-tool --sign over TLS"; }
[ -s sig ] || fail "no signature written"
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >probe.out 2>&1 ||
	{ cat probe.out >&2; fail "p11probe sign over TLS"; }
grep -qx "C_Sign CKR_OK" probe.out || { cat probe.out >&2; fail "p11probe did not sign over TLS"; }
grep -q "cert:CN=Lò Văn Thắng" keymgrd.log || fail "the audit/log does not name the certificate principal"
echo "official signed over TLS"

# A certificate of the same CA with no rule: no slot at all.
remote stranger host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >stranger.out 2>&1 || true
grep -qx "slots 0" stranger.out || { cat stranger.out >&2; fail "a certificate with no rule sees slots"; }

# The administrator's account is a certificate, with its passphrase.
echo "admin-passphrase-1" | "$KEYMGR" account add tadmin --role admin --cert 'CN=Quản trị viên,O=Sở Thông tin và Truyền thông' ||
	fail "account add --cert"
echo "admin-passphrase-1" >admin.pass
remote admin "$KEYMGR" --passphrase-file admin.pass holder list >hl.out 2>&1 ||
	{ cat hl.out >&2; fail "the administrator's certificate account cannot list holders over TLS"; }
grep -q "DB-T" hl.out || { cat hl.out >&2; fail "holder list over TLS"; }
remote stranger "$KEYMGR" --passphrase-file admin.pass holder list >/dev/null 2>&1 &&
	fail "a certificate without an account listed holders"

# Refused at the handshake, each with a line in keymgrd's log.
refused() { # NAME WHY-PATTERN
	before=$(wc -l <keymgrd.log)
	remote "$1" host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >"$1.out" 2>&1 || true
	grep -q "^slots [1-9]" "$1.out" && fail "the $1 certificate was let in"
	sleep 0.2
	tail -n +"$((before + 1))" keymgrd.log | grep -q "$2" ||
		{ tail -n +"$((before + 1))" keymgrd.log >&2; fail "keymgrd did not say why the $1 certificate was refused"; }
	echo "$1 certificate refused"
}
refused foreign "refused: client certificate.*signer"
refused expired "refused: client certificate.*expired"
refused lost "refused: client certificate.*revoked"
# No certificate at all: a TLS client that offers none.
before=$(wc -l <keymgrd.log)
timeout 20 gnutls-cli --x509cafile "$TMP/unit.pem" --port "$PORT" localhost </dev/null >nocert.out 2>&1 || true
sleep 0.2
tail -n +"$((before + 1))" keymgrd.log | grep -q "refused" ||
	{ tail -n +"$((before + 1))" keymgrd.log >&2; fail "a client without a certificate was not refused"; }
echo "client without a certificate refused"

# Garbage before a handshake does not stop the daemon.
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 socat - "TCP:127.0.0.1:$PORT" >/dev/null 2>&1 || true
head -c 4096 /dev/urandom | timeout 5 socat - "TCP:127.0.0.1:$PORT" >/dev/null 2>&1 || true
grep -q "TLS connection from 127.0.0.1:[0-9]*: handshake failed" keymgrd.log ||
	fail "keymgrd did not log the garbage as a failed handshake"
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >probe2.out 2>&1 ||
	{ cat probe2.out >&2; fail "keymgrd does not serve after garbage"; }
echo "garbage before the handshake: refused, keymgrd still serves"
stop_keymgrd
