#!/bin/sh
# The Debian packages: built from this tree with dpkg-buildpackage -us -uc
# -b, lintian without errors, installed on this machine, and then the
# installed keymgrd (as root, dropping to the coyeu user the package made,
# on /var/lib/coyeu and /run/coyeu) serves the installed keymgr and the
# installed module, registered with p11-kit, which signs.
#
# It installs packages system-wide, so it is not in make check (other tests
# run beside it); scripts/test-all runs it alone:
#   make check TESTS=tests/integration/package.sh
# On a machine where coyeu is installed or has data, it touches nothing.
. "$(dirname "$0")/lib.sh"
: "${TOP_SRCDIR:?}"
unset COYEU_CONF COYEU_SOCKET # the installed defaults, as a user would have them
[ "$(id -u)" -eq 0 ] || { echo "SKIP: installing packages needs root"; exit 77; }
for t in dpkg-buildpackage lintian dh pkcs11-tool; do
	command -v "$t" >/dev/null || fail "$t is missing (scripts/install-deps installs it)"
done
if dpkg -s coyeu-keymgrd >/dev/null 2>&1 || dpkg -s coyeu-pkcs11 >/dev/null 2>&1 || [ -e /var/lib/coyeu ] ||
	[ -e /etc/coyeu ]; then
	echo "SKIP: coyeu is installed here (or /var/lib/coyeu, /etc/coyeu exist): not touching it"
	exit 77
fi
dpkg -s knot >/dev/null 2>&1 && { echo "SKIP: knot is installed (its keymgr conflicts with coyeu-keymgr)"; exit 77; }
had_user=0
id coyeu >/dev/null 2>&1 && had_user=1
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MODULE="/usr/lib/$ARCH/pkcs11/coyeu-pkcs11.so"
installed=0
EXTRA_CLEANUP='
	[ -z "$DAEMON_PID" ] || { kill "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=; }
	[ "$installed" -eq 0 ] || dpkg --purge coyeu-keymgrd coyeu-keymgr coyeu-pkcs11 >/dev/null 2>&1
	rm -rf /var/lib/coyeu /run/coyeu /etc/coyeu
	[ "$had_user" -eq 1 ] || userdel coyeu 2>/dev/null'

# ---- build ----
mkdir "$TMP/src"
tar -C "$TOP_SRCDIR" --exclude='./build*' --exclude=./.git --exclude=./autom4te.cache --exclude='./coyeu-*' \
	-cf - . | tar -C "$TMP/src" -xf -
(cd "$TMP/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" timeout 1200 dpkg-buildpackage -us -uc -b) \
	>"$TMP/build.log" 2>&1 || { tail -40 "$TMP/build.log" >&2; fail "dpkg-buildpackage failed"; }
ls "$TMP"/coyeu-keymgrd_*.deb "$TMP"/coyeu-keymgr_*.deb "$TMP"/coyeu-pkcs11_*.deb >/dev/null ||
	fail "the three packages were not built"
timeout 600 lintian --allow-root --fail-on error "$TMP"/coyeu_*.changes >"$TMP/lintian.log" 2>&1 ||
	{ cat "$TMP/lintian.log" >&2; fail "lintian reports errors"; }
echo "build: $(cd "$TMP" && ls coyeu-*_*.deb | grep -v dbgsym | tr '\n' ' '); lintian: $(grep -c '^E:' "$TMP/lintian.log") errors, $(grep -c '^W:' "$TMP/lintian.log") warnings"

# ---- install ----
installed=1
dpkg -i "$TMP"/coyeu-keymgrd_*.deb "$TMP"/coyeu-keymgr_*.deb "$TMP"/coyeu-pkcs11_*.deb >"$TMP/install.log" 2>&1 ||
	{ cat "$TMP/install.log" >&2; fail "dpkg -i failed"; }
id coyeu >/dev/null 2>&1 || fail "the package did not create the coyeu user (sysusers.d)"
[ "$(stat -c %U:%a /var/lib/coyeu)" = "coyeu:700" ] || fail "/var/lib/coyeu is $(stat -c %U:%a /var/lib/coyeu)"
[ -f "$MODULE" ] || fail "no $MODULE"
! ls "/usr/lib/$ARCH/pkcs11/"*.la >/dev/null 2>&1 || fail "a .la file was installed"
grep -q "^module: $MODULE" /usr/share/p11-kit/modules/coyeu.module || fail "coyeu.module does not name $MODULE"
/usr/sbin/keymgrd --version | grep -q "^keymgrd (coyeu) " || fail "installed keymgrd --version"
/usr/sbin/keymgrd --check-config >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log" >&2; fail "the installed config"; }
systemd-analyze verify /lib/systemd/system/keymgrd.service /lib/systemd/system/keymgrd.socket >"$TMP/verify.log" 2>&1 &&
	[ ! -s "$TMP/verify.log" ] || { cat "$TMP/verify.log" >&2; fail "the installed units do not verify"; }
echo "install: user coyeu, /var/lib/coyeu 0700, module registered, no .la, units verify"

# ---- run: the installed keymgrd, keymgr and module ----
/usr/sbin/keymgrd --foreground >>"$TMP/keymgrd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ -S /run/coyeu/keymgrd.sock ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "the installed keymgrd exited at start"
	sleep 0.1
done
[ -S /run/coyeu/keymgrd.sock ] || fail "no /run/coyeu/keymgrd.sock"
grep -Eq "^Uid:[[:space:]]+$(id -u coyeu)[[:space:]]" "/proc/$DAEMON_PID/status" || fail "keymgrd did not become coyeu"
/usr/bin/keymgr token init --label pkg --so-pin 87654321 --pin 1234 >/dev/null || fail "installed keymgr token init"
/usr/bin/keymgr key generate --token pkg --pin 1234 --type rsa:2048 --label signer >/dev/null || fail "key generate"
printf 'Quyết định số 12/QĐ-UBND\n' >"$TMP/doc.txt"
host pkcs11-tool --module "$MODULE" --token-label pkg --login --pin 1234 --sign --mechanism SHA256-RSA-PKCS \
	--label signer --input-file "$TMP/doc.txt" --output-file "$TMP/doc.sig" >"$TMP/sign.log" 2>&1 ||
	{ cat "$TMP/sign.log" >&2; fail "signing through the installed module"; }
host pkcs11-tool --module "$MODULE" --token-label pkg --read-object --type pubkey --label signer \
	--output-file "$TMP/pub.der" >/dev/null 2>&1 || fail "reading the public key"
openssl dgst -sha256 -verify "$TMP/pub.der" -keyform DER -signature "$TMP/doc.sig" "$TMP/doc.txt" >/dev/null ||
	fail "the signature made through the installed module does not verify"
# p11-kit finds the module; another user's program finds the system daemon.
p11-kit list-modules 2>/dev/null | grep -q "coyeu-pkcs11\|^module: coyeu" || fail "p11-kit does not list coyeu"
# (keymgr token list answers an empty list to a user no rule lets in, and
# fails when it reaches no keymgrd: no per-user one listens here.)
setpriv --reuid=nobody --regid=nogroup --clear-groups env XDG_RUNTIME_DIR="$TMP/no-such-dir" HOME=/nonexistent \
	/usr/bin/keymgr token list >"$TMP/nobody.log" 2>&1 ||
	{ cat "$TMP/nobody.log" >&2; fail "a program of user nobody cannot reach the system keymgrd"; }
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "keymgrd exited with $? after SIGTERM"
DAEMON_PID=
echo "run: installed keymgrd as coyeu, keymgr made a token and key, the installed module signed (openssl verified)"
