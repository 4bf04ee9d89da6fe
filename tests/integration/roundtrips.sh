#!/bin/sh
# Round trips over TLS, counted by the delay proxy (tests/delay_proxy.c;
# counts, not timings): in a running application, logged in, with its key
# found, each signature (C_SignInit + C_Sign) is one round trip; each is
# verified. A whole pkcs11-tool --login --sign run takes 4: TCP and TLS
# together (TCP Fast Open), HELLO, open and login together, the signature
# (the search answered from the login's list, the close never sent); 5
# where the kernel does not allow server Fast Open (docs/remote.md).
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}" "${DELAY_PROXY:?DELAY_PROXY not set}"
cd "$TMP"
# Server Fast Open (bit 2 of net.ipv4.tcp_fastopen; clients have bit 1 by
# default), for the proxy and keymgrd, and back as it was at the end.
fastopen=/proc/sys/net/ipv4/tcp_fastopen
tfo_was=$(cat "$fastopen" 2>/dev/null || echo "")
tfo=no
if [ -n "$tfo_was" ] && echo $((tfo_was | 3)) >"$fastopen" 2>/dev/null; then
	tfo=yes
	RESTORE_TFO="echo $tfo_was >$fastopen"
fi
# 5 ms each way: enough for every reply to come as one burst.
remote_official_setup 5
EXTRA_CLEANUP="$EXTRA_CLEANUP; ${RESTORE_TFO:-:}"
count() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/stats"; }

# A running application: 10 signatures, 10 round trips.
remote official host timeout 120 "$P11PROBE" "$COYEU_MODULE" signs DB-T 24681357 10 "$TMP/stats" >signs.out 2>&1 ||
	{ cat signs.out >&2; fail "10 signatures in a running application"; }
turns=$(awk '$1 == "turns" { print $2 }' signs.out)
echo "10 signatures in a running application: $turns round trips"
[ "$turns" = 10 ] || fail "10 signatures took $turns round trips (want 10: C_SignInit goes with C_Sign)"

# 3.0 message signing: the init none (the key's summary from the search
# predicts keymgrd's yes: defer.c), each whole message one, a message in three parts four (the init with the
# first part, the second, and the last as an update and a final), the
# final none.
remote official host timeout 120 "$P11PROBE" "$COYEU_MODULE" messages DB-T 24681357 10 "$TMP/stats" >messages.out 2>&1 ||
	{ cat messages.out >&2; fail "message signing"; }
line=$(grep '^turns init' messages.out)
echo "message signing, round trips: $line"
[ "$line" = "turns init 0 whole 10 parts 4 final 0" ] ||
	fail "message signing took $line (want init 0 whole 10 parts 4 final 0)"

# Sessions opened and closed late, searches from the login's list: the
# codes PKCS#11 gives. 1026 opens and two closes cost nothing; the
# C_CloseAllSessions after them is the one round trip.
remote official host timeout 120 "$P11PROBE" "$COYEU_MODULE" lazy DB-T 24681357 "$TMP/stats" >lazy.out 2>&1 ||
	{ cat lazy.out >&2; fail "sessions opened late, searches from the login's list"; }
grep -E '^(sessions|objects|turns) ' lazy.out
turns=$(awk '$1 == "turns" { print $2 }' lazy.out)
[ "$turns" = 1 ] || fail "1026 opens, 2 closes and a close-all took $turns round trips (want 1)"

# A whole pkcs11-tool run: the TCP handshakes that were round trips of
# their own, and the turns of data (the TLS handshake is one).
c0=$(count handshakes) t0=$(count turns)
echo "to sign" >tosign
remote official host pkcs11-tool --module "$COYEU_MODULE" --token-label DB-T --login --pin 24681357 --sign \
	--mechanism ECDSA-SHA256 --input-file tosign --output-file sig >sign.out 2>&1 || { cat sign.out >&2; fail "sign"; }
c1=$(count handshakes) t1=$(count turns)
all=$((c1 - c0 + t1 - t0))
echo "pkcs11-tool --login --sign: $((c1 - c0)) TCP handshake(s), $((t1 - t0)) TLS and request round trips: $all in all (server Fast Open: $tfo)"
want=4
[ "$tfo" = yes ] || want=5
[ "$all" -le "$want" ] || fail "a pkcs11-tool run took $all round trips (at most $want)"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
stop_keymgrd
