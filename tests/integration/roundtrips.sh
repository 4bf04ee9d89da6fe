#!/bin/sh
# Round trips over TLS, counted by the delay proxy (tests/delay_proxy.c;
# counts, not timings): in a running application, logged in, with its key
# found, each signature (C_SignInit + C_Sign) is one round trip; each is
# verified. A whole pkcs11-tool --login --sign run takes at most 10 (docs/
# remote.md has the figures; the 4 round trips a whole run should take are
# not reached yet).
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}" "${DELAY_PROXY:?DELAY_PROXY not set}"
cd "$TMP"
# 5 ms each way: enough for every reply to come as one burst.
remote_official_setup 5
count() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/stats"; }

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
all=$((c1 - c0 + t1 - t0))
echo "pkcs11-tool --login --sign: $((c1 - c0)) connection(s), $((t1 - t0)) TLS and request round trips: $all in all"
# 10 today (17 before the slot snapshot, BYE without answer and the local
# CKA_ALWAYS_AUTHENTICATE); the aim is 4 (docs/remote.md).
[ "$all" -le 10 ] || fail "a pkcs11-tool run took $all round trips (at most 10)"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
stop_keymgrd
