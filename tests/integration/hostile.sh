#!/bin/sh
# Hostile local clients against keymgrd (docs/security.md): uid 65534, in
# the socket's group, runs each attack of tests/hostile.c for a bounded
# time while root's program, the victim, signs 10 times through the module
# (a new process each: load, log in, find the key, sign); the victim must
# get every signature while the attack lasts (each attack outlasts the
# victim's time limit, so a daemon the attack stops fails).
#   slow      16 connections each sending a request one byte per 0.5 s
#   noread    8 connections asking for 2 MiB and never reading it
#   flood     1,100 connections held open
#   sessions  200,000 sessions on one connection, then closed at once
#   announce  120 connections announcing a 16 MiB request and sending 4 KiB
#   oversize  48 connections sending 8 MiB of a 16 MiB request, then stalling
#   emfile    keymgrd's open-file soft limit lowered to 20 over what it has
#             open (prlimit), then 400
#             connections that never say HELLO: it must say so once and
#             wait, not spin on the listener, and serve once they are gone
#   signals   SIGHUP, then SIGTERM with slow clients connected
# The victim's worst latency is printed for each (a figure, not a test).
. "$(dirname "$0")/lib.sh"
: "${HOSTILE:?HOSTILE not set}" "${P11PROBE:?P11PROBE not set}"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to run clients as another uid"; exit 77; }
G=cyh-g$$
EXTRA_CLEANUP="groupdel $G 2>/dev/null"
groupadd "$G" || fail "groupadd"
GID=$(getent group "$G" | cut -d: -f3)
chmod 0755 "$TMP"
cd "$TMP"
ulimit -n 4096 2>/dev/null || true
start_keymgrd --socket-group "$G"
"$KEYMGR" holder add --id DB-X --name "Người Tấn Công" --agency "Sở Nội vụ" --pin-out pin-x >/dev/null ||
	fail "holder add"
"$KEYMGR" access grant --uid 65534 --holder DB-X >/dev/null || fail "access grant"
slot=$("$KEYMGR" holder list --json | grep -o '"slot":[0-9]*' | head -1 | cut -d: -f2)
"$KEYMGR" token init --label victim --so-pin 87654321 --pin 1234 >/dev/null || fail "victim token"
"$KEYMGR" key generate --token victim --pin 1234 --type ec:P-256 --label sign >/dev/null || fail "victim key"

APID=
attacker() { # NAME ARGS...: starts the attack as uid 65534; waits until it is ready
	name=$1
	shift
	setpriv --reuid=65534 --regid=65534 --groups "$GID" "$HOSTILE" "$@" >"$name.out" 2>&1 &
	APID=$!
	for _ in $(seq 300); do
		grep -q "^ready" "$name.out" && return 0
		kill -0 "$APID" 2>/dev/null || { cat "$name.out" >&2; fail "the $name attack did not start"; }
		sleep 0.1
	done
	fail "the $name attack was not ready in 30 s"
}
victim() { # NAME: 10 signatures, each by a new process, within 15 s
	worst=0
	end=$(($(date +%s) + 15))
	for _ in $(seq 10); do
		t0=$(date +%s%N)
		host timeout 15 "$P11PROBE" "$COYEU_MODULE" sign victim 1234 >"$1.victim" 2>&1 ||
			{ cat "$1.victim" >&2; fail "during the $1 attack the victim could not sign"; }
		grep -qx "C_Sign CKR_OK" "$1.victim" || { cat "$1.victim" >&2; fail "during the $1 attack: no signature"; }
		ms=$((($(date +%s%N) - t0) / 1000000))
		[ "$ms" -gt "$worst" ] && worst=$ms
		[ "$(date +%s)" -le "$end" ] || fail "during the $1 attack the victim did not sign 10 times in 15 s"
	done
	echo "$1: victim signed 10 times, worst $worst ms (a new process each)"
	if [ -n "$APID" ]; then
		kill "$APID" 2>/dev/null
		wait "$APID" 2>/dev/null || true
		APID=
	fi
}
# HOSTILE_ONLY=NAME runs one attack.
want() { [ -z "${HOSTILE_ONLY:-}" ] || [ "$HOSTILE_ONLY" = "$1" ]; }
vm_mib() { awk '/^VmSize:/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status"; }
rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status"; }

if want slow; then
	attacker slow slow 16 25
	victim slow
fi
if want noread; then
	attacker noread noread 8 25 "$slot"
	victim noread
fi
if want flood; then
	attacker flood flood 1100 25
	grep "^ready" flood.out
	victim flood
fi
if want sessions; then
	# 200,000 sessions asked for on one connection, then all closed at
	# once: the victim comes right after the close.
	attacker sessions sessions 200000 60 "$slot"
	grep "^ready" sessions.out
	kill "$APID"
	wait "$APID" 2>/dev/null || true
	APID=
	victim sessions
	grep -q "then 0xb1)" sessions.out || fail "no session cap (CKR_SESSION_COUNT)"
fi
if want announce; then
	# What is announced costs nothing until it is sent. (The workers'
	# malloc arenas, 64 MiB of address space each, are made first.)
	"$HOSTILE" victim 30 >/dev/null || fail "warming up"
	before=$(vm_mib)
	attacker announce oversize 120 25 4
	sleep 1 # for keymgrd to read what was sent
	during=$(vm_mib)
	victim announce
	echo "keymgrd address space: $before MiB before the announce attack, $during MiB during it"
	[ "$during" -lt $((before + 64)) ] ||
		fail "120 announced requests of 16 MiB took keymgrd from $before to $during MiB"
fi
if want oversize; then
	before=$(rss_mib)
	attacker oversize oversize 48 25 8192
	sleep 1
	during=$(rss_mib)
	victim oversize
	echo "keymgrd RSS: $before MiB before the oversize attack, $during MiB during it"
	[ "$during" -lt $((before + 300)) ] || fail "48 part-sent requests of 8 MiB took keymgrd from $before to $during MiB"
	grep -q "part-read requests hold" "$TMP/keymgrd.log" ||
		fail "keymgrd did not say it closed connections over the in-flight cap"
fi
victim after
if want emfile; then
	cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
	# 20 descriptors more than it has open now.
	limit=$(($(ls "/proc/$DAEMON_PID/fd" | wc -l) + 20))
	prlimit --pid "$DAEMON_PID" --nofile="$limit": || fail "prlimit"
	attacker emfile connect 400 25
	grep "^ready" emfile.out
	sleep 1
	t0=$(cpu_ticks)
	sleep 3
	t1=$(cpu_ticks)
	hz=$(getconf CLK_TCK)
	echo "emfile: keymgrd used $((t1 - t0)) of $((3 * hz)) clock ticks in 3 s out of descriptors"
	n=$(grep -c "too many open files" "$TMP/keymgrd.log" || true)
	[ "$n" -eq 1 ] || fail "keymgrd said $n times that it was out of descriptors (want once)"
	# A loop that spins on the readable listener uses the whole 3 s.
	[ "$((t1 - t0))" -lt "$hz" ] || fail "keymgrd spun out of descriptors: $((t1 - t0)) ticks in 3 s"
	kill "$APID"
	wait "$APID" 2>/dev/null || true
	APID=
	prlimit --pid "$DAEMON_PID" --nofile=4096: || fail "prlimit"
	victim emfile-after
fi
if want signals; then
	# SIGHUP reloads, and does not stop keymgrd; SIGTERM does, at once, slow
	# clients or not.
	attacker signals slow 4 25
	kill -HUP "$DAEMON_PID"
	sleep 0.5
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "SIGHUP stopped keymgrd"
	"$HOSTILE" victim 2 >/dev/null || fail "keymgrd does not serve after SIGHUP"
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 150); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DAEMON_PID" 2>/dev/null && fail "keymgrd did not stop within 15 s of SIGTERM while a slow client was connected"
	wait "$DAEMON_PID" || fail "keymgrd exited with $? after SIGTERM"
	DAEMON_PID=
	[ -e "$COYEU_SOCKET" ] && fail "keymgrd left its socket"
	kill "$APID" 2>/dev/null
	wait "$APID" 2>/dev/null || true
	echo "signals: SIGHUP reloaded, keymgrd served on; SIGTERM stopped keymgrd with slow clients connected"
else
	stop_keymgrd
fi
