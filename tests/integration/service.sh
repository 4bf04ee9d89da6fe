#!/bin/sh
# keymgrd as a system service, without systemd as PID 1 (what systemd
# would do is done by hand, tests/sd-fake.pl):
#   units      systemd-analyze verify is clean; security exposure <= 2.0
#   config     --check-config names file, line and key; keymgrd refuses
#              to start on what it would refuse; --version
#   notify     READY=1 on NOTIFY_SOCKET once serving, RELOADING=1 then
#              READY=1 on SIGHUP, STOPPING=1 on SIGTERM
#   activation a listening socket passed with LISTEN_FDS/LISTEN_PID is
#              served, and left in place at exit
#   reload     SIGHUP: the log level, the TLS certificate (the next
#              handshake shows the new one), a bad config changes nothing
#   drop       started as root with --user U: uid/gid U, no capabilities,
#              its files U's; a root-owned data directory is refused
#   credential the master key from $CREDENTIALS_DIRECTORY/master.key
. "$(dirname "$0")/lib.sh"
: "${TOP_BUILDDIR:?}" "${TOP_SRCDIR:?}"
SDFAKE="$TOP_SRCDIR/tests/sd-fake.pl"
cd "$TMP"

# ---- units ----
mkdir -p units man/man1 man/man8
ln -s "$TOP_SRCDIR/docs/man/keymgr.1" man/man1/keymgr.1
ln -s "$TOP_SRCDIR/docs/man/keymgrd.8" man/man8/keymgrd.8
for u in keymgrd.service keymgrd.socket; do
	# The built units name the installed keymgrd: here, the one built.
	sed "s|^\(ExecStart[A-Za-z]*=\)[^ ]*/keymgrd|\1$KEYMGRD|" "$TOP_BUILDDIR/systemd/$u" >"units/$u"
done
MANPATH="$TMP/man" systemd-analyze verify units/keymgrd.service units/keymgrd.socket >verify.log 2>&1 ||
	{ cat verify.log >&2; fail "systemd-analyze verify failed"; }
[ ! -s verify.log ] || { cat verify.log >&2; fail "systemd-analyze verify is not clean"; }
systemd-analyze security --offline=true units/keymgrd.service >security.log 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for keymgrd.service: \([0-9.]*\).*/\1/p' security.log)
[ -n "$score" ] || { cat security.log >&2; fail "no exposure score"; }
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { cat security.log >&2; fail "exposure $score > 2.0"; }
echo "units: verify clean, exposure $score"

# ---- config check ----
"$KEYMGRD" --version | grep -q '^keymgrd (coyeu) [0-9]' || fail "--version"
check() { # EXPECTED-STATUS REGEX CONFIG-LINES...
	want=$1 re=$2
	shift 2
	printf '%s\n' "$@" >check.conf
	st=0
	"$KEYMGRD" --check-config --config "$TMP/check.conf" >check.out 2>&1 || st=$?
	[ "$st" -eq "$want" ] || { cat check.out >&2; fail "--check-config exited $st, not $want: $*"; }
	grep -q -- "$re" check.out || { cat check.out >&2; fail "--check-config did not say '$re'"; }
}
check 0 "configuration OK" '[client]' 'server = tls://x:1' '[keymgrd]' 'workers = 4' 'log_level = debug'
check 1 "check.conf:3: unknown key 'frobnicate' in \[keymgrd\]" '[keymgrd]' 'workers = 4' 'frobnicate = 1'
check 1 "check.conf:2: workers: bad value '0'" '[keymgrd]' 'workers = 0'
check 1 "check.conf:2: max_connections: bad value 'many'" '[keymgrd]' 'max_connections = many'
check 1 "check.conf:3: not a key = value line" '[keymgrd]' 'workers = 4' 'just words'
check 1 "user = no-such-user-$$: no such user" '[keymgrd]' "user = no-such-user-$$"
check 1 "TLS key $TMP/none.key refused" '[keymgrd]' 'listen = tls://127.0.0.1:1' "tls_cert = $TMP/none.pem" \
	"tls_key = $TMP/none.key" "tls_client_ca = $TMP/none.pem"
printf '[keymgrd]\nworkers = 4\nfrobnicate = 1\n' >bad.conf
st=0
timeout 20 "$KEYMGRD" --foreground --config "$TMP/bad.conf" --data-dir "$TMP/d0" --socket "$TMP/s0.sock" \
	>start.log 2>&1 || st=$?
[ "$st" -eq 2 ] || fail "keymgrd started (status $st) with an unknown key"
grep -q "bad.conf:3: unknown key 'frobnicate'" start.log || { cat start.log >&2; fail "the start did not say why"; }
[ ! -e "$TMP/d0" ] || fail "a refused config still made the data directory"
echo "config: --check-config and start-up name file:line:key"

# ---- readiness, socket activation, reload ----
PORT=$((20000 + $$ % 20000))
tls_ca unit "Điện Biên coyeu CA"
tls_cert server unit 'cn = "keymgr-a.dienbien"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
	tls_www_server 'expiration_days = 30'
tls_cert server2 unit 'cn = "keymgr-b.dienbien"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
	tls_www_server 'expiration_days = 30'
tls_cert ws unit 'cn = "Máy trạm 1"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30'
cp server.pem live.pem
cp server.key live.key
chmod 600 live.key
cat >svc.conf <<CONF
[keymgrd]
data_dir = $TMP/data
listen = tls://127.0.0.1:$PORT
tls_cert = $TMP/live.pem
tls_key = $TMP/live.key
tls_client_ca = $TMP/unit.pem
log_level = info
CONF
perl "$SDFAKE" notify "$TMP/notify.sock" "$TMP/notify.log" 60 &
NPID=$!
EXTRA_CLEANUP='kill $NPID 2>/dev/null'
for _ in $(seq 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.1; done
mkdir -m 0755 "$TMP/run"
NOTIFY_SOCKET="$TMP/notify.sock" perl "$SDFAKE" listen "$COYEU_SOCKET" \
	"$KEYMGRD" --foreground --config "$TMP/svc.conf" >>keymgrd.log 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do grep -q '^READY=1' notify.log 2>/dev/null && break; sleep 0.1; done
grep -q '^READY=1' notify.log || fail "no READY=1 on NOTIFY_SOCKET"
grep -q "serving $COYEU_SOCKET and 0 TCP listener(s) passed by systemd" keymgrd.log ||
	fail "keymgrd did not take the socket passed"
"$KEYMGR" token init --label svc --so-pin 87654321 --pin 1234 >/dev/null || fail "token init over the passed socket"
server_cn() { # the CN of the certificate keymgrd's TLS listener shows
	timeout 20 gnutls-cli --x509cafile unit.pem --x509certfile ws.pem --x509keyfile ws.key -p "$PORT" \
		localhost </dev/null 2>/dev/null | sed -n "s/.*Certificate\[0\] info: *subject \`CN=\([^,']*\).*/\1/p;s/^ - subject \`CN=\([^,']*\).*/\1/p" | head -1
}
[ "$(server_cn)" = "keymgr-a.dienbien" ] || fail "the TLS listener does not show its first certificate"

# SIGHUP: a new certificate and key, debug logging.
cp server2.pem live.pem
cp server2.key live.key
sed -i 's/^log_level = info/log_level = debug/' svc.conf
n0=$(grep -c '^READY=1' notify.log)
kill -HUP "$DAEMON_PID"
for _ in $(seq 100); do [ "$(grep -c '^READY=1' notify.log)" -gt "$n0" ] && break; sleep 0.1; done
grep -q '^RELOADING=1' notify.log || fail "no RELOADING=1 on SIGHUP"
[ "$(grep -c '^READY=1' notify.log)" -gt "$n0" ] || fail "no READY=1 after the reload"
grep -q "TLS certificate, key, client CA and CRLs read again" keymgrd.log || fail "TLS material not read again"
[ "$(server_cn)" = "keymgr-b.dienbien" ] || fail "after SIGHUP the TLS listener still shows the old certificate"
d0=$(grep -c '\[debug\]' keymgrd.log || true)
"$KEYMGR" token list >/dev/null || fail "token list after SIGHUP"
[ "$(grep -c '\[debug\]' keymgrd.log || true)" -gt "$d0" ] || fail "log_level = debug did not take effect"
# A config with an error: keymgrd says where, keeps what it has, serves on.
printf 'oops\n' >>svc.conf
kill -HUP "$DAEMON_PID"
for _ in $(seq 100); do grep -q "the one in use stays" keymgrd.log && break; sleep 0.1; done
grep -q "svc.conf:8: not a key = value line" keymgrd.log || fail "the bad reload did not name the line"
[ "$(server_cn)" = "keymgr-b.dienbien" ] || fail "a refused reload changed the TLS listener"
"$KEYMGR" token list | grep -q svc || fail "keymgrd does not serve after a refused reload"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "keymgrd exited with $? after SIGTERM"
DAEMON_PID=
wait "$NPID" || true
grep -q '^STOPPING=1' notify.log || fail "no STOPPING=1 on SIGTERM"
[ -S "$COYEU_SOCKET" ] || fail "keymgrd removed the socket systemd passed (systemd owns it)"
rm -f "$COYEU_SOCKET"
echo "notify/activation/reload: READY, RELOADING+READY, STOPPING; passed socket served and kept; new TLS cert on SIGHUP"

# ---- the master key as a systemd encrypted credential ----
# systemd-creds encrypt as the admin guide says (the host key: no TPM2
# here), then what systemd does at start for LoadCredentialEncrypted=:
# decrypt into a private directory, mode 0400, named in
# $CREDENTIALS_DIRECTORY. A host key this test made is removed after.
mkdir -m 0700 creds
if [ ! -e /var/lib/systemd/credential.secret ] && [ "$(id -u)" -eq 0 ]; then
	EXTRA_CLEANUP="${EXTRA_CLEANUP:+$EXTRA_CLEANUP; }rm -f /var/lib/systemd/credential.secret"
fi
if systemd-creds encrypt --with-key=host --name=master.key data/master.key master.key.cred 2>creds.log; then
	systemd-creds decrypt --name=master.key master.key.cred creds/master.key 2>>creds.log ||
		{ cat creds.log >&2; fail "systemd-creds decrypt"; }
	! cmp -s data/master.key master.key.cred || fail "the credential holds the master key in the clear"
	cmp -s data/master.key creds/master.key || fail "the credential does not give the master key back"
	how="systemd-creds (host key)"
else
	cat creds.log
	cp data/master.key creds/master.key # no systemd-creds here: what systemd would hand over
	how="a credential file"
fi
chmod 0400 creds/master.key
mv data/master.key master.key.away
CREDENTIALS_DIRECTORY="$TMP/creds" start_keymgrd --data-dir "$TMP/data"
"$KEYMGR" token list | grep -q svc || fail "the store did not open with the credential's master key"
grep -q "master key from $TMP/creds/master.key" keymgrd.log || fail "the credential was not used"
stop_keymgrd
[ ! -e data/master.key ] || fail "a master key was written into the data directory beside the credential"
mv master.key.away data/master.key
echo "credential: master key from \$CREDENTIALS_DIRECTORY ($how)"

# ---- started as root, keymgrd becomes --user ----
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP (drop): needs root"
	exit 0
fi
U="cysvc$$"
useradd -r -M -s /usr/sbin/nologin "$U" || fail "useradd $U"
EXTRA_CLEANUP="$EXTRA_CLEANUP; userdel \"\$U\" 2>/dev/null"
UID_U=$(id -u "$U")
chmod 0755 "$TMP"
COYEU_SOCKET="$TMP/prun/keymgrd.sock"
start_keymgrd --data-dir "$TMP/pdata" --user "$U" --socket-mode 0666
st=$(cat "/proc/$DAEMON_PID/status")
echo "$st" | grep -Eq "^Uid:[[:space:]]+$UID_U[[:space:]]+$UID_U[[:space:]]+$UID_U[[:space:]]+$UID_U$" ||
	fail "keymgrd did not become $U: $(echo "$st" | grep ^Uid)"
echo "$st" | grep -Eq '^CapEff:[[:space:]]+0+$' || fail "keymgrd kept capabilities"
echo "$st" | grep -Eq '^CapPrm:[[:space:]]+0+$' || fail "keymgrd kept permitted capabilities"
grep -q "running as $U" keymgrd.log || fail "no line about the drop"
"$KEYMGR" token init --label dropped --so-pin 87654321 --pin 1234 >/dev/null || fail "token init after the drop"
for f in pdata pdata/master.key pdata/keymgr.db prun; do
	[ "$(stat -c %u "$f")" = "$UID_U" ] || fail "$f belongs to $(stat -c %U "$f"), not $U"
done
stop_keymgrd
[ ! -e "$COYEU_SOCKET" ] || fail "keymgrd (as $U) could not remove its socket"
# A data directory root made before is not taken over.
mkdir -m 0700 "$TMP/rootdata"
refused=0
timeout 20 "$KEYMGRD" --foreground --config /dev/null --data-dir "$TMP/rootdata" --socket "$TMP/prun/x.sock" \
	--user "$U" >drop.log 2>&1 || refused=$?
[ "$refused" -ne 0 ] || fail "keymgrd took a root-owned data directory as $U"
grep -q "chown -R it to that user first" drop.log || { cat drop.log >&2; fail "the refusal did not say why"; }
echo "drop: root -> $U (uid $UID_U), no capabilities, files $U's; a root-owned data dir refused"
