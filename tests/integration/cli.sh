#!/bin/sh
# keymgr's command line as keymgr(1) says: usage errors exit 2 (a bad
# option, a missing argument, an unknown command), every group's --help
# lists its commands, every command's --help works (exit 0).
. "$(dirname "$0")/lib.sh"
st() { s=0; "$@" >/dev/null 2>&1 || s=$?; echo "$s"; }
[ "$(st "$KEYMGR" token init --bogus)" = 2 ] || fail "a bad option did not exit 2"
[ "$(st "$KEYMGR" key generate)" = 2 ] || fail "missing arguments did not exit 2"
[ "$(st "$KEYMGR" frobnicate now)" = 2 ] || fail "an unknown command did not exit 2"
[ "$(st "$KEYMGR" key)" = 2 ] || fail "a group without a command did not exit 2"
[ "$(st "$KEYMGR" audit verify extra)" = 2 ] || fail "an extra argument did not exit 2"
"$KEYMGR" --help >help.txt || fail "keymgr --help"
groups=$(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' help.txt | sort -u)
[ -n "$groups" ] || fail "keymgr --help lists no commands"
for g in $groups; do
	"$KEYMGR" "$g" --help >g.txt 2>&1 || { cat g.txt >&2; fail "keymgr $g --help exited $?"; }
done
"$KEYMGR" key --help | grep -q "^  key csr " || fail "keymgr key --help does not list key csr"
sed -n 's/^  \([a-z][a-z]*\) \([a-z][a-z-]*\) .*/\1 \2/p' help.txt | while read -r g c; do
	"$KEYMGR" "$g" "$c" --help >c.txt 2>&1 || { cat c.txt >&2; fail "keymgr $g $c --help exited $?"; }
done
for c in status backup restore; do
	"$KEYMGR" "$c" --help >c.txt 2>&1 || fail "keymgr $c --help"
done
echo "usage errors exit 2; $(echo "$groups" | wc -w) groups' --help and every command's --help work"
