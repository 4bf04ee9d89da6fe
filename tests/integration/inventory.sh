#!/bin/sh
# The certificate inventory at the province's scale: a CA and 5,418
# certificates over the agencies of Dien Bien, imported in one go; the
# report's counts per agency and the 30-day expiry list match what was
# generated; a re-import finds only duplicates; an unreadable file stops
# an import with nothing imported; a certificate of a token key is paired
# with it (CKA_ID).
. "$(dirname "$0")/lib.sh"

: "${GEN_CERTS:?GEN_CERTS not set}" "${AGENCIES:?AGENCIES not set}"
COUNT=${INVENTORY_COUNT:-5418}
mkdir "$TMP/certs"
"$GEN_CERTS" "$TMP/certs" "$COUNT" "$AGENCIES" || fail "gen_certs"
start_keymgrd
"$KEYMGR" token init --label province --so-pin 87654321 --pin 1234 || fail "token init"

"$KEYMGR" cert import --token province --pin 1234 "$TMP"/certs/agency-*.pem >"$TMP/import" || fail "import"
cat "$TMP/import"
grep -q "^imported $COUNT certificate(s)" "$TMP/import" || fail "not all certificates imported"

# Counts per agency: the report against what gen_certs wrote.
"$KEYMGR" inventory report --token province >"$TMP/report" || fail "inventory report"
while IFS="$(printf '\t')" read -r agency valid expired soon; do
	# The line that starts with exactly this agency and then its numbers.
	line=$(awk -v a="$agency" 'substr($0, 1, length(a)) == a && substr($0, length(a) + 1) ~ /^ +[0-9]/' \
		"$TMP/report" | head -1)
	[ -n "$line" ] || fail "no report line for '$agency'"
	set -- $(echo "$line" | awk '{print $(NF-4), $(NF-3), $(NF-2), $NF}')
	[ "$1" = "$valid" ] && [ "$2" = "$expired" ] && [ "$4" = "$soon" ] ||
		fail "report for '$agency': '$line', expected valid $valid expired $expired expiring $soon"
done <"$TMP/certs/expected.tsv"
echo "report: counts per agency match for $(wc -l <"$TMP/certs/expected.tsv") agencies"
want=$(awk -F'\t' '{s += $4} END {print s}' "$TMP/certs/expected.tsv")
got=$("$KEYMGR" inventory list --token province --expiring 30d --csv | tail -n +2 | wc -l)
[ "$got" -eq "$want" ] || fail "expiring in 30 days: $got, expected $want"
"$KEYMGR" inventory list --token province --status expired --json | grep -q '"status":"expired"' || fail "--json"
echo "inventory list --expiring 30d: $got certificates, as generated"

# Again: only duplicates. A bad file: nothing.
"$KEYMGR" cert import --token province --pin 1234 "$TMP"/certs/agency-*.pem | grep -q "^imported 0 .* $COUNT already" ||
	fail "re-import"
printf 'garbage' >"$TMP/bad.der"
"$KEYMGR" cert import --token province --pin 1234 "$TMP/certs/ca.pem" "$TMP/bad.der" 2>"$TMP/err" && fail "bad file imported"
grep -q "bad.der" "$TMP/err" || { cat "$TMP/err" >&2; fail "the bad file is not named"; }
"$KEYMGR" inventory list --token province --csv | tail -n +2 | wc -l | grep -q "^$COUNT$" || fail "partial import happened"

# A certificate for a key on the token is paired with it.
"$KEYMGR" key generate --token province --pin 1234 --type ec:P-256 --label "Điêu Chính Tới" --id 5a || fail "key"
make_cert province "Điêu Chính Tới" "/CN=Điêu Chính Tới/O=Sở Y tế" "$TMP/own.pem"
"$KEYMGR" cert import --token province --pin 1234 "$TMP/own.pem" | grep -q "^imported 1 .* 0 without" || fail "own cert"
"$KEYMGR" inventory list --token province --agency "Sở Y tế" | grep "Điêu Chính Tới" | grep -q " 5a$" ||
	fail "certificate not paired with its key"
echo "a certificate of a token key is paired with it; Vietnamese names round-trip"

# Lists go through everything: 10,000 objects and more on one token.
mkdir "$TMP/more"
"$GEN_CERTS" "$TMP/more" $((10000 - COUNT)) "$AGENCIES" 77 || fail "gen_certs (more)"
"$KEYMGR" cert import --token province --pin 1234 "$TMP"/more/agency-*.pem >/dev/null || fail "import (more)"
listed=$("$KEYMGR" key list --token province --pin 1234 | tail -n +2 | wc -l)
# 10,000 certificates, the own one and the key pair of 5a.
[ "$listed" -eq 10003 ] || fail "key list shows $listed of 10,003 objects"
"$KEYMGR" key list --token province --pin 1234 --json | grep -o '"handle"' | wc -l | grep -qx 10003 ||
	fail "key list --json does not show all 10,003 objects"
echo "key list: all 10,003 objects"
stop_keymgrd
echo PASS
