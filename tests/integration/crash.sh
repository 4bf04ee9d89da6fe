#!/bin/sh
# Crash safety: keymgrd is killed with SIGKILL at random moments, 12 times
# during a bulk certificate import and 12 times during a bulk rotation
# (with key generations running beside it). After each restart: SQLite's
# integrity check is ok; the import is all there or not there at all; every
# key whose creation or rotation keymgr reported exists whole (public and
# private part); no key is half rotated; acknowledged keys sign; the audit
# chain verifies. With CRASH_STORE=postgresql (crash-pg.sh) the store is a
# PostgreSQL database started here, and PostgreSQL's own recovery stands
# for SQLite's integrity check.
. "$(dirname "$0")/lib.sh"

: "${GEN_CERTS:?GEN_CERTS not set}" "${AGENCIES:?AGENCIES not set}"
ROUNDS=${CRASH_ROUNDS:-12}
K="$KEYMGR"
T="--token crash --pin 1234"
DB="$TMP/data/keymgr.db"
P11="host pkcs11-tool --module $COYEU_MODULE --token-label crash --login --pin 1234"
printf 'biên bản' >"$TMP/doc"

# A random delay of 0 to max milliseconds, as a sleep argument.
rnd_sleep() {
	ms=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') * $1 / 65536 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# The kill comes at a random moment within a window that widens (up to
# 12 s) after each round that completed nothing: on a slow machine
# (the AddressSanitizer build beside other tests) an import or an RSA-3072
# rotation may take longer than the first window, and rounds that only
# ever kill before the end would not test that completed work survives.
widen() {
	[ "$1" -gt 0 ] || { window=$((window * 3 / 2)); [ "$window" -le 12000 ] || window=12000; }
}

if [ "${CRASH_STORE:-sqlite}" = postgresql ]; then
	pg_start
	daemon() { start_keymgrd --store "$PG_URI" "$@"; }
else
	daemon() { start_keymgrd "$@"; }
fi

crash() {
	kill -KILL "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# What every restart must find.
check_store() {
	what=$1
	if [ "${CRASH_STORE:-sqlite}" = sqlite ]; then
		ok=$(sqlite3 "$DB" "PRAGMA integrity_check") || fail "$what: sqlite3 cannot open the store"
		[ "$ok" = "ok" ] || fail "$what: integrity_check: $ok"
	fi
	daemon --policy-interval 0
	"$K" audit verify >/dev/null || fail "$what: the audit chain does not verify"
}

daemon --policy-interval 0
"$K" token init --label crash --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$K" token init --label bulk --so-pin 87654321 --pin 1234 >/dev/null || fail "token init bulk"
"$K" key generate $T --type ec:P-256 --label ca >/dev/null 2>&1 || fail "CA key"
"$K" ca init $T --label ca --subject "CN=CA thử nghiệm,O=Ban Cơ yếu,C=VN" >/dev/null || fail "ca init"

# ---- bulk import ----
total=0
window=900
for round in $(seq "$ROUNDS"); do
	before=$total
	rm -rf "$TMP/certs" && mkdir "$TMP/certs"
	"$GEN_CERTS" "$TMP/certs" 2000 "$AGENCIES" "$round" >/dev/null || fail "gen_certs"
	"$K" cert import --token bulk --pin 1234 "$TMP"/certs/agency-*.pem >"$TMP/import.log" 2>&1 &
	cli=$!
	rnd_sleep "$window"
	crash
	wait "$cli" 2>/dev/null || true
	check_store "import round $round"
	n=$("$K" inventory list --token bulk --csv | tail -n +2 | wc -l)
	if grep -q "^imported 2000 " "$TMP/import.log"; then
		[ "$n" -eq $((total + 2000)) ] || fail "import round $round: acknowledged but $n rows (had $total)"
		total=$((total + 2000))
	elif [ "$n" -eq $((total + 2000)) ]; then
		total=$((total + 2000)) # committed; the reply was lost with the daemon
	else
		[ "$n" -eq "$total" ] || fail "import round $round: $n rows, neither $total nor $((total + 2000))"
	fi
	echo "import round $round: inventory holds $total certificates (all or nothing; kill within $window ms)"
	widen $((total - before))
done
[ "$total" -gt 0 ] || fail "no import completed in $ROUNDS rounds: the kills always came first"

# ---- bulk rotation, with key generations beside it ----
# 24 RSA keys, each with a certificate expiring in 5 days: all due. After
# each round the versions it made get certificates (again for 5 days), so
# every round has keys to rotate.
for i in $(seq 24); do
	"$K" key generate $T --type rsa:3072 --label "k$i" >/dev/null 2>&1 || fail "key k$i"
	"$K" key csr $T "k$i" --subject "CN=Cán bộ số $i,O=Sở Nội vụ tỉnh Điện Biên,C=VN" --out "$TMP/k$i.csr" ||
		fail "csr k$i"
	"$K" cert issue $T --ca ca --days 5 --out "$TMP/k$i.pem" "$TMP/k$i.csr" >/dev/null || fail "issue k$i"
done
"$K" cert import $T "$TMP"/k*.pem >/dev/null || fail "import k*"
: >"$TMP/acked"
mkdir "$TMP/csr"
window=1500
for round in $(seq "$ROUNDS"); do
	"$K" key rotate $T --due --within 30d --jobs 2 --out "$TMP/csr" >"$TMP/rotate.log" 2>&1 &
	rot=$!
	( for j in 1 2 3 4 5 6; do
		"$K" key generate $T --type ec:P-256 --label "g$round-$j" 2>/dev/null | sed -n 's/.* id \([0-9a-f]*\) .*/\1/p'
	done ) >>"$TMP/acked" 2>/dev/null &
	gen=$!
	rnd_sleep "$window"
	crash
	wait "$rot" 2>/dev/null || true
	wait "$gen" 2>/dev/null || true
	check_store "rotation round $round"
	"$K" key list $T >"$TMP/list"
	# Every acknowledged generation: both halves there.
	while read -r id; do
		[ "$(awk -v id="$id" '$NF == id' "$TMP/list" | wc -l)" -eq 2 ] || fail "rotation round $round: generated key $id lost"
	done <"$TMP/acked"
	# Every acknowledged rotation: the new version, pre-active, both halves.
	sed -n "s/^rotated '\(k[0-9]*\)' to version \([0-9]*\) (id \([0-9a-f]*\),.*/\3/p" "$TMP/rotate.log" |
		while read -r id; do
			[ "$(awk -v id="$id" '$NF == id && $4 == "pre-active"' "$TMP/list" | wc -l)" -eq 2 ] ||
				fail "rotation round $round: acknowledged version $id is not whole"
		done
	# No half rotation anywhere: each id has both halves in one state, and
	# each key exactly one active version.
	awk '$2 == "public" || $2 == "private" { n[$NF]++; s[$NF] = s[$NF] " " $4 }
	     END { for (id in n) if (n[id] != 2) { print "id " id " has " n[id] " key objects"; exit 1 } }' \
		"$TMP/list" || fail "rotation round $round: half a key version"
	for i in $(seq 24); do
		[ "$(awk -v l="k$i" '$2 == "private" && $5 == l && $4 == "active"' "$TMP/list" | wc -l)" -eq 1 ] ||
			fail "rotation round $round: k$i has not exactly one active version"
	done
	# Acknowledged keys sign (two at random, and a generated one).
	for i in $(( $(od -An -N1 -tu1 /dev/urandom) % 24 + 1 )) 7; do
		id=$(awk -v l="k$i" '$2 == "private" && $5 == l && $4 == "active" { print $NF }' "$TMP/list")
		$P11 --sign --id "$id" -m SHA256-RSA-PKCS -i "$TMP/doc" -o "$TMP/sig" >/dev/null 2>&1 ||
			fail "rotation round $round: k$i ($id) does not sign"
	done
	g=$(tail -1 "$TMP/acked")
	[ -z "$g" ] || $P11 --sign --id "$g" -m ECDSA-SHA256 -i "$TMP/doc" -o "$TMP/sig" >/dev/null 2>&1 ||
		fail "rotation round $round: generated key $g does not sign"
	# Complete the round: a version whose answer died with keymgrd gets its
	# request from rotating again; every new version gets a certificate,
	# which activates it; it signs.
	acked=$(grep -c "^rotated 'k" "$TMP/rotate.log" || true)
	pending=$(awk '$2 == "private" && $4 == "pre-active" { print $5 }' "$TMP/list")
	made=0
	for label in $pending; do
		"$K" key rotate $T "$label" --out "$TMP/csr" >"$TMP/again.log" || fail "round $round: rotate $label again"
		grep -q "^already rotated '$label'" "$TMP/again.log" || fail "round $round: $label rotated anew"
	done
	for f in "$TMP"/csr/*.csr; do
		[ -f "$f" ] || continue
		"$K" cert issue $T --ca ca --days 5 --out "${f%.csr}.pem" "$f" >/dev/null || fail "issue $f"
		made=$((made + 1))
	done
	if [ "$made" -gt 0 ]; then
		"$K" cert import $T "$TMP"/csr/*.pem >"$TMP/activate.log" || fail "round $round: import"
		grep -q "^activated $made new key version" "$TMP/activate.log" || fail "round $round: not $made activated"
		"$K" key list $T >"$TMP/list"
		for f in "$TMP"/csr/*.csr; do
			label=$(basename "$f" | sed 's/-v[0-9]*\.csr$//')
			id=$(awk -v l="$label" '$2 == "private" && $5 == l && $4 == "active" { print $NF }' "$TMP/list")
			$P11 --sign --id "$id" -m SHA256-RSA-PKCS -i "$TMP/doc" -o "$TMP/sig" >/dev/null 2>&1 ||
				fail "round $round: $label's new version does not sign"
		done
		rm -f "$TMP"/csr/*
	fi
	echo "rotation round $round: $acked rotations acknowledged, $made new versions completed and signing," \
		"$(wc -l <"$TMP/acked") generated keys all there (kill within $window ms)"
	total_made=$(( ${total_made:-0} + made ))
	widen "$made"
done
[ "$total_made" -gt 0 ] || fail "no rotation completed in $ROUNDS rounds: the kills always came first"
"$K" audit verify >/dev/null || fail "final audit chain"
stop_keymgrd
echo "after $((2 * ROUNDS)) kills: $total_made rotations completed and signing; audit chain verifies"
