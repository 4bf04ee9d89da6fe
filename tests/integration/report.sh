#!/bin/sh
# keymgr inventory report --html: one self-contained page (no script, no
# fetch), rendered in headless Chromium; the numbers Chromium shows (the
# totals, the chart's bar per month, keys due, revocations this year, PIN
# lockouts) are those inventory list --json gives. A screenshot is kept in
# docs/ when COYEU_SCREENSHOT names where.
. "$(dirname "$0")/lib.sh"
: "${GEN_CERTS:?}" "${AGENCIES:?}"
skip_under_sanitizers "Chromium is not needed twice; the report is keymgr's, tested in the normal build"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (scripts/install-deps installs it)"
TZ=UTC
export TZ
cd "$TMP"
start_keymgrd --max-pin-failures 3
"$KEYMGR" token init --label province --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
mkdir certs
"$GEN_CERTS" certs 1500 "$AGENCIES" >/dev/null || fail "gen_certs"
"$KEYMGR" cert import --token province --pin 1234 certs/agency-*.pem >/dev/null || fail "import"
# A key due for rotation (its certificate ends in 20 days), another revoked.
for k in due gone; do
	"$KEYMGR" key generate --token province --pin 1234 --type ec:P-256 --label "$k" >/dev/null || fail "key $k"
	make_cert province "$k" "/CN=Cán bộ $k/O=Sở Y tế" "$k.pem" 20
	"$KEYMGR" cert import --token province --pin 1234 "$k.pem" >/dev/null || fail "cert $k"
done
gone=$("$KEYMGR" key show --token province --pin 1234 gone --json | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')
"$KEYMGR" key revoke --token province --pin 1234 --id "$gone" --reason keyCompromise >/dev/null || fail "revoke"
# A token whose PIN is locked.
"$KEYMGR" token init --label "Lò Văn Khóa" --so-pin 87654321 --pin 1234 >/dev/null || fail "token 2"
for p in 1 2 3; do
	"$KEYMGR" key list --token "Lò Văn Khóa" --pin 000$p >/dev/null 2>&1 && fail "a wrong PIN logged in"
done

"$KEYMGR" inventory report --token province --html report.html >report.out || fail "inventory report --html"
grep -Eiq '<script|(src|href) *= *"?(https?:)?//' report.html && fail "the report fetches or runs something"
"$KEYMGR" inventory list --token province --json >list.json || fail "inventory list --json"
# What the numbers must be, from the listing.
perl -MJSON::PP -MPOSIX=strftime -e '
	local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>);
	my @t = gmtime(time); my $m0 = ($t[5] + 1900) * 12 + $t[4]; my @m = (0) x 12; my ($v, $r) = (0, 0);
	for my $c (@$j) {
		if ($c->{status} eq "valid") {
			$v++;
			my ($y, $mo) = $c->{not_after} =~ /^(\d+)-(\d+)/; my $k = $y * 12 + $mo - 1 - $m0;
			$m[$k]++ if $k >= 0 && $k < 12;
		}
		$r++ if $c->{status} eq "revoked" && substr($c->{revoked_at}, 0, 4) == $t[5] + 1900;
	}
	print "valid $v\nrevoked $r\nmonths @m\n"' <list.json >want.txt || fail "reading inventory list --json"

HOME="$TMP" timeout 120 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run \
	--user-data-dir="$TMP/chromium" --dump-dom "file://$TMP/report.html" >dom.html 2>chromium.log ||
	{ tail -20 chromium.log >&2; fail "chromium --dump-dom"; }
grep -q 'id="expiry-chart"' dom.html || fail "Chromium's page has no chart"
perl -e '
	local $/; my $d = <STDIN>;
	my ($v) = $d =~ /id="total-valid">(\d+)</; my ($r) = $d =~ /id="revoked-year">(\d+)</;
	my ($k) = $d =~ /id="keys-due">(\d+)</; my ($l) = $d =~ /id="pin-lockouts" data-count="(-?\d+)"/;
	my @m = $d =~ /<rect class="bar[^"]*" data-month="[^"]*" data-count="(\d+)"/g;
	print "valid $v\nrevoked $r\nmonths @m\nkeys $k\nlockouts $l\n"' <dom.html >got.txt
head -3 got.txt | diff want.txt - >diff.txt || { cat diff.txt >&2; fail "the rendered report disagrees with inventory list --json"; }
[ "$(grep -c . want.txt)" -eq 3 ] && [ "$(sed -n 's/^months //p' got.txt | wc -w)" -eq 12 ] || fail "not 12 bars"
grep -qx "keys 1" got.txt || fail "keys due: $(grep ^keys got.txt), expected 1"
grep -qx "lockouts 1" got.txt || fail "PIN lockouts: $(grep ^lockouts got.txt), expected 1"
grep -qx "revoked 1" got.txt || fail "revocations this year: $(grep ^revoked got.txt), expected 1"
HOME="$TMP" timeout 120 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
	--user-data-dir="$TMP/chromium" --window-size=900,1800 --screenshot="$TMP/report.png" "file://$TMP/report.html" \
	>>chromium.log 2>&1 || { tail -20 chromium.log >&2; fail "chromium --screenshot"; }
[ -s report.png ] || fail "no screenshot"
[ -z "${COYEU_SCREENSHOT:-}" ] || cp report.png "$COYEU_SCREENSHOT"
echo "report: Chromium rendered $(sed -n 's/^valid //p' got.txt) valid, bars $(sed -n 's/^months //p' got.txt), 1 key due, 1 revoked, 1 lockout: as inventory list --json says"
