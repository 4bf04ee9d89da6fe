#!/bin/sh
# Round trips over TLS, counted by the delay proxy (tests/delay_proxy.c;
# counts, not timings): in a running application, logged in, with its key
# found, each signature (C_SignInit + C_Sign) is one round trip; each is
# verified. A whole pkcs11-tool --login --sign run is counted and printed
# (docs/remote.md has the figures; the 4 round trips a whole run should
# take are not reached yet).
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}" "${DELAY_PROXY:?DELAY_PROXY not set}"
command -v certtool >/dev/null || fail "certtool (gnutls-bin) is needed"
cd "$TMP"
PORT=$((20000 + $$ % 20000))
PROXY_PORT=$((PORT + 1))
tls_ca unit "Điện Biên coyeu CA"
tls_cert server unit 'cn = "localhost"' 'dns_name = "localhost"' tls_www_server 'expiration_days = 30'
tls_cert official unit 'cn = "Lò Văn Thắng"' 'organization = "Sở Nội vụ"' tls_www_client 'expiration_days = 30'
start_keymgrd --listen "tls://127.0.0.1:$PORT" --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
	--tls-client-ca "$TMP/unit.pem"
"$KEYMGR" holder add --id DB-T --name "Lò Văn Thắng" --agency "Sở Nội vụ" --key ec:P-256 --pin-out "$TMP/pin-t" \
	>/dev/null || fail "holder add"
pin=$(tail -1 "$TMP/pin-t" | awk -F, '{print $NF}')
"$KEYMGR" access grant --cert 'CN=Lò Văn Thắng,O=Sở Nội vụ' --holder DB-T >/dev/null || fail "access grant"

# 5 ms each way: enough for every reply to come as one burst.
"$DELAY_PROXY" "$PROXY_PORT" 127.0.0.1 "$PORT" 5 "$TMP/stats" >proxy.out 2>&1 &
PROXY_PID=$!
EXTRA_CLEANUP="kill $PROXY_PID 2>/dev/null"
for _ in $(seq 50); do grep -q ready proxy.out && break; sleep 0.1; done
grep -q ready proxy.out || fail "the delay proxy did not start"
tls_client_conf official "tls://localhost:$PROXY_PORT"
count() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/stats"; }

remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login --pin "$pin" \
	--change-pin --new-pin 24681357 >chpin.out 2>&1 || { cat chpin.out >&2; fail "PIN change"; }

# A running application: 10 signatures, 10 round trips.
remote official host timeout 120 "$P11PROBE" "$COYEU_MODULE" signs DB-T 24681357 10 "$TMP/stats" >signs.out 2>&1 ||
	{ cat signs.out >&2; fail "10 signatures in a running application"; }
turns=$(awk '$1 == "turns" { print $2 }' signs.out)
echo "10 signatures in a running application: $turns round trips"
[ "$turns" = 10 ] || fail "10 signatures took $turns round trips (want 10: C_SignInit goes with C_Sign)"

# A whole pkcs11-tool run (a figure: TCP's handshake is one round trip per connection).
c0=$(count connections) t0=$(count turns)
echo "to sign" >tosign
remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login --pin 24681357 --sign \
	--mechanism ECDSA-SHA256 --input-file tosign --output-file sig >sign.out 2>&1 || { cat sign.out >&2; fail "sign"; }
c1=$(count connections) t1=$(count turns)
echo "pkcs11-tool --login --sign: $((c1 - c0)) connection(s), $((t1 - t0)) TLS and request round trips:" \
	"$((c1 - c0 + t1 - t0)) in all"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
stop_keymgrd
