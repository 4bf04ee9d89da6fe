#!/bin/sh
# A full disk never opens a door (docs/security.md): with keymgrd's data
# directory on a small file system filled up, a right PIN does not log in
# (its attempt cannot be counted, nor the login audited), wrong PINs are
# refused unchecked, a new key fails cleanly, and keymgrd says "disk is
# full". Once there is room again, everything works and the trail is whole.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to mount a small file system"; exit 77; }
D="$TMP/data"
mkdir -m 0700 "$D"
mount -t tmpfs -o size=8m,mode=0700 tmpfs "$D" 2>"$TMP/mount.err" ||
	{ echo "SKIP: cannot mount a tmpfs here: $(cat "$TMP/mount.err")"; exit 77; }
# (keymgrd is stopped before the unmount: it holds files there)
EXTRA_CLEANUP='if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=; fi; umount "$D"'
P11="host timeout 60 pkcs11-tool --module $COYEU_MODULE --token-label full"
login_ok() { $P11 --login --pin "$1" --list-objects >"$TMP/p11.out" 2>&1; }

start_keymgrd
"$KEYMGR" token init --label full --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" key generate --token full --pin 1234 --type ec:P-256 --label sign --id 01 >/dev/null || fail "key"
login_ok 1234 || fail "login before the disk is full"
# A destruction scrubs the store (the WAL is cut to nothing), so the next
# write needs new room.
"$KEYMGR" key generate --token full --pin 1234 --type ec:P-256 --label gone --id 02 >/dev/null || fail "key 02"
"$KEYMGR" key retire --token full --pin 1234 --id 02 >/dev/null && "$KEYMGR" key destroy --token full --pin 1234 --id 02 \
	>/dev/null || fail "destroy 02"
dd if=/dev/zero of="$D/filler" bs=4096 >/dev/null 2>&1 || true
[ "$(df --output=avail -k "$D" | tail -1 | tr -d ' ')" -le 4 ] || fail "the file system is not full"

if login_ok 1234; then fail "a right PIN logged in while the attempt could be neither counted nor audited"; fi
grep -q "CKR_DEVICE_ERROR" "$TMP/p11.out" || { cat "$TMP/p11.out" >&2; fail "the refused login does not say CKR_DEVICE_ERROR"; }
for _ in 1 2 3; do
	login_ok 9999 && fail "a wrong PIN logged in"
	grep -q "CKR_PIN_INCORRECT" "$TMP/p11.out" && fail "a wrong PIN was checked though it could not be counted"
done
"$KEYMGR" key generate --token full --pin 1234 --type ec:P-256 --label new --id 03 >/dev/null 2>&1 &&
	fail "a key was made on a full disk"
grep -q "disk is full" "$TMP/keymgrd.log" || fail "keymgrd did not say the disk is full"
echo "disk full: right and wrong PINs refused unchecked, no new key, 'disk is full' logged"

rm -f "$D/filler"
login_ok 1234 || { cat "$TMP/p11.out" >&2; fail "no login once there is room again"; }
"$KEYMGR" key generate --token full --pin 1234 --type ec:P-256 --label new --id 03 >/dev/null ||
	fail "no key once there is room again"
"$KEYMGR" audit verify >/dev/null || fail "audit verify after the disk was full"
flags=$($P11 -T 2>/dev/null | grep -i "flags" | head -1)
case "$flags" in *"count low"*|*"final"*|*"locked"*) fail "refused attempts were counted as failures: $flags" ;; esac
stop_keymgrd
echo PASS
