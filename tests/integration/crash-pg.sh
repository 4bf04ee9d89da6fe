#!/bin/sh
# The crash test (crash.sh) on a PostgreSQL store: keymgrd killed with
# SIGKILL 20 times during a bulk import and 20 times during rotations;
# every acknowledged object there after each restart, the audit chain
# verifies.
CRASH_STORE=postgresql CRASH_ROUNDS=${CRASH_ROUNDS:-20} exec sh "$(dirname "$0")/crash.sh"
