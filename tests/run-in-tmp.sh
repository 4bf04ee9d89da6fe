#!/bin/sh
# Runs one unit test with a TMPDIR of its own, removed afterwards: a Check
# test that fails ends its process before its teardown, and would leave its
# keymgrd directory (with a master key) behind.
d=$(mktemp -d "${TMPDIR:-/tmp}/coyeu-check.XXXXXX") || exit 99
TMPDIR=$d "$@"
rc=$?
rm -rf "$d"
exit $rc
