#!/bin/sh
# ssh: ssh-keygen -D lists the token's keys; an sshd of our own on
# 127.0.0.1 accepts a login with ssh -I coyeu-pkcs11.so (the PIN given
# through SSH_ASKPASS, as a desktop would).
. "$(dirname "$0")/lib.sh"

SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] && command -v ssh >/dev/null || fail "openssh-server/openssh-client are not installed"
start_keymgrd
"$KEYMGR" token init --label ssh-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token ssh-token --pin 1234 --type rsa:2048 --label ssh-rsa --id 01 || fail "rsa key"
"$KEYMGR" key generate --token ssh-token --pin 1234 --type ec:P-256 --label ssh-ec --id 02 || fail "ec key"

host ssh-keygen -D "$COYEU_MODULE" >"$TMP/authorized_keys" 2>"$TMP/keygen.err" || { cat "$TMP/keygen.err" >&2; fail "ssh-keygen -D"; }
grep -q "^ssh-rsa " "$TMP/authorized_keys" && grep -q "^ecdsa-sha2-nistp256 " "$TMP/authorized_keys" ||
	{ cat "$TMP/authorized_keys" >&2; fail "ssh-keygen -D does not list both keys"; }
echo "ssh-keygen -D: $(wc -l <"$TMP/authorized_keys") public keys"

ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key" || fail "host key"
mkdir -p /run/sshd
port=$((20000 + $$ % 20000))
cat >"$TMP/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $TMP/host_key
PidFile $TMP/sshd.pid
AuthorizedKeysFile $TMP/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
LogLevel VERBOSE
CONF
"$SSHD" -f "$TMP/sshd_config" -D -e 2>"$TMP/sshd.log" &
SSHD_PID=$!
stop_sshd() { kill "$SSHD_PID" 2>/dev/null || true; wait "$SSHD_PID" 2>/dev/null || true; }
trap 'stop_sshd; cleanup' EXIT
for _ in $(seq 50); do
	grep -q "Server listening" "$TMP/sshd.log" 2>/dev/null && break
	sleep 0.1
done

printf '#!/bin/sh\necho 1234\n' >"$TMP/askpass"
chmod 0700 "$TMP/askpass"
user=$(id -un)
SSH_ASKPASS="$TMP/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
	host timeout 60 ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o PasswordAuthentication=no -I "$COYEU_MODULE" -p "$port" "$user@127.0.0.1" \
	'echo coyeu-login-ok' </dev/null >"$TMP/ssh.out" 2>"$TMP/ssh.err" || {
	cat "$TMP/ssh.err" "$TMP/sshd.log" >&2
	fail "ssh login with the token key"
}
grep -q coyeu-login-ok "$TMP/ssh.out" || fail "the remote command did not run"
grep -q "Accepted publickey" "$TMP/sshd.log" || fail "sshd did not log a public-key login"
echo "ssh -I coyeu-pkcs11.so: $(grep -o 'Accepted publickey for [^ ]* from [^ ]*' "$TMP/sshd.log")"
stop_sshd
stop_keymgrd
echo PASS
