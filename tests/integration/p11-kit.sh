#!/bin/sh
# p11-kit: after "make install" (here into a DESTDIR), the installed
# coyeu.module makes p11-kit list the module and its token, and p11tool
# sees the token through p11-kit with no --provider.
#
# p11-kit reads per-user module configs (~/.config/pkcs11/modules) but not
# for root, so this runs the daemon and the clients as an unprivileged user
# with that user config pointing at the DESTDIR copy.
. "$(dirname "$0")/lib.sh"
skip_under_sanitizers "p11-kit tools hang at exit in libp11-kit under a preloaded ASan"

command -v p11-kit >/dev/null || fail "p11-kit is not installed"
: "${TOP_BUILDDIR:?TOP_BUILDDIR not set}"
root="$TMP/root"
${MAKE:-make} -C "$TOP_BUILDDIR" install DESTDIR="$root" >"$TMP/install.log" 2>&1 ||
	{ tail -20 "$TMP/install.log" >&2; fail "make install"; }
conf=$(find "$root" -name coyeu.module)
[ -n "$conf" ] || fail "make install did not install coyeu.module"
module=$(sed -n 's/^module: *//p' "$conf")
case "$module" in /*/coyeu-pkcs11.so) ;; *) fail "coyeu.module names '$module'" ;; esac
[ -f "$root$module" ] || fail "the module is not where coyeu.module says ($module)"
echo "installed $conf -> $module"

# The unprivileged user's home, config and daemon.
RUNAS="setpriv --reuid=65534 --regid=65534 --clear-groups"
home="$TMP/home"
mkdir -p "$home/.config/pkcs11/modules"
sed "s|^module: *|module: $root|" "$conf" >"$home/.config/pkcs11/modules/coyeu.module"
chown -R 65534:65534 "$home"
chmod -R a+rX "$root"
chmod 0755 "$TMP"
export HOME="$home" XDG_CONFIG_HOME="$home/.config"
COYEU_SOCKET="$home/run/keymgrd.sock"
$RUNAS "$KEYMGRD" --foreground --data-dir "$home/data" --socket "$COYEU_SOCKET" --config /dev/null \
	>>"$TMP/keymgrd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$COYEU_SOCKET" ] && break; sleep 0.1; done
[ -S "$COYEU_SOCKET" ] || fail "keymgrd did not start"
$RUNAS "$KEYMGR" token init --label p11kit-token --so-pin 87654321 --pin 1234 || fail "token init"
$RUNAS "$KEYMGR" key generate --token p11kit-token --pin 1234 --type ec:P-256 --label k --id 01 || fail "key"

host $RUNAS timeout 60 p11-kit list-modules >"$TMP/modules" 2>&1 || { cat "$TMP/modules" >&2; fail "p11-kit list-modules"; }
grep -q "^coyeu: $root$module" "$TMP/modules" || { cat "$TMP/modules" >&2; fail "p11-kit does not list coyeu"; }
grep -A12 "^coyeu:" "$TMP/modules" | grep -q "token: p11kit-token" || fail "p11-kit does not show the token"
echo "p11-kit list-modules: coyeu with token p11kit-token"

host $RUNAS timeout 60 p11tool --list-tokens >"$TMP/tokens" 2>&1 || fail "p11tool --list-tokens"
grep -q "Label: p11kit-token" "$TMP/tokens" || { cat "$TMP/tokens" >&2; fail "p11tool (p11-kit) does not list the token"; }
GNUTLS_PIN=1234 host $RUNAS timeout 60 p11tool --batch --login --list-all "pkcs11:token=p11kit-token" \
	>"$TMP/all" 2>&1 || fail "p11tool --list-all"
grep -q "Type: Private key" "$TMP/all" && grep -q "Type: Public key" "$TMP/all" ||
	{ cat "$TMP/all" >&2; fail "p11tool --list-all does not show the key pair"; }
echo "p11tool through p11-kit: token and key pair listed"
stop_keymgrd
echo PASS
