#!/bin/sh
# Links that drop (docs/remote.md), through the delay proxy:
#  - the proxy cuts every connection while an application signs every
#    0.1 s: the signatures go on, on the same session and login, once the
#    module has reconnected (keymgrd kept the sessions for --session-grace);
#    at most the signature in flight fails;
#  - the link dies silently (the proxy forwards nothing): the call in
#    flight fails with CKR_DEVICE_ERROR after the module's timeout (3 s
#    here) instead of hanging, and the next call works once the link is
#    back;
#  - an application that ends (C_Finalize) says BYE: its sessions do not
#    wait; one that vanishes has them ended after the grace.
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}" "${DELAY_PROXY:?DELAY_PROXY not set}"
cd "$TMP"
remote_official_setup 20 --session-grace 30s
printf 'timeout = 3\n' >>"$TMP/official.conf"

# The link is cut twice while the application signs.
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop DB-T 24681357 6 >loop.out 2>&1 &
LOOP=$!
sleep 2
kill -USR1 "$PROXY_PID"
sleep 1.5
kill -USR1 "$PROXY_PID"
wait "$LOOP" || { cat loop.out >&2; fail "the signing loop did not recover from cut links"; }
logins=$(grep -c "^C_Login" loop.out)
summary=$(tail -1 loop.out)
echo "links cut twice during 6 s of signing: $summary, $logins login"
[ "$logins" -eq 1 ] || fail "the loop logged in $logins times"
bad=$(echo "$summary" | awk '{ print $4 }')
[ "$bad" -le 2 ] || { cat loop.out >&2; fail "$bad signatures failed (at most the one in flight at each cut)"; }
grep -q "back; its sessions go on" keymgrd.log || fail "keymgrd did not say the application came back"

# The link dies silently: the call in flight fails within the timeout.
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop DB-T 24681357 9 >dead.out 2>&1 &
LOOP=$!
sleep 2
kill -USR2 "$PROXY_PID" # frozen
sleep 4.5
kill -USR2 "$PROXY_PID" # thawed
wait "$LOOP" || { cat dead.out >&2; fail "signing did not resume after the link came back"; }
grep -q "CKR_DEVICE_ERROR" dead.out || { cat dead.out >&2; fail "no call failed while the link was dead"; }
echo "a dead link: $(grep -c CKR_DEVICE_ERROR dead.out) call(s) failed with CKR_DEVICE_ERROR, then: $(tail -1 dead.out)"

# C_Finalize says BYE: no session waits for that application.
grep -q "links dropped; its sessions wait" keymgrd.log || fail "keymgrd kept no sessions for a dropped link"
n_wait=$(grep -c "links dropped; its sessions wait" keymgrd.log)
remote official host timeout 60 "$P11PROBE" "$COYEU_MODULE" sign DB-T 24681357 >bye.out 2>&1 ||
	{ cat bye.out >&2; fail "sign"; }
sleep 0.5
[ "$(grep -c "links dropped; its sessions wait" keymgrd.log)" -eq "$n_wait" ] ||
	fail "an application that finalized still had its sessions kept"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
stop_keymgrd
