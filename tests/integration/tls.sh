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

# A server key others can read is refused, as the master key would be.
cp server.key loose.key
chmod 644 loose.key
timeout 20 "$KEYMGRD" --foreground --data-dir "$TMP/data-loose" --socket "$TMP/loose.sock" --config /dev/null \
	--listen "tls://127.0.0.1:$PORT" --tls-cert "$TMP/server.pem" --tls-key "$TMP/loose.key" \
	--tls-client-ca "$TMP/unit.pem" >loose.log 2>&1 && fail "keymgrd started with a TLS key others can read"
grep -q "TLS key .*loose.key refused: readable" loose.log || { cat loose.log >&2; fail "no reason given for the TLS key"; }

# coyeu's own CA (a key on a unit token) issues workstation certificates
# too: keymgrd trusts both CAs for its clients.
start_keymgrd
"$KEYMGR" token init --label unit-ca --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" key generate --token unit-ca --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "CA key"
"$KEYMGR" ca init --token unit-ca --pin 1234 --label ca --subject "CN=Ban Cơ yếu tỉnh Điện Biên,C=VN" \
	--out coyeu-ca.pem >/dev/null || fail "ca init"
stop_keymgrd
cat unit.pem coyeu-ca.pem >clients.pem
start_keymgrd --listen "tls://127.0.0.1:$PORT" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
	--tls-client-ca "$TMP/clients.pem" --tls-crl "$TMP/unit.crl, $TMP/data/crl/ca.crl"
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

# The other applications of a workstation, over the same TLS link.
# OpenSSL (the pkcs11 engine): a certificate signed by the token's key.
engine_conf "$TMP/openssl.cnf"
url="pkcs11:token=DB-T;type=private;pin-value=24681357"
OPENSSL_CONF="$TMP/openssl.cnf" remote official host timeout 120 openssl req -new -x509 -days 30 -engine pkcs11 \
	-keyform engine -key "$url" -subj "/CN=Lo Van Thang" -out ossl.crt >ossl.log 2>&1 ||
	{ cat ossl.log >&2; fail "openssl req -x509 over TLS"; }
OPENSSL_CONF=/dev/null openssl verify -CAfile ossl.crt ossl.crt >/dev/null || fail "the OpenSSL certificate does not verify"
echo "openssl over TLS: a certificate signed on the token, verified"
# NSS: certutil sees the token and its key.
mkdir nssdb
echo 24681357 >nss.pin
certutil -N -d nssdb --empty-password || fail "certutil -N"
remote official host modutil -dbdir nssdb -add coyeu -libfile "$COYEU_MODULE" -force >/dev/null || fail "modutil -add"
remote official host certutil -U -d nssdb >nss.tokens 2>&1 || { cat nss.tokens >&2; fail "certutil -U over TLS"; }
grep -q "token: DB-T" nss.tokens || { cat nss.tokens >&2; fail "certutil -U does not show the token over TLS"; }
remote official host certutil -K -h DB-T -d nssdb -f nss.pin >nss.keys 2>&1 || { cat nss.keys >&2; fail "certutil -K over TLS"; }
grep -q "ec " nss.keys || { cat nss.keys >&2; fail "certutil -K does not list the key over TLS"; }
echo "NSS certutil over TLS: the token and its key"
# GnuTLS p11tool (not under the sanitizers: see gnutls.sh).
if [ -z "${COYEU_SAN_PRELOAD:-}" ]; then
	remote official env GNUTLS_PIN=24681357 timeout 120 p11tool --batch --provider "$COYEU_MODULE" --list-tokens \
		>p11tool.out 2>&1 || { cat p11tool.out >&2; fail "p11tool --list-tokens over TLS"; }
	grep -q "Label: DB-T" p11tool.out || { cat p11tool.out >&2; fail "p11tool does not list the token over TLS"; }
	remote official env GNUTLS_PIN=24681357 timeout 120 p11tool --batch --provider "$COYEU_MODULE" --login \
		--test-sign "pkcs11:token=DB-T;object=signing;type=private" >p11sign.out 2>&1 ||
		{ cat p11sign.out >&2; fail "p11tool --test-sign over TLS"; }
	echo "GnuTLS p11tool over TLS: the token listed, a test signature verified"
fi

# A workstation enrolled through coyeu's CA: its key and request made on
# the workstation (certtool), the certificate issued and granted in one step.
tls_key ws.key
printf 'cn = "Lò Thị Hoa"\norganization = "Sở Y tế"\n' >ws-req.tmpl
certtool --generate-request --load-privkey ws.key --template ws-req.tmpl --outfile ws.csr 2>/dev/null || fail "request"
"$KEYMGR" workstation enroll --csr ws.csr --token unit-ca --pin 1234 --ca ca --out ws.pem --holder DB-T >enroll.out ||
	{ cat enroll.out >&2; fail "workstation enroll"; }
grep -q "may use holder DB-T" enroll.out || { cat enroll.out >&2; fail "enroll did not grant the holder"; }
certtool --certificate-info --infile ws.pem 2>/dev/null | grep -q "TLS WWW Client" || fail "no clientAuth in the certificate"
tls_client_conf ws "$SERVER"
remote ws host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >ws.out 2>&1 ||
	{ cat ws.out >&2; fail "the enrolled workstation cannot sign"; }
echo "a workstation enrolled through coyeu's CA signs"

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
# A laptop lost now: its certificate revoked in a new CRL keymgrd is given
# (the same file) is refused from the next handshake on, no restart.
printf 'crl_next_update = 30\ncrl_number = 2\n' >crl.tmpl
cat lost.pem stranger.pem >revoked.pem
certtool --generate-crl --load-ca-privkey unit.key --load-ca-certificate unit.pem --load-certificate revoked.pem \
	--template crl.tmpl --outfile unit.crl.new 2>/dev/null || fail "CRL 2"
mv unit.crl.new unit.crl
refused stranger "refused: client certificate.*revoked"
grep -q "unit.crl read again" keymgrd.log || fail "keymgrd did not say it read the new CRL"
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
# ... and after it: a client with a good certificate sends random bytes
# as its requests (the frame length is checked before anything else).
for _ in 1 2 3; do
	head -c 2048 /dev/urandom | timeout 10 gnutls-cli --x509cafile "$TMP/unit.pem" --x509certfile official.pem \
		--x509keyfile official.key --port "$PORT" localhost >/dev/null 2>&1 || true
done
grep -q "cert:CN=Lò Văn Thắng.*frame refused\|cert:CN=Lò Văn Thắng.*before hello\|cert:CN=Lò Văn Thắng.*malformed" \
	keymgrd.log || fail "keymgrd did not log the garbage after the handshake"
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >probe2.out 2>&1 ||
	{ cat probe2.out >&2; fail "keymgrd does not serve after garbage"; }
echo "garbage before and after the handshake: refused, keymgrd still serves"
# Connections that never begin their handshake hold no one up: at most 16
# from one address, 64 altogether, 10 s each; the UNIX socket stays open.
: "${HOSTILE:?HOSTILE not set}"
"$HOSTILE" tcp 40 25 "$PORT" >tcp.out 2>&1 &
HPID=$!
for _ in $(seq 100); do grep -q "^ready" tcp.out && break; sleep 0.1; done
grep "^ready" tcp.out
sleep 0.5
grep -q "too many handshakes from that address" keymgrd.log || fail "keymgrd took 40 handshakes from one address"
"$HOSTILE" victim 3 >/dev/null || fail "the UNIX socket did not serve during the handshake flood"
sleep 10.5 # the stalled handshakes time out
grep -q "TLS handshake not finished in time" keymgrd.log || fail "stalled handshakes did not time out"
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >probe3.out 2>&1 ||
	{ cat probe3.out >&2; fail "the official cannot sign after the handshake flood"; }
kill "$HPID" 2>/dev/null
wait "$HPID" 2>/dev/null || true
echo "40 stalled handshakes from one address: 16 taken, timed out after 10 s, the rest refused; the socket served"

# Many remote clients at once: three workstations (three principals) open
# 100 TLS connections each, their handshakes side by side; once all of a
# workstation's are open, each connection makes a call. keymgrd holds the
# 300 together and every call is answered; the UNIX socket still serves.
crowd() { # NAME N SECS: NAME's hostile crowd, output in crowd-NAME.out
	remote "$1" env COYEU_SOCKET="tls://127.0.0.1:$PORT" "$HOSTILE" crowd "$2" "$3" >"crowd-$1.out" 2>&1
}
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }
crowd official 100 60 & C1=$!
crowd ws 100 60 & C2=$!
crowd admin 100 60 & C3=$!
for _ in $(seq 600); do
	[ "$(grep -l "^served" crowd-official.out crowd-ws.out crowd-admin.out 2>/dev/null | wc -l)" = 3 ] && break
	sleep 0.1
done
most=$(established)
for n in official ws admin; do
	grep -qx "served 100 of 100" "crowd-$n.out" || { cat "crowd-$n.out" >&2; fail "the $n crowd was not served"; }
done
[ "$most" -ge 300 ] || fail "only $most TLS connections at once (300 wanted)"
"$HOSTILE" victim 3 >/dev/null || fail "the UNIX socket did not serve beside 300 TLS connections"
# The cap of one principal (128 connections): 40 more of the official's
# get 28, the others are refused with the reason in the log.
crowd official 40 1 || true
grep -q "^ready (28 of 40" crowd-official.out || { cat crowd-official.out >&2; fail "the cap per principal did not hold"; }
grep -q "as many connections as a principal may" keymgrd.log || fail "no reason logged for the capped connections"
kill "$C1" "$C2" "$C3" 2>/dev/null
wait "$C1" "$C2" "$C3" 2>/dev/null || true
echo "300 TLS connections of three workstations at once: all served ($most established); the 129th of one refused"

# A laptop lost, its certificate from coyeu's own CA: keymgr cert revoke
# (by serial as enroll printed it, or by subject) records it, keymgrd signs
# the CA's next CRL into its CRL directory, which tls_crl names: refused
# from the next handshake on. (The unit's administrator does it over TLS:
# with an administrator's account, root is no longer one.)
admin() { remote admin "$KEYMGR" --passphrase-file admin.pass "$@"; }
serial=$(sed -n 's/^issued a certificate for [0-9]* days, serial \([0-9A-F]*\): .*/\1/p' enroll.out)
[ -n "$serial" ] || { cat enroll.out >&2; fail "workstation enroll printed no serial"; }
admin audit list | grep "cert-issue" | grep -q "serial $serial to CN=Lò Thị Hoa" ||
	{ admin audit list >&2; fail "the audit trail does not name what cert issue issued"; }
printf 'cn = "Quàng Văn Nam"\norganization = "Sở Y tế"\n' >ws2-req.tmpl
tls_key ws2.key
certtool --generate-request --load-privkey ws2.key --template ws2-req.tmpl --outfile ws2.csr 2>/dev/null || fail "request 2"
admin workstation enroll --csr ws2.csr --token unit-ca --pin 1234 --ca ca --out ws2.pem --holder DB-T >/dev/null ||
	fail "workstation enroll 2"
tls_client_conf ws2 "$SERVER"
remote ws2 host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >ws2.out 2>&1
grep -q "^slots [1-9]" ws2.out || { cat ws2.out >&2; fail "the second workstation sees no slot"; }
admin cert revoke --token unit-ca --pin 1234 --ca ca --serial "$(echo "$serial" | sed 's/../&:/g; s/:$//')" \
	--reason keyCompromise >revoke.out || { cat revoke.out >&2; fail "cert revoke --serial"; }
grep -q "revoked 1 certificate(s) issued by 'ca', reason keyCompromise; its CRL is written again" revoke.out ||
	{ cat revoke.out >&2; fail "cert revoke did not say the CRL was written"; }
refused ws "refused: client certificate.*revoked"
remote ws2 host timeout 60 "$P11PROBE" "$COYEU_MODULE" slots >ws2.out 2>&1
grep -q "^slots [1-9]" ws2.out || { cat ws2.out >&2; fail "revoking one workstation locked out another"; }
admin cert revoke --token unit-ca --pin 1234 --ca ca --serial "$serial" 2>again.err &&
	fail "a certificate was revoked twice"
grep -q "issued no valid certificate with serial" again.err || { cat again.err >&2; fail "no reason for the second revoke"; }
admin cert revoke --token unit-ca --pin 1234 --ca ca --subject 'CN=Quàng Văn Nam,O=Sở Y tế' >/dev/null ||
	fail "cert revoke --subject"
refused ws2 "refused: client certificate.*revoked"
admin audit list | grep "cert-revoke" | grep -q "serial $serial" ||
	{ admin audit list >&2; fail "the revocation is not in the audit trail"; }
certtool --crl-info --infile "$TMP/data/crl/ca.crl" 2>/dev/null | tr -d ':' | grep -qi "serial.*$serial" ||
	fail "the CA's CRL does not list the serial"
echo "workstation certificates of coyeu's CA revoked by serial and by subject: refused at the next handshake"
stop_keymgrd
