# pg-local.sh - sourced by the integration tests (lib.sh) and the
# benchmark (bench/store.sh): a PostgreSQL server of their own. The
# sourcing script defines fail() and runs pg_stop at exit (EXTRA_CLEANUP,
# which pg_start extends, does that in lib.sh). Root only (useradd).
# A PostgreSQL server of our own (Debian's postgresql package): initdb and
# the server run as a system user made for the test (PostgreSQL refuses
# root), in a directory of its own, on a UNIX socket there only (no TCP),
# stopped by its PID at exit. pg_start sets PG_URI, a database "coyeu"
# that the superuser "coyeu" may use (trust on the socket: the test's).
PG_PID=
PG_OS_USER=
PG_DIR=
pg_start() {
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -x "$pgbin/initdb" ] || fail "PostgreSQL is not installed (scripts/install-deps)"
	PG_OS_USER=cypg$$
	useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" || fail "useradd $PG_OS_USER"
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coyeu-pg.XXXXXX")
	chown "$PG_OS_USER" "$PG_DIR"
	EXTRA_CLEANUP="pg_stop; ${EXTRA_CLEANUP:-}"
	runuser -u "$PG_OS_USER" -- "$pgbin/initdb" -D "$PG_DIR/data" -U coyeu --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; fail "initdb"; }
	runuser -u "$PG_OS_USER" -- "$pgbin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-k $PG_DIR -c listen_addresses= -c max_connections=200" start >/dev/null ||
		{ cat "$PG_DIR/server.log" >&2; fail "PostgreSQL did not start"; }
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	runuser -u "$PG_OS_USER" -- "$pgbin/createdb" -h "$PG_DIR" -U coyeu coyeu || fail "createdb"
	PG_URI="postgresql:///coyeu?host=$PG_DIR&user=coyeu"
}
# Stops the server by its PID (a fast shutdown: open connections are
# cut), waiting at most 30 s; its files stay (pg_resume starts it again).
pg_halt() {
	if [ -n "$PG_PID" ]; then
		kill -INT "$PG_PID" 2>/dev/null || true
		for _ in $(seq 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PG_PID" 2>/dev/null || true
		PG_PID=
	fi
}
pg_resume() {
	runuser -u "$PG_OS_USER" -- "$pgbin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-k $PG_DIR -c listen_addresses= -c max_connections=200" start >/dev/null ||
		{ cat "$PG_DIR/server.log" >&2; fail "PostgreSQL did not start again"; }
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
}
# Stops the server, then removes its files and its user.
pg_stop() {
	pg_halt
	[ -z "$PG_DIR" ] || rm -rf "$PG_DIR"
	[ -z "$PG_OS_USER" ] || userdel "$PG_OS_USER" 2>/dev/null || true
	PG_DIR= PG_OS_USER=
}
