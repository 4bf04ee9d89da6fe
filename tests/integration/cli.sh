#!/bin/sh
# keymgr's command line as keymgr(1) says: usage errors exit 2 (a bad
# option, a missing argument, an unknown command), every group's --help
# lists its commands, every command's --help works (exit 0).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
st() { s=0; "$@" >/dev/null 2>&1 || s=$?; echo "$s"; }
[ "$(st "$KEYMGR" token init --bogus)" = 2 ] || fail "a bad option did not exit 2"
[ "$(st "$KEYMGR" key generate)" = 2 ] || fail "missing arguments did not exit 2"
[ "$(st "$KEYMGR" frobnicate now)" = 2 ] || fail "an unknown command did not exit 2"
[ "$(st "$KEYMGR" key)" = 2 ] || fail "a group without a command did not exit 2"
[ "$(st "$KEYMGR" audit verify extra)" = 2 ] || fail "an extra argument did not exit 2"
"$KEYMGR" --help >help.txt || fail "keymgr --help"
groups=$(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' help.txt | sort -u)
[ -n "$groups" ] || fail "keymgr --help lists no commands"
for g in $groups; do
	"$KEYMGR" "$g" --help >g.txt 2>&1 || { cat g.txt >&2; fail "keymgr $g --help exited $?"; }
done
"$KEYMGR" key --help | grep -q "^  key csr " || fail "keymgr key --help does not list key csr"
sed -n 's/^  \([a-z][a-z]*\) \([a-z][a-z-]*\) .*/\1 \2/p' help.txt | while read -r g c; do
	"$KEYMGR" "$g" "$c" --help >c.txt 2>&1 || { cat c.txt >&2; fail "keymgr $g $c --help exited $?"; }
done
for c in status backup restore; do
	"$KEYMGR" "$c" --help >c.txt 2>&1 || fail "keymgr $c --help"
done
# An option no command has is a usage error everywhere (exit 2).
sed -n '/^commands:/,/^$/p' help.txt | awk '/^  [a-z]/ { print $1 ($2 ~ /^[a-z][a-z-]*$/ ? " " $2 : "") }' |
	sort -u | while read -r g c; do
	s=0
	# shellcheck disable=SC2086
	"$KEYMGR" $g $c --no-such-option </dev/null >/dev/null 2>&1 || s=$?
	[ "$s" = 2 ] || { echo "keymgr $g $c --no-such-option exited $s" >&2; exit 1; }
done || fail "a bad option did not exit 2"
echo "usage errors exit 2; $(echo "$groups" | wc -w) groups' --help and every command's --help work"

# bash completion: groups, a group's commands, a command's options.
if command -v bash >/dev/null; then
	comp() { # WORDS...: what completing the last word offers
		PATH="$(dirname "$KEYMGR"):$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
			_keymgr; printf "%s\n" "${COMPREPLY[@]}"' sh "$TOP_SRCDIR/completion/keymgr" keymgr "$@"
	}
	comp "" | grep -qx inventory || fail "completion: no group 'inventory'"
	comp key "" | grep -qx rotate || fail "completion: 'keymgr key' does not offer rotate"
	comp key rotate --d | grep -qx -- --due || fail "completion: 'keymgr key rotate --d' does not offer --due"
	comp status --j | grep -qx -- --json || fail "completion: 'keymgr status --j' does not offer --json"
	echo "bash completion: groups, commands and options come from keymgr"
fi

# PINs from keymgr: a token whose init stopped before its user PIN (what
# pkcs11-tool --init-token alone leaves) is finished with token init-pin;
# set-pin changes it; errors read as sentences with their code.
start_keymgrd --max-pin-failures 3
host pkcs11-tool --module "$COYEU_MODULE" --slot-index 0 --init-token --label half --so-pin 87654321 \
	>/dev/null 2>&1 || fail "pkcs11-tool --init-token"
"$KEYMGR" token list | grep -q "half .*not set\|half .*uninit\|half" || fail "no half-initialised token"
"$KEYMGR" key list --token half --pin 1234 >/dev/null 2>err && fail "a token without a user PIN let a login in"
grep -q "has no user PIN yet.*token init-pin.*(CKR_USER_PIN_NOT_INITIALIZED)" err ||
	{ cat err >&2; fail "no sentence for a token without a user PIN"; }
"$KEYMGR" token init-pin --token half --so-pin 87654321 --new-pin 1234 >/dev/null || fail "token init-pin"
"$KEYMGR" key list --token half --pin 1234 >/dev/null || fail "the user PIN init-pin set does not log in"
"$KEYMGR" token set-pin --token half --pin 1234 --new-pin 5678 >/dev/null || fail "token set-pin"
"$KEYMGR" key list --token half --pin 1234 >/dev/null 2>err && fail "the old PIN still logs in"
grep -q "wrong PIN.*(CKR_PIN_INCORRECT)" err || { cat err >&2; fail "no sentence for a wrong PIN"; }
"$KEYMGR" key list --token half --pin 1111 >/dev/null 2>&1 && fail "a wrong PIN logged in"
"$KEYMGR" key list --token half --pin 2222 >/dev/null 2>err && fail "a wrong PIN logged in"
"$KEYMGR" key list --token half --pin 5678 >/dev/null 2>err && fail "a locked PIN logged in"
grep -q "locked after too many wrong tries.*(CKR_PIN_LOCKED)" err || { cat err >&2; fail "no sentence for a locked PIN"; }
"$KEYMGR" token init-pin --token half --so-pin 87654321 --new-pin 4321 >/dev/null || fail "unblocking with init-pin"
"$KEYMGR" key list --token half --pin 4321 >/dev/null || fail "the unblocked PIN does not log in"
"$KEYMGR" token init-pin --token half --so-pin 00000000 --new-pin 1 2>err && fail "a wrong SO PIN set a PIN"
grep -q "wrong SO PIN" err || { cat err >&2; fail "no sentence for a wrong SO PIN"; }
stop_keymgrd
echo "PINs: init-pin finished a half-initialised token and unblocked a locked PIN; set-pin changed it; sentences with codes"

# token delete: everything of the token goes, another token stays; refused
# while a program holds a session, to somebody without the role, and
# without --yes when there is no terminal to confirm on.
start_keymgrd
"$KEYMGR" token init --label gone --so-pin 87654321 --pin 1234 >/dev/null || fail "token init gone"
"$KEYMGR" token init --label kept --so-pin 87654321 --pin 1234 >/dev/null || fail "token init kept"
for t in gone kept; do
	"$KEYMGR" key generate --token $t --pin 1234 --type ec:P-256 --label k >/dev/null || fail "key on $t"
	"$KEYMGR" key csr --token $t --pin 1234 --label k --cn "$t" --out $t.csr >/dev/null 2>&1 ||
		fail "csr on $t"
	openssl req -in $t.csr -noout 2>/dev/null || fail "$t.csr"
done
"$KEYMGR" token delete --token gone </dev/null >/dev/null 2>err && fail "deleted without --yes or a terminal"
[ "$(st "$KEYMGR" token delete --token gone </dev/null)" = 2 ] || fail "no --yes: not a usage error"
grep -q -- "--yes" err || { cat err >&2; fail "the refusal does not name --yes"; }
host timeout 60 "$P11PROBE" "$COYEU_MODULE" loop gone 1234 3 >loop.out 2>&1 &
probe=$!
for _ in $(seq 50); do grep -q "^sig 0 " loop.out && break; sleep 0.1; done
grep -q "^sig 0 CKR_OK" loop.out || { cat loop.out >&2; fail "the probe did not sign on gone"; }
"$KEYMGR" token delete --token gone --yes >/dev/null 2>err && fail "deleted with a session open"
grep -q "open in a program.*(CKR_SESSION_EXISTS)" err || { cat err >&2; fail "no sentence for a session open"; }
wait "$probe" || { cat loop.out >&2; fail "the probe failed while delete was refused"; }
chmod 0755 "$TMP" "$TMP/run"
chmod 0666 "$COYEU_SOCKET"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$KEYMGR" token delete --token gone --yes >/dev/null 2>err &&
	fail "user nobody deleted a token"
# nobody sees no token at all; the daemon would refuse it the deletion.
grep -q "CKR_ACTION_PROHIBITED\|no token labelled 'gone'" err || { cat err >&2; fail "no reason for refusing nobody"; }
"$KEYMGR" token delete --token gone --yes >out || fail "token delete"
grep -q "token 'gone' (serial [0-9a-f]*) deleted" out || { cat out >&2; fail "token delete said $(cat out)"; }
"$KEYMGR" token list >list
grep -q "^[0-9]* *gone " list && fail "gone still listed"
grep -q "^[0-9]* *kept " list || fail "kept went too"
"$KEYMGR" key list --token gone --pin 1234 >/dev/null 2>&1 && fail "gone's keys still listed"
"$KEYMGR" key list --token kept --pin 1234 | grep -q " k " || fail "kept's key went too"
"$KEYMGR" audit list --op token-delete | grep -q "token gone serial" || fail "the delete is not audited"
"$KEYMGR" token init --label gone --so-pin 11223344 --pin 5678 >/dev/null || fail "gone made again"
"$KEYMGR" key list --token gone --pin 5678 | grep -q " k " && fail "the new gone has the old one's key"
"$KEYMGR" token delete --token nosuch --yes >/dev/null 2>&1 && fail "deleted a token that is not there"
stop_keymgrd
echo "token delete: its keys and records gone, the other token kept; refused with a session open, to nobody, without --yes"

# Listings: --json from jansson for every one (valid with odd bytes), and
# tables that fit the terminal (COLUMNS, as a terminal would say) with
# serials and ids whole; piped without COLUMNS nothing is cut.
start_keymgrd
long="Sở Văn hóa, Thể thao và Du lịch tỉnh Điện Biên"
"$KEYMGR" token init --label "Sở Y tế tỉnh Điện Biên" --so-pin 87654321 --pin 1234 >/dev/null || fail "token init"
"$KEYMGR" holder add --id DB-LONG --name "Nguyễn Thị Thanh Hương Giang" --agency "$long" \
	--unit "Phòng Quản lý văn hóa và gia đình" --pin-out pin.txt >/dev/null || fail "holder add"
"$KEYMGR" access grant --uid 4242 --holder DB-LONG >/dev/null || fail "access grant"
echo "auditor-passphrase" | "$KEYMGR" account add kiem-tra --role auditor --uid 4243 >/dev/null || fail "account add"
for l in "token list" "holder list" "account list" "access list" "audit list"; do
	# shellcheck disable=SC2086
	"$KEYMGR" $l --json >l.json || fail "$l --json"
	perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>); exit(ref $j eq "ARRAY" && @$j ? 0 : 1)' \
		<l.json || { cat l.json >&2; fail "$l --json is not a JSON array of rows"; }
	# shellcheck disable=SC2086
	COLUMNS=80 "$KEYMGR" $l >narrow.txt || fail "$l"
	perl -CSD -MUnicode::Normalize -ne 'if (length(NFC($_)) > 81) { print STDERR "too wide: $_"; exit 1 }' narrow.txt || { cat narrow.txt >&2; fail "$l is wider than 80 columns"; }
	# shellcheck disable=SC2086
	"$KEYMGR" $l >wide.txt
done
"$KEYMGR" holder list | grep -qF "$long" || fail "piped, the agency was cut"
COLUMNS=80 "$KEYMGR" holder list | grep -q "…" || fail "nothing was cut to fit 80 columns"
serial=$("$KEYMGR" token list --json | perl -MJSON::PP -e 'local $/; print JSON::PP->new->utf8->decode(<STDIN>)->[0]{serial}')
COLUMNS=40 "$KEYMGR" token list | grep -q "$serial" || fail "the serial was cut to fit"
"$KEYMGR" account list --json | perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>);
	exit((grep { $_->{name} eq "kiem-tra" && $_->{uid} == 4243 && $_->{role} eq "auditor" } @$j) == 1 ? 0 : 1)' ||
	fail "account list --json: the account"
"$KEYMGR" access list --json | perl -MJSON::PP -e 'local $/; my $j = JSON::PP->new->utf8->decode(<STDIN>);
	exit((grep { $_->{holder} eq "DB-LONG" && $_->{uid} == 4242 && $_->{kind} eq "uid" } @$j) == 1 ? 0 : 1)' ||
	fail "access list --json: the rule"
stop_keymgrd
echo "listings: JSON arrays from jansson, tables within 80 columns with serials whole, nothing cut when piped"

# Progress of bulk commands on a terminal (script gives them one), and
# none when standard error is a file.
if command -v script >/dev/null; then
	start_keymgrd
	printf 'id,name,agency\nDB-P1,Lò Văn Một,Sở Y tế\nDB-P2,Lò Văn Hai,Sở Y tế\nDB-P3,Lò Văn Ba,Sở Y tế\n' >p.csv
	script -qec "'$KEYMGR' holder import p.csv --pin-out pins.csv" /dev/null >tty.txt 2>&1 ||
		{ cat tty.txt >&2; fail "holder import on a terminal"; }
	grep -q "holder import: 3/3 (100%)" tty.txt || { cat -A tty.txt >&2; fail "no progress of holder import"; }
	mkdir certs
	for i in 1 2 3; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -days 30 \
			-subj "/CN=p$i/O=Sở Y tế" -out certs/p$i.pem 2>/dev/null || fail "certificate p$i"
	done
	"$KEYMGR" token init --label prog --so-pin 87654321 --pin 1234 >/dev/null || fail "token init prog"
	script -qec "'$KEYMGR' cert import --token prog --pin 1234 certs" /dev/null >tty.txt 2>&1 ||
		{ cat tty.txt >&2; fail "cert import on a terminal"; }
	grep -q "cert import: reading: 3" tty.txt || { cat -A tty.txt >&2; fail "no progress of cert import"; }
	"$KEYMGR" holder import p.csv --pin-out pins2.csv >/dev/null 2>err.txt && fail "imported twice"
	grep -q "$(printf '\r')" err.txt && fail "progress written to a file"
	stop_keymgrd
	echo "bulk commands: progress on a terminal, none in a file"
fi
