#!/bin/sh
# The crash test (crash.sh) on a PostgreSQL store: keymgrd killed with
# SIGKILL 20 times during a bulk import and 20 times during rotations;
# every acknowledged object there after each restart, the audit chain
# verifies.
# Six minutes of kills: run once per CI run, in the first make check of
# scripts/test-all (COYEU_LONG_TESTS=1), not again under the sanitizers
# or in distcheck, where crash.sh's SQLite rounds beside it would starve.
if [ -z "${COYEU_LONG_TESTS:-}" ]; then
	echo "SKIP: crash-pg.sh runs with COYEU_LONG_TESTS=1 (scripts/test-all sets it for its first make check)"
	exit 77
fi
CRASH_STORE=postgresql CRASH_ROUNDS=${CRASH_ROUNDS:-20} exec sh "$(dirname "$0")/crash.sh"
