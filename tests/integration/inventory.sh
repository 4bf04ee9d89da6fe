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
# --agency: without case, composed or decomposed, by substring. "Sở Y tế"
# typed in lower case, in NFD (o + horn + hook above, e + circumflex + acute),
# and as "y tế" finds what the exact name finds.
exact=$(awk -F'\t' '$1 == "Sở Y tế" { print $2 + $3 }' "$TMP/certs/expected.tsv")
[ -n "$exact" ] && [ "$exact" -gt 0 ] || fail "the test needs certificates of Sở Y tế"
n_exact=$("$KEYMGR" inventory list --token province --agency "Sở Y tế" --csv | tail -n +2 | wc -l)
nfd=$(printf 'so\314\233\314\211 y te\314\202\314\201')
for a in "sở y tế" "$nfd" "SỞ Y TẾ" "y tế"; do
	got=$("$KEYMGR" inventory list --token province --agency "$a" --csv | tail -n +2 | awk -F'","' '$2 ~ /Y tế/' | wc -l)
	[ "$got" -eq "$n_exact" ] || fail "--agency '$a' found $got, the exact name $n_exact"
done
echo "--agency: lower case, NFD, upper case and a substring find the $n_exact of Sở Y tế"

# inventory report --csv / --json / --within agree with the table's counts.
"$KEYMGR" inventory report --token province --csv >"$TMP/report.csv" || fail "report --csv"
"$KEYMGR" inventory report --token province --json >"$TMP/report.json" || fail "report --json"
csv_valid=$(tail -n +2 "$TMP/report.csv" | awk -F, '{ s += $(NF-4) } END { print s }')
json_valid=$(perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>); print $j->{total}{valid}' \
	<"$TMP/report.json") || fail "the report's JSON does not parse"
table_valid=$(awk '$1 == "TOTAL" { print $2 }' "$TMP/report")
[ "$csv_valid" = "$table_valid" ] && [ "$json_valid" = "$table_valid" ] ||
	fail "valid: table $table_valid, csv $csv_valid, json $json_valid"
s30=$(perl -MJSON::PP -e 'local $/; print JSON::PP->new->utf8->decode(<STDIN>)->{total}{expiring}' <"$TMP/report.json")
s400=$("$KEYMGR" inventory report --token province --within 400d --json |
	perl -MJSON::PP -e 'local $/; print JSON::PP->new->utf8->decode(<STDIN>)->{total}{expiring}')
[ "$s400" -gt "$s30" ] || fail "--within 400d finds $s400 expiring, not more than 30 days' $s30"
echo "report: --csv and --json agree with the table ($table_valid valid); --within 400d: $s400 expiring, 30d: $s30"

echo "inventory list --expiring 30d: $got certificates, as generated"

# Again: only duplicates. A bad file: nothing.
"$KEYMGR" cert import --token province --pin 1234 "$TMP"/certs/agency-*.pem | grep -q "^imported 0 .* $COUNT already" ||
	fail "re-import"
printf 'garbage' >"$TMP/bad.der"
"$KEYMGR" cert import --token province --pin 1234 "$TMP/certs/ca.pem" "$TMP/bad.der" 2>"$TMP/err" && fail "bad file imported"
grep -q "bad.der" "$TMP/err" || { cat "$TMP/err" >&2; fail "the bad file is not named"; }
"$KEYMGR" inventory list --token province --csv | tail -n +2 | wc -l | grep -q "^$COUNT$" || fail "partial import happened"
# A directory with two files that are no certificates: both named, nothing
# imported; --dry-run sends nothing; --skip-invalid imports the others.
mkdir "$TMP/mixed"
for i in 1 2 3; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/mixed.key" -days 90 \
		-subj "/CN=Cán bộ mới $i/O=Sở Nội vụ" -out "$TMP/mixed/new-$i.pem" 2>/dev/null || fail "openssl req $i"
done
printf 'garbage' >"$TMP/mixed/x-bad.der"
printf '0\202junk' >"$TMP/mixed/y-bad.der"
"$KEYMGR" cert import --token province --pin 1234 "$TMP/mixed" >/dev/null 2>"$TMP/err" && fail "a directory with bad files was imported"
grep -q "x-bad.der" "$TMP/err" && grep -q "y-bad.der" "$TMP/err" && grep -q "2 file(s) could not be read" "$TMP/err" ||
	{ cat "$TMP/err" >&2; fail "not every bad file is named"; }
"$KEYMGR" inventory list --token province --csv | tail -n +2 | wc -l | grep -q "^$COUNT$" || fail "a refused import imported"
"$KEYMGR" cert import --token province --pin 1234 --skip-invalid --dry-run "$TMP/mixed" 2>/dev/null |
	grep -q "^dry run: 3 certificate(s) read, 2 file(s) skipped" || fail "--dry-run"
"$KEYMGR" inventory list --token province --csv | tail -n +2 | wc -l | grep -q "^$COUNT$" || fail "--dry-run imported"
"$KEYMGR" cert import --token province --pin 1234 --skip-invalid "$TMP/mixed" 2>"$TMP/err" | grep -q "^imported 3 " ||
	fail "--skip-invalid did not import the good files"
grep -q "skipping the 2 file(s)" "$TMP/err" || fail "--skip-invalid did not say what it skipped"
COUNT=$((COUNT + 3))
echo "import of a directory: both bad files named, nothing imported; --dry-run sends nothing; --skip-invalid imports 3"

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

# Names that are not UTF-8 stay JSON: a certificate's T61String of Latin-1
# bytes (GnuTLS gives it in RFC 4514's #hex form), and a token label with a
# byte that is no UTF-8 (U+FFFD in its place).
printf '[req]\ndistinguished_name = dn\nstring_mask = nombstr\nprompt = no\n[dn]\n' >"$TMP/t61.cnf"
openssl req -config "$TMP/t61.cnf" -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/t61.key" \
	-out "$TMP/t61.pem" -days 10 -subj "$(printf '/CN=Caf\351 \377odd/O=Latin\300\257 agency')" 2>/dev/null ||
	fail "openssl req (T61String)"
"$KEYMGR" cert import --token province --pin 1234 "$TMP/t61.pem" >/dev/null || fail "import the T61String certificate"
"$KEYMGR" inventory list --token province --json >"$TMP/odd.json" || fail "inventory list --json"
perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>);
	exit((grep { $_->{holder} eq "#436166e920ff6f6464" } @$j) == 1 ? 0 : 1)' <"$TMP/odd.json" ||
	fail "inventory list --json: no valid JSON with the T61String holder"
"$KEYMGR" token init --label "$(printf 'S\341\273\237 \377x')" --so-pin 87654321 --pin 1234 >/dev/null ||
	fail "token init with a byte that is no UTF-8"
"$KEYMGR" token list --json >"$TMP/tokens.json" || fail "token list --json"
perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>);
	exit((grep { $_->{label} eq "S\x{1edf} \x{fffd}x" } @$j) == 1 ? 0 : 1)' <"$TMP/tokens.json" ||
	{ od -c "$TMP/tokens.json" | head >&2; fail "token list --json is not valid JSON with a label that is no UTF-8"; }
echo "odd UTF-8: a T61String holder and a label with a stray byte come out as valid JSON"
stop_keymgrd
echo PASS
