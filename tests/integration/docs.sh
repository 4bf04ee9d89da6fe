#!/bin/sh
# The manuals say what the programs do: every command keymgr --help lists
# has its entry in keymgr(1), every option an entry names is one the
# command takes; every keymgr example of keymgr(1), the admin guide and the
# README parses (keymgr's own option parser, with no keymgrd to reach: a
# usage error exits 2, anything else got past the parser); the keymgrd.conf
# of keymgrd(8) passes keymgrd --check-config, and every option of
# keymgrd(8) is one keymgrd takes. The walkthroughs themselves run for real
# in admin-guide.sh.
. "$(dirname "$0")/lib.sh"
: "${TOP_SRCDIR:?TOP_SRCDIR not set}"
cd "$TMP"
MAN1=$TOP_SRCDIR/docs/man/keymgr.1 MAN8=$TOP_SRCDIR/docs/man/keymgrd.8
GUIDE=$TOP_SRCDIR/docs/admin-guide.md README=$TOP_SRCDIR/README.md
for f in "$MAN1" "$MAN8" "$GUIDE" "$README"; do [ -f "$f" ] || fail "$f is missing"; done
export COYEU_SOCKET="$TMP/nobody-listens.sock" COYEU_CONF=/nonexistent KEYMGR_PASSPHRASE_FILE=
unset COYEU_SERVER

# roff to text: \- is -, font changes go.
deroff() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\e/\\/g' -e 's/\\(em/--/g' "$@"; }
deroff "$MAN1" >keymgr.1.txt
deroff "$MAN8" >keymgrd.8.txt

# 1. Commands and their options, keymgr(1) against keymgr.
"$KEYMGR" --help >help.txt
sed -n '/^commands:/,/^$/p' help.txt | awk '/^  [a-z]/ { print $1 ($2 ~ /^[a-z][a-z-]*$/ ? " " $2 : "") }' |
	sort -u >commands.txt
[ -s commands.txt ] || fail "keymgr --help lists no commands"
missing=0
while read -r g c; do
	grep -q "^\.B[IR]\? \"\?$g${c:+ $c}\( \|\"\|$\)" keymgr.1.txt || { echo "keymgr(1) has no entry for keymgr $g $c" >&2; missing=$((missing + 1)); }
done <commands.txt
[ "$missing" = 0 ] || fail "$missing command(s) keymgr has are not in keymgr(1)"
bad=0
grep "^\.B[IR]\? \"\?[a-z]" keymgr.1.txt | tr -d '"' | while read -r _ g c rest; do
	if grep -Fqx "$g $c" commands.txt; then
		set -- "$g" "$c"
	elif grep -Fqx "$g" commands.txt; then
		set -- "$g"
		rest="$c $rest"
	else
		continue
	fi
	"$KEYMGR" "$@" --help >usage.txt 2>&1 || { echo "keymgr $* --help failed" >&2; exit 1; }
	for o in $(printf '%s\n' "$rest" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -q -- "$o\b" usage.txt || { echo "keymgr(1): keymgr $* $o: keymgr does not take $o" >&2; exit 1; }
	done
done || fail "keymgr(1) names options keymgr does not take"
echo "keymgr(1): an entry for each of the $(wc -l <commands.txt) commands; every option it names is taken"

# 2. Every keymgr example parses. A shell line is cut at what the shell
# does around keymgr (pipes, redirections, comments); $(...), variables
# and ~ become a word of their own.
perl -e '
	use strict; use Text::ParseWords;
	my @lines;
	for my $f (@ARGV) {
		open(my $h, "<", $f) or die "$f: $!";
		my ($in, $md) = (0, $f =~ /\.md$/);
		my $cont = "";
		while (my $l = <$h>) {
			chomp $l;
			if ($md) { if ($l =~ /^\s*```/) { $in = !$in; next; } }
			else { $l =~ s/\\-/-/g; $l =~ s/\\f[BIRP]//g; $l =~ s/\\e/\\/g; $l =~ s/\\\\/\\/g;
			       if ($l =~ /^\.nf/) { $in = 1; next; } if ($l =~ /^\.fi/) { $in = 0; next; } }
			next unless $in;
			$l = $cont . $l; $cont = "";
			if ($l =~ s/\\\s*$/ /) { $cont = $l; next; }
			$l =~ s/^\s*\$\s+//;
			push @lines, "$f\t$l" if $l =~ /^\s*keymgr\s/;
		}
	}
	for (@lines) {
		my ($f, $l) = split /\t/, $_, 2;
		$l =~ s/\$\([^)]*\)/x/g; $l =~ s/\$\{?[A-Za-z_]+\}?/x/g; $l =~ s/~\//\/nonexistent\//g;
		$l =~ s/\s+#.*$//;
		my @w = shellwords($l);
		my @cmd;
		for my $w (@w) { last if $w =~ /^(\||\|\||&&|;|>|>>|<|2>|&)$/ || $w =~ /^[0-9]?[<>]/; push @cmd, $w; }
		shift @cmd;
		print join("\x1f", $f, @cmd), "\n";
	}' "$MAN1" "$GUIDE" "$README" >examples.txt || fail "cannot read the examples"
n=$(wc -l <examples.txt)
[ "$n" -ge 20 ] || fail "only $n keymgr examples found"
bad=0
while IFS= read -r line; do
	# shellcheck disable=SC2086
	old=$IFS; IFS=$(printf '\037'); set -- $line; IFS=$old
	src=$1; shift
	st=0
	timeout 10 "$KEYMGR" "$@" </dev/null >out.txt 2>err.txt || st=$?
	if [ "$st" = 2 ] || grep -q "bad option\|unknown command\|unrecognized option\|unexpected argument" err.txt; then
		echo "$(basename "$src"): keymgr $*: exit $st: $(head -1 err.txt)" >&2
		bad=$((bad + 1))
	fi
done <examples.txt
[ "$bad" = 0 ] || fail "$bad of $n examples do not parse"
echo "examples: all $n keymgr lines of keymgr(1), the admin guide and the README parse"

# 3. keymgrd(8): its options are keymgrd's, its keymgrd.conf checks.
"$KEYMGRD" --help >dhelp.txt 2>&1 || true
for o in $(grep "^\.BI\? \\\\\?-" "$MAN8" | deroff | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
	grep -q -- "$o\b" dhelp.txt || fail "keymgrd(8) names $o, which keymgrd --help does not list"
done
sed -n '/^\.nf/,/^\.fi/p' "$MAN8" | deroff | sed '/^\.nf/d; /^\.fi/d' >keymgrd.conf
grep -q "^\[keymgrd\]" keymgrd.conf || fail "keymgrd(8) shows no keymgrd.conf"
# What it names outside the test: its user and directories, made here.
user=$(sed -n 's/^user = //p' keymgrd.conf)
if [ -n "$user" ] && ! id "$user" >/dev/null 2>&1; then
	useradd -r -M -s /usr/sbin/nologin "$user" || fail "useradd $user"
	EXTRA_CLEANUP="userdel $user"
fi
sed -i -e "s|^data_dir = .*|data_dir = $TMP/data|" -e "s|^outbox = .*|outbox = $TMP/outbox|" \
	-e "s|^crl_dir = .*|crl_dir = $TMP/crl|" -e "s|^socket = .*|socket = $TMP/k.sock|" keymgrd.conf
"$KEYMGRD" --config keymgrd.conf --check-config >check.txt 2>&1 || { cat keymgrd.conf check.txt >&2; fail "keymgrd(8)'s keymgrd.conf"; }
grep -q "configuration OK" check.txt || { cat check.txt >&2; fail "keymgrd --check-config said no OK"; }
echo "keymgrd(8): its options are keymgrd's; its keymgrd.conf passes --check-config"
