# lib.sh - shared by the shell integration tests: start a keymgrd of our
# own on a socket in a temporary directory, and stop it by PID.
# Expects KEYMGRD, KEYMGR and COYEU_MODULE in the environment (make check
# sets them).

set -eu

: "${KEYMGRD:?KEYMGRD not set}" "${KEYMGR:?KEYMGR not set}" "${COYEU_MODULE:?COYEU_MODULE not set}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/coyeu-it.XXXXXX")
COYEU_SOCKET="$TMP/run/keymgrd.sock"
export COYEU_SOCKET
DAEMON_PID=

# A test that makes things outside $TMP (local users) says how to remove
# them here; it runs first at exit.
EXTRA_CLEANUP=

cleanup() {
	[ -z "$EXTRA_CLEANUP" ] || eval "$EXTRA_CLEANUP" || true
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# Runs a program that loads the module (pkcs11-tool...). In a sanitizer
# build the module needs the ASan/UBSan runtimes, which the program lacks:
# preload them; leaks of the host program itself are not ours to report.
host() {
	if [ -n "${COYEU_SAN_PRELOAD:-}" ]; then
		LD_PRELOAD="$COYEU_SAN_PRELOAD" ASAN_OPTIONS="detect_leaks=0" "$@"
	else
		"$@"
	fi
}

# Skips (exit 77) a test whose client cannot run with the sanitizer
# runtimes preloaded; the reason is printed.
skip_under_sanitizers() {
	if [ -n "${COYEU_SAN_PRELOAD:-}" ]; then
		echo "SKIP: $*"
		exit 77
	fi
}

# An openssl.cnf in $1 that loads the pkcs11 engine of
# libengine-pkcs11-openssl with coyeu-pkcs11.so.
engine_conf() {
	engine=$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)
	[ -n "$engine" ] || fail "libengine-pkcs11-openssl is not installed"
	cat >"$1" <<CONF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $COYEU_MODULE
init = 0
[req]
distinguished_name = dn
[dn]
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CONF
}

# A self-signed certificate for a token key, made by OpenSSL's pkcs11
# engine: make_cert TOKEN KEY-LABEL SUBJECT OUT.pem [DAYS] (PIN 1234; 30
# days by default).
make_cert() {
	engine_conf "$TMP/engine.cnf"
	OPENSSL_CONF="$TMP/engine.cnf" host timeout 120 openssl req -new -x509 -utf8 -days "${5:-30}" -set_serial 3 \
		-engine pkcs11 -keyform engine -key "pkcs11:token=$1;object=$2;type=private;pin-value=1234" \
		-subj "$3" -extensions ext -out "$4" >"$TMP/make_cert.log" 2>&1 ||
		{ cat "$TMP/make_cert.log" >&2; fail "certificate for $2"; }
}

fail() {
	echo "FAIL: $*" >&2
	[ -f "$TMP/keymgrd.log" ] && sed 's/^/  keymgrd: /' "$TMP/keymgrd.log" >&2
	exit 1
}

# Extra arguments go to keymgrd (policy settings...). A socket left by a
# killed keymgrd is removed first, so the wait below sees the new one.
start_keymgrd() {
	rm -f "$COYEU_SOCKET"
	"$KEYMGRD" --foreground --data-dir "$TMP/data" --socket "$COYEU_SOCKET" \
		--config /dev/null "$@" >>"$TMP/keymgrd.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		[ -S "$COYEU_SOCKET" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "keymgrd exited at start"
		sleep 0.1
	done
	fail "keymgrd did not create its socket in 10 s"
}

stop_keymgrd() {
	kill -TERM "$DAEMON_PID"
	status=0
	wait "$DAEMON_PID" || status=$?
	DAEMON_PID=
	[ "$status" -eq 0 ] || fail "keymgrd exited with $status after SIGTERM"
}

# ---- TLS material for remote tests (certtool) ----
tls_key() { certtool --generate-privkey --key-type ecdsa --outfile "$1" 2>/dev/null || fail "key $1"; }
tls_ca() { # NAME CN: $TMP/NAME.pem and NAME.key, a CA
	printf 'cn = "%s"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' "$2" >"$TMP/$1.tmpl"
	tls_key "$TMP/$1.key"
	certtool --generate-self-signed --load-privkey "$TMP/$1.key" --template "$TMP/$1.tmpl" \
		--outfile "$TMP/$1.pem" 2>/dev/null || fail "CA $1"
}
tls_cert() { # NAME CA TEMPLATE-LINES...: $TMP/NAME.pem and NAME.key, issued by CA
	name=$1 issuer=$2
	shift 2
	printf '%s\n' "$@" >"$TMP/$name.tmpl"
	tls_key "$TMP/$name.key"
	certtool --generate-certificate --load-privkey "$TMP/$name.key" --load-ca-certificate "$TMP/$issuer.pem" \
		--load-ca-privkey "$TMP/$issuer.key" --template "$TMP/$name.tmpl" --outfile "$TMP/$name.pem" \
		2>/dev/null || fail "certificate $name"
}
tls_client_conf() { # NAME SERVERS: $TMP/NAME.conf, a workstation's coyeu.conf with NAME's certificate
	printf '[client]\nserver = %s\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n' "$2" "$TMP/unit.pem" \
		"$TMP/$1.pem" "$TMP/$1.key" >"$TMP/$1.conf"
}
remote() { # NAME COMMAND...: runs COMMAND with NAME's coyeu.conf instead of the local socket
	(
		unset COYEU_SOCKET
		COYEU_CONF="$TMP/$1.conf"
		export COYEU_CONF
		shift
		"$@"
	)
}

# An official's workstation behind the delay proxy: a CA, keymgrd's and the
# official's certificates, keymgrd on 127.0.0.1 with a TLS listener (and the
# extra keymgrd flags given), the holder DB-T granted to the certificate,
# its PIN changed to 24681357 over TLS, and the proxy (DELAY ms each way,
# counts in $TMP/stats, PROXY_PID) in front. Needs DELAY_PROXY and certtool.
remote_official_setup() { # DELAY KEYMGRD-FLAGS...
	delay=$1
	shift
	command -v certtool >/dev/null || fail "certtool (gnutls-bin) is needed"
	: "${DELAY_PROXY:?DELAY_PROXY not set}"
	PORT=$((20000 + $$ % 20000))
	PROXY_PORT=$((PORT + 1))
	tls_ca unit "Điện Biên coyeu CA"
	tls_cert server unit 'cn = "localhost"' 'dns_name = "localhost"' tls_www_server 'expiration_days = 30'
	tls_cert official unit 'cn = "Lò Văn Thắng"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30'
	start_keymgrd --listen "tls://127.0.0.1:$PORT" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
		--tls-client-ca "$TMP/unit.pem" "$@"
	"$KEYMGR" holder add --id DB-T --name "Lò Văn Thắng" --agency "Sở Nội vụ" --key ec:P-256 \
		--pin-out "$TMP/pin-t" >/dev/null || fail "holder add"
	"$KEYMGR" access grant --cert 'CN=Lò Văn Thắng,O=Sở Nội vụ' --holder DB-T >/dev/null || fail "access grant"
	"$DELAY_PROXY" "$PROXY_PORT" 127.0.0.1 "$PORT" "$delay" "$TMP/stats" >"$TMP/proxy.out" 2>&1 &
	PROXY_PID=$!
	EXTRA_CLEANUP="kill $PROXY_PID 2>/dev/null"
	for _ in $(seq 50); do grep -q ready "$TMP/proxy.out" && break; sleep 0.1; done
	grep -q ready "$TMP/proxy.out" || fail "the delay proxy did not start"
	tls_client_conf official "tls://localhost:$PROXY_PORT"
	remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login \
		--pin "$(tail -1 "$TMP/pin-t" | awk -F, '{print $NF}')" --change-pin --new-pin 24681357 \
		>"$TMP/chpin.out" 2>&1 || { cat "$TMP/chpin.out" >&2; fail "PIN change"; }
}


# A PostgreSQL server of our own: pg_start, pg_halt, pg_resume, pg_stop
# (tests/pg-local.sh, shared with the benchmark).
. "$(dirname "$0")/../pg-local.sh"
