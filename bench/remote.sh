#!/bin/sh
# bench/remote.sh - round trips and seconds over a delayed link (make bench;
# BENCH_ONLY=remote alone): coyeu's module to keymgrd over TLS, against
# p11-kit's client and server (p11-kit server serving a SoftHSM2 token on a
# UNIX socket, exposed over TCP with socat), both through the same delay
# proxy (tests/delay_proxy.c) at 0, 50 and 150 ms each way (BENCH_DELAYS).
# Per delay: a whole pkcs11-tool --login --sign run (process start to
# signature written) and BENCH_SIGNS (5) signatures in a running program
# (C_SignInit + C_Sign each). The proxy holds data, not TCP handshakes: a
# connection's handshake costs no delay here and is counted as one round
# trip, unless its first data came in the SYN (TCP Fast Open: server Fast
# Open is turned on for the run, bit 2 of net.ipv4.tcp_fastopen, and back
# after). Prints a Markdown table; bench-remote.csv beside it in BENCH_DIR.
set -eu
: "${BUILD:?}" "${BENCH_DIR:?}"
MODULE="$BUILD/.libs/coyeu-pkcs11.so"
PROBE="$BUILD/tests/p11probe"
PROXY="$BUILD/tests/delay_proxy"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
CLIENT=$(ls /usr/lib/*/pkcs11/p11-kit-client.so 2>/dev/null | head -1)
DELAYS=${BENCH_DELAYS:-0 50 150}
SIGNS=${BENCH_SIGNS:-5}
D="$BENCH_DIR/remote"
mkdir -p "$D"
PIDS=
fastopen=/proc/sys/net/ipv4/tcp_fastopen
tfo_was=$(cat "$fastopen" 2>/dev/null || echo "")
[ -n "$tfo_was" ] && echo $((tfo_was | 3)) >"$fastopen" 2>/dev/null || tfo_was=
stop_all() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	PIDS=
	[ -z "$tfo_was" ] || echo "$tfo_was" >"$fastopen" 2>/dev/null || true
}
trap stop_all EXIT INT TERM
[ -n "$CLIENT" ] && command -v socat >/dev/null && command -v certtool >/dev/null ||
	{ echo "bench remote: p11-kit-client.so, socat and certtool are needed (scripts/install-deps)" >&2; exit 1; }
BASE=$((30000 + $$ % 20000))

# ---- coyeu: keymgrd with a TLS listener, an official's holder token ----
key() { certtool --generate-privkey --key-type ecdsa --outfile "$1" 2>/dev/null; }
key "$D/ca.key"
printf 'cn = "bench CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$D/ca.tmpl"
certtool --generate-self-signed --load-privkey "$D/ca.key" --template "$D/ca.tmpl" --outfile "$D/ca.pem" 2>/dev/null
for n in server official; do
	key "$D/$n.key"
	if [ $n = server ]; then
		printf 'cn = "localhost"\ndns_name = "localhost"\ntls_www_server\nexpiration_days = 2\n' >"$D/$n.tmpl"
	else
		printf 'cn = "Bench Official"\norganization = "Bench"\ntls_www_client\nexpiration_days = 2\n' >"$D/$n.tmpl"
	fi
	certtool --generate-certificate --load-privkey "$D/$n.key" --load-ca-certificate "$D/ca.pem" \
		--load-ca-privkey "$D/ca.key" --template "$D/$n.tmpl" --outfile "$D/$n.pem" 2>/dev/null
done
TLS_PORT=$BASE
"$BUILD/keymgrd/keymgrd" --foreground --data-dir "$D/data" --socket "$D/keymgrd.sock" --config /dev/null \
	--policy-interval 0 --listen "tls://127.0.0.1:$TLS_PORT" --tls-cert "$D/server.pem" --tls-key "$D/server.key" \
	--tls-client-ca "$D/ca.pem" 2>"$D/keymgrd.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do [ -S "$D/keymgrd.sock" ] && break; sleep 0.1; done
K="$BUILD/keymgr/keymgr --socket $D/keymgrd.sock"
$K holder add --id BENCH --name "Bench Official" --agency Bench --key ec:P-256 --pin-out "$D/pin" >/dev/null
$K access grant --cert "CN=Bench Official,O=Bench" --holder BENCH >/dev/null
pin=$(tail -1 "$D/pin" | awk -F, '{print $NF}')

# ---- p11-kit: its server on a SoftHSM2 token, over TCP with socat ----
mkdir -p "$D/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$D" >"$D/softhsm2.conf"
export SOFTHSM2_CONF="$D/softhsm2.conf"
softhsm2-util --init-token --free --label BENCH --so-pin 87654321 --pin 24681357 >/dev/null
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label BENCH --login --pin 24681357 --keypairgen \
	--key-type EC:prime256v1 --label signing >/dev/null 2>&1
p11-kit server -f --name="$D/p11kit.sock" --provider "$SOFTHSM_MODULE" "pkcs11:token=BENCH" >/dev/null 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do [ -S "$D/p11kit.sock" ] && break; sleep 0.1; done
P11_TCP=$((BASE + 1))
socat "TCP-LISTEN:$P11_TCP,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$D/p11kit.sock" 2>/dev/null &
PIDS="$PIDS $!"

# One measurement: NAME DELAY; sets the figures of that row.
measure() { # SYSTEM DELAY
	sys=$1 delay=$2
	port=$((BASE + 10 + delay))
	[ "$sys" = p11-kit ] && port=$((port + 1000))
	target=$TLS_PORT
	[ "$sys" = p11-kit ] && target=$P11_TCP
	stats="$D/stats-$sys-$delay"
	"$PROXY" "$port" 127.0.0.1 "$target" "$delay" "$stats" >"$D/proxy.out" 2>&1 &
	ppid=$!
	for _ in $(seq 50); do grep -q ready "$D/proxy.out" 2>/dev/null && break; sleep 0.05; done
	if [ "$sys" = coyeu ]; then
		printf '[client]\nserver = tls://localhost:%s\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n' "$port" \
			"$D/ca.pem" "$D/official.pem" "$D/official.key" >"$D/client.conf"
		env="COYEU_CONF=$D/client.conf"
		mod=$MODULE
		tok=BENCH
	else
		socat "UNIX-LISTEN:$D/client-$delay.sock,fork" "TCP:127.0.0.1:$port" 2>/dev/null &
		spid=$!
		for _ in $(seq 50); do [ -S "$D/client-$delay.sock" ] && break; sleep 0.05; done
		env="P11_KIT_SERVER_ADDRESS=unix:path=$D/client-$delay.sock"
		mod=$CLIENT
		tok=BENCH
	fi
	c0=$(awk '$1 == "handshakes" { print $2 }' "$stats") t0=$(awk '$1 == "turns" { print $2 }' "$stats")
	s0=$(date +%s%N)
	env -u COYEU_SOCKET $env pkcs11-tool --module "$mod" --token-label "$tok" --login --pin 24681357 --sign \
		-m ECDSA -i "$D/digest" -o "$D/sig" >/dev/null 2>&1 || echo "bench remote: $sys pkcs11-tool failed" >&2
	s1=$(date +%s%N)
	c1=$(awk '$1 == "handshakes" { print $2 }' "$stats") t1=$(awk '$1 == "turns" { print $2 }' "$stats")
	run_rt=$((c1 - c0 + t1 - t0))
	run_s=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	env -u COYEU_SOCKET $env "$PROBE" "$mod" signs "$tok" 24681357 "$SIGNS" "$stats" >"$D/signs.out" 2>&1 ||
		echo "bench remote: $sys signatures failed" >&2
	sig_rt=$(awk -v n="$SIGNS" '$1 == "turns" { printf "%.1f", $2 / n }' "$D/signs.out")
	sig_s=$(awk -v n="$SIGNS" '$1 == "seconds" { printf "%.3f", $2 / n }' "$D/signs.out")
	kill "$ppid" 2>/dev/null || true
	[ "$sys" = p11-kit ] && kill "$spid" 2>/dev/null || true
}

head -c 32 /dev/urandom >"$D/digest"
# The official's first PIN is changed once, to what the runs give.
printf '[client]\nserver = tls://localhost:%s\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n' "$TLS_PORT" \
	"$D/ca.pem" "$D/official.pem" "$D/official.key" >"$D/client.conf"
env -u COYEU_SOCKET COYEU_CONF="$D/client.conf" pkcs11-tool --module "$MODULE" --token-label BENCH --login \
	--pin "$pin" --change-pin --new-pin 24681357 >/dev/null 2>&1

echo "| one-way delay | workload | coyeu (TLS) round trips | p11-kit round trips | coyeu s | p11-kit s | p11-kit / coyeu (time) |"
echo "|---|---|---|---|---|---|---|"
echo "delay,workload,coyeu_round_trips,p11kit_round_trips,coyeu_seconds,p11kit_seconds,ratio" >"$BENCH_DIR/bench-remote.csv"
for delay in $DELAYS; do
	measure coyeu "$delay"
	c_run_rt=$run_rt c_run_s=$run_s c_sig_rt=$sig_rt c_sig_s=$sig_s
	measure p11-kit "$delay"
	for w in run sig; do
		if [ $w = run ]; then
			name="pkcs11-tool --login --sign run" a=$c_run_rt b=$run_rt x=$c_run_s y=$run_s
		else
			name="one signature, running program" a=$c_sig_rt b=$sig_rt x=$c_sig_s y=$sig_s
		fi
		r=$(awk -v x="$x" -v y="$y" 'BEGIN { if (x > 0) printf "%.2f", y / x; else print "-" }')
		echo "| $delay ms | $name | $a | $b | $x | $y | $r |"
		echo "$delay,$name,$a,$b,$x,$y,$r" >>"$BENCH_DIR/bench-remote.csv"
	done
done
stop_all
