#!/usr/bin/perl
# sd-fake.pl - what systemd does for a service, for tests on a machine
# where systemd is not PID 1:
#   sd-fake.pl listen SOCKET CMD...
#       binds and listens on the UNIX stream socket SOCKET (mode 0666),
#       passes it as fd 3 with LISTEN_FDS=1 and LISTEN_PID set to CMD's pid
#       (this process, which becomes CMD), and execs CMD
#   sd-fake.pl notify SOCKET OUT SECS
#       receives the datagrams sent to SOCKET (NOTIFY_SOCKET) for SECS
#       seconds at most, or until one says STOPPING=1, appending each to
#       OUT, one line per assignment
use strict;
use warnings;
use Socket;
use POSIX qw(dup2);

my $mode = shift @ARGV // '';
if ($mode eq 'listen') {
	my $path = shift @ARGV;
	@ARGV or die "usage: sd-fake.pl listen SOCKET CMD...\n";
	$^F = 255; # no close-on-exec for the sockets made below
	unlink $path;
	socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
	bind($s, pack_sockaddr_un($path)) or die "bind $path: $!\n";
	chmod 0666, $path;
	listen($s, 64) or die "listen: $!\n";
	if (fileno($s) != 3) {
		dup2(fileno($s), 3) or die "dup2: $!\n";
		close $s;
	}
	$ENV{LISTEN_FDS} = 1;
	$ENV{LISTEN_PID} = $$;
	exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n";
} elsif ($mode eq 'notify') {
	my ($path, $out, $secs) = @ARGV;
	unlink $path;
	socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
	bind($s, pack_sockaddr_un($path)) or die "bind $path: $!\n";
	open(my $fh, '>>', $out) or die "$out: $!\n";
	$fh->autoflush(1);
	my $end = time + $secs;
	while (time < $end) {
		my $rin = '';
		vec($rin, fileno($s), 1) = 1;
		next unless select(my $rout = $rin, undef, undef, 0.5) > 0;
		my $msg;
		defined(recv($s, $msg, 4096, 0)) or last;
		print $fh "$_\n" for split /\n/, $msg;
		last if $msg =~ /^STOPPING=1$/m;
	}
	unlink $path;
} else {
	die "usage: sd-fake.pl listen SOCKET CMD... | notify SOCKET OUT SECS\n";
}
