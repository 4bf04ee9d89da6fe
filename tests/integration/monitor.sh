#!/bin/sh
# keymgr status [--json] and the metrics endpoint: the JSON parses, its
# counters move with the requests made (errors too), locked PINs, keys due
# for rotation and certificates expiring by agency are what was made; the
# metrics page answers GET /metrics (404 otherwise), moves between two
# scrapes, names no token (an official's name) and names agencies only
# with metrics_names = yes; a user with no role sees no status.
. "$(dirname "$0")/lib.sh"
: "${GEN_CERTS:?}" "${AGENCIES:?}"
cd "$TMP"
MPORT=$((20000 + ($$ + 7) % 20000))
printf '[keymgrd]\nmetrics_listen = 127.0.0.1:%s\n' "$MPORT" >m.conf
rm -f "$COYEU_SOCKET"
"$KEYMGRD" --foreground --data-dir "$TMP/data" --socket "$COYEU_SOCKET" --config "$TMP/m.conf" \
	--max-pin-failures 3 >>keymgrd.log 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$COYEU_SOCKET" ] && break; sleep 0.1; done
[ -S "$COYEU_SOCKET" ] || fail "keymgrd did not start"

json() { # PERL-EXPR on $j (the decoded status; $A: $A decoded): prints its value
	"$KEYMGR" status --json >status.json || fail "keymgr status --json"
	perl -MJSON::PP -MEncode -e 'binmode(STDOUT, ":encoding(UTF-8)"); local $/;
		our $A = defined $ENV{A} ? decode("UTF-8", $ENV{A}) : undef;
		my $j = JSON::PP->new->utf8->decode(<STDIN>); print eval($ARGV[0]) // "", "\n"' \
		"$1" <status.json || fail "the status JSON does not parse"
}
scrape() { # PATH OUT: the HTTP status line's code, body in OUT
	perl -MHTTP::Tiny -e 'my $r = HTTP::Tiny->new(timeout => 10)->get($ARGV[0]);
		open(my $f, ">", $ARGV[1]) or die; print $f $r->{content}; print $r->{status}, "\n"' \
		"http://127.0.0.1:$MPORT$1" "$2"
}
metric() { # NAME-WITH-LABELS FILE: its value
	awk -v n="$1" '$1 == n { print $2 }' "$2"
}

[ "$(json '$j->{version}')" != "" ] || fail "no version"
[ "$(json '$j->{store}{backend}')" = sqlite ] || fail "store backend"
[ "$(json '$j->{store}{schema}')" = 14 ] || fail "schema"
h0=$(json '$j->{requests}{hello}{requests}')
"$KEYMGR" token init --label province --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" token init --label "Điêu Chính Tới" --so-pin 87654321 --pin 1234 >/dev/null || fail "token init 2"
[ "$(json '$j->{requests}{"init-token"}{requests}')" = 2 ] || fail "init-token not counted twice"
[ "$(json '$j->{requests}{hello}{requests}')" -gt "$h0" ] || fail "hello count did not move"
[ "$(json '$j->{requests}{"init-token"}{errors}')" = 0 ] || fail "init-token errors"

# Wrong PINs: login errors counted; after 3 the PIN is locked.
for _ in 1 2 3; do
	host pkcs11-tool --module "$COYEU_MODULE" --token-label "Điêu Chính Tới" --login --pin 9999 --list-objects \
		>/dev/null 2>&1 && fail "a wrong PIN logged in"
done
[ "$(json '$j->{requests}{login}{errors}')" -ge 3 ] || fail "the wrong PINs are not counted as errors"
[ "$(json '$j->{attention}[0]{label}')" = "Điêu Chính Tới" ] || fail "the locked token is not listed"
[ "$(json '$j->{attention}[0]{locked}')" = user ] || fail "the user PIN is not said locked"

# A key whose certificate ends within 30 days (20) is due; 600 inventory
# certificates, some expiring within 30 days, by agency.
"$KEYMGR" key generate --token province --pin 1234 --type ec:P-256 --label signer --id 5a >/dev/null || fail "key"
make_cert province signer "/CN=Lò Văn Thắng/O=Sở Y tế" own.pem 20
"$KEYMGR" cert import --token province --pin 1234 own.pem >/dev/null || fail "own cert"
mkdir certs
"$GEN_CERTS" certs 600 "$AGENCIES" >/dev/null || fail "gen_certs"
"$KEYMGR" cert import --token province --pin 1234 certs/agency-*.pem >/dev/null || fail "import"
[ "$(json '$j->{keys_due}')" = 1 ] || fail "keys due: $(json '$j->{keys_due}'), expected 1"
want=$(awk -F'\t' '{s += $4} END {print s + 1}' certs/expected.tsv) # + own.pem (20 days)
got=$(json 'my $s = 0; $s += $_ for values %{$j->{expiring}{by_agency}}; $s')
[ "$got" = "$want" ] || fail "expiring within 30 days: $got, expected $want"
a=$(awk -F'\t' '$4 > 0 { print $1; exit }' certs/expected.tsv)
[ -n "$a" ] || fail "gen_certs made no certificate expiring within 30 days"
n=$(awk -F'\t' -v a="$a" '$1 == a { print $4 }' certs/expected.tsv)
[ "$(A="$a" json '$j->{expiring}{by_agency}{$A}')" = "$n" ] || fail "expiring for $a is not $n"
[ "$(json '$j->{audit}{entries}')" -gt 5 ] || fail "audit entries"
[ "$(json '$j->{last_backup}')" = 0 ] || fail "a backup was reported before any"
"$KEYMGR" status >status.txt || fail "keymgr status"
grep -q "^store: sqlite, schema 14; 2 token(s)" status.txt || { cat status.txt >&2; fail "status text"; }
echo "status: JSON parses; counts moved (init-token 2, login errors >= 3); locked PIN, 1 key due, $got expiring by agency"

# Someone with no role sees nothing.
command -v setpriv >/dev/null || fail "setpriv is needed"
chmod 0755 "$TMP" "$TMP/run"
chmod 0666 "$COYEU_SOCKET"
st=0
setpriv --reuid=nobody --regid=nogroup --clear-groups "$KEYMGR" status >/dev/null 2>err || st=$?
[ "$st" -ne 0 ] || fail "user nobody read the status"
grep -q "CKR_ACTION_PROHIBITED" err || { cat err >&2; fail "no reason for refusing nobody"; }

# ---- metrics ----
[ "$(scrape /metrics m1.txt)" = 200 ] || fail "GET /metrics"
[ "$(scrape /other x.txt)" = 404 ] || fail "another path was answered"
grep -q '^coyeu_info{version="[^"]*",store="sqlite",schema="14"} 1$' m1.txt || fail "coyeu_info"
[ "$(metric coyeu_pins_locked m1.txt)" = 1 ] || fail "coyeu_pins_locked"
[ "$(metric coyeu_keys_due_rotation m1.txt)" = 1 ] || fail "coyeu_keys_due_rotation"
[ "$(metric 'coyeu_certificates_expiring{within_days="30"}' m1.txt)" = "$want" ] || fail "expiring"
[ "$(metric coyeu_tokens m1.txt)" = 2 ] || fail "coyeu_tokens"
grep -q 'Điêu\|Thắng\|agency=' m1.txt && fail "the metrics name a token, a holder or an agency"
l1=$(metric 'coyeu_request_errors_total{type="login"}' m1.txt)
host pkcs11-tool --module "$COYEU_MODULE" --token-label province --login --pin 0000 --list-objects >/dev/null 2>&1 &&
	fail "a wrong PIN logged in"
scrape /metrics m2.txt >/dev/null
l2=$(metric 'coyeu_request_errors_total{type="login"}' m2.txt)
[ "$l2" -eq $((l1 + 1)) ] || fail "login errors $l1 then $l2 after one more wrong PIN"
[ "$(metric 'coyeu_connections_accepted_total{transport="unix"}' m2.txt)" -gt \
	"$(metric 'coyeu_connections_accepted_total{transport="unix"}' m1.txt)" ] || fail "accepted did not move"
grep -Eq '^coyeu_connections_refused_total [0-9]+$' m2.txt || fail "refused connections"
# A client that connects and says nothing holds up no one for long, and
# no request of keymgr waits for it.
perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new("127.0.0.1:'"$MPORT"'") or die; sleep 8' &
SLOW=$!
sleep 0.5
"$KEYMGR" token list >/dev/null || fail "keymgr while a metrics client stalls"
[ "$(scrape /metrics m3.txt)" = 200 ] || fail "the metrics did not answer after a stalled client"
kill "$SLOW" 2>/dev/null
wait "$SLOW" 2>/dev/null || true
echo "metrics: answered; pins_locked 1, keys_due 1, expiring $want; login errors $l1 -> $l2; no names"

# With metrics_names = yes (SIGHUP does not move the listener: restart).
stop_keymgrd
printf '[keymgrd]\nmetrics_listen = 127.0.0.1:%s\nmetrics_names = yes\n' "$MPORT" >m.conf
"$KEYMGRD" --foreground --data-dir "$TMP/data" --socket "$COYEU_SOCKET" --config "$TMP/m.conf" >>keymgrd.log 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$COYEU_SOCKET" ] && break; sleep 0.1; done
scrape /metrics m4.txt >/dev/null
A="$a" perl -e 'my $a = $ENV{A}; $a =~ s/(["\\])/\\$1/g; while (<STDIN>) { exit 0 if index($_, "agency=\"$a\"") >= 0 } exit 1' \
	<m4.txt || fail "metrics_names = yes: no line for $a"
grep -q 'Điêu' m4.txt && fail "the metrics name a token even with metrics_names"
echo "metrics_names = yes: agencies named, tokens still not"
