#!/bin/sh
# Holder tokens, roles and access rules, with real local users (made here,
# removed at the end): an official sees and signs with their own token
# only, after the forced change of their first PIN; another official sees
# nothing of it and cannot use its session or key numbers; a uid with no
# rule sees no slot; the auditor reads and verifies the trail and changes
# nothing; the administrator rotates and revokes a holder's key and resets
# a locked PIN but never signs with a holder's key.
. "$(dirname "$0")/lib.sh"
: "${P11PROBE:?P11PROBE not set}"
command -v useradd >/dev/null && command -v setpriv >/dev/null || fail "useradd and setpriv are needed"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to make local users"; exit 77; }

sfx=$$
G=cyt-g$sfx
A=cyt-a$sfx B=cyt-b$sfx AUD=cyt-aud$sfx ADM=cyt-adm$sfx
EXTRA_CLEANUP="for u in $A $B $AUD $ADM; do userdel \$u 2>/dev/null; done; groupdel $G 2>/dev/null"
groupadd "$G" || fail "groupadd"
for u in $A $B $AUD $ADM; do
	useradd -M -N -g "$G" -d /nonexistent -s /usr/sbin/nologin "$u" || fail "useradd $u"
done
GID=$(getent group "$G" | cut -d: -f3)
as() { u=$1; shift; setpriv --reuid="$u" --regid="$G" --init-groups "$@"; }
probe() { u=$1; shift; host as "$u" timeout 60 "$P11PROBE" "$COYEU_MODULE" "$@"; }
chmod 0755 "$TMP"
mkdir "$TMP/out"
chown "$ADM:$G" "$TMP/out"

start_keymgrd --socket-group "$G" --max-pin-failures 3
[ "$(stat -c %G:%a "$COYEU_SOCKET")" = "$G:660" ] || fail "socket is $(stat -c %G:%a "$COYEU_SOCKET")"

# Root, on a store with no administrator account, sets the unit up.
AGENCY="Sở Văn hóa, Thể thao và Du lịch"
"$KEYMGR" holder add --id DB-A --name "Lò Văn An" --agency "$AGENCY" --key ec:P-256 --pin-out "$TMP/pin-a" ||
	fail "holder add A"
"$KEYMGR" holder add --id DB-B --name "Quàng Thị Bích" --agency "$AGENCY" --key ec:P-256 --pin-out "$TMP/pin-b" ||
	fail "holder add B"
[ "$(stat -c %a "$TMP/pin-a")" = 600 ] || fail "the PIN file is not 0600"
pin_a=$(tail -1 "$TMP/pin-a" | awk -F, '{print $NF}')
pin_b=$(tail -1 "$TMP/pin-b" | awk -F, '{print $NF}')
"$KEYMGR" access grant --uid "$A" --holder DB-A || fail "grant A"
"$KEYMGR" access grant --uid "$B" --holder DB-B || fail "grant B"
echo "auditor-passphrase" | "$KEYMGR" account add auditor1 --role auditor --uid "$AUD" || fail "account add auditor"
echo "admin-passphrase-1" | "$KEYMGR" account add admin1 --role admin --uid "$ADM" || fail "account add admin"
"$KEYMGR" holder list >/dev/null 2>&1 && fail "root is still the administrator after an administrator account exists"
for u in $AUD $ADM; do
	echo "$( [ $u = $AUD ] && echo auditor-passphrase || echo admin-passphrase-1)" >"$TMP/$u.pass"
	chown "$u" "$TMP/$u.pass"
	chmod 0400 "$TMP/$u.pass"
done
adm() { as "$ADM" "$KEYMGR" --passphrase-file "$TMP/$ADM.pass" "$@"; }
aud() { as "$AUD" "$KEYMGR" --passphrase-file "$TMP/$AUD.pass" "$@"; }

# An official: their own token only, and a new PIN before anything else.
probe "$A" slots | grep -qx "slots 1" || fail "official A does not see exactly one token"
probe "$A" sign DB-A "$pin_a" >"$TMP/first" && fail "signed with the initial PIN"
grep -qx "C_Login CKR_OK" "$TMP/first" && grep -qx "C_FindObjectsInit CKR_PIN_EXPIRED" "$TMP/first" ||
	{ cat "$TMP/first" >&2; fail "the initial PIN did not force a change"; }
host as "$A" pkcs11-tool --module "$COYEU_MODULE" --token-label DB-A --login --pin "$pin_a" \
	--change-pin --new-pin 24681357 >"$TMP/chpin" 2>&1 || { cat "$TMP/chpin" >&2; fail "PIN change"; }
probe "$A" sign DB-A 24681357 >"$TMP/sign-a" || { cat "$TMP/sign-a" >&2; fail "official A cannot sign"; }
read -r _ S_A _ K_A <<EOS
$(grep "^session " "$TMP/sign-a")
EOS
echo "official A signed (session $S_A key $K_A)"

# Another official: nothing of A's, not even with A's numbers.
probe "$B" slots | grep -qx "slots 1" || fail "official B does not see exactly one token"
probe "$B" sign DB-A 24681357 | grep -q "no token DB-A" || fail "official B found A's token"
probe "$B" use "$S_A" "$K_A" | grep -qx "C_SignInit CKR_SESSION_HANDLE_INVALID" ||
	fail "official B used A's session number"
# A uid in the socket's group with no rule: zero slots, not an error.
n=$(host setpriv --reuid=65534 --regid=65534 --groups "$GID" timeout 60 "$P11PROBE" "$COYEU_MODULE" slots || true)
echo "$n" | grep -qx "slots 0" || { echo "$n" >&2; fail "a uid with no rule sees slots"; }

# Three wrong PINs lock B; the administrator gives a new one-time PIN.
for _ in 1 2 3; do probe "$B" sign DB-B 00000000 >/dev/null || true; done
probe "$B" sign DB-B "$pin_b" | grep -qx "C_Login CKR_PIN_LOCKED" || fail "B's PIN is not locked"
adm holder reset-pin --id DB-B --pin-out "$TMP/out/pin-b2" || fail "admin reset-pin"
pin_b2=$(tail -1 "$TMP/out/pin-b2" | awk -F, '{print $NF}')
probe "$B" sign DB-B "$pin_b2" >"$TMP/b2" || true
grep -qx "C_Login CKR_OK" "$TMP/b2" && grep -qx "C_FindObjectsInit CKR_PIN_EXPIRED" "$TMP/b2" ||
	{ cat "$TMP/b2" >&2; fail "the reset PIN did not log in as a PIN to change"; }

# The same through PKCS#11: the SO of a holder token is the administrator,
# with the account's passphrase (C_InitPIN sets a one-time PIN).
host as "$ADM" pkcs11-tool --module "$COYEU_MODULE" --token-label DB-B --login --login-type so \
	--so-pin admin-passphrase-1 --init-pin --new-pin 13572468 >"$TMP/initpin" 2>&1 ||
	{ cat "$TMP/initpin" >&2; fail "the administrator's C_InitPIN"; }
probe "$B" sign DB-B 13572468 >"$TMP/b3" || true
grep -qx "C_FindObjectsInit CKR_PIN_EXPIRED" "$TMP/b3" || { cat "$TMP/b3" >&2; fail "C_InitPIN did not set a PIN to change"; }

# An unlock (a laptop left logged in) ends with a PIN reset.
host as "$B" pkcs11-tool --module "$COYEU_MODULE" --token-label DB-B --login --pin 13572468 \
	--change-pin --new-pin 97531864 >/dev/null 2>&1 || fail "B's PIN change"
echo 97531864 | as "$B" "$KEYMGR" token unlock --token DB-B --timeout 600 --pin-fd 0 >/dev/null || fail "B's unlock"
probe "$B" sign DB-B - >"$TMP/unlocked" || { cat "$TMP/unlocked" >&2; fail "B cannot sign while unlocked"; }
adm holder reset-pin --id DB-B --pin-out "$TMP/out/pin-b4" || fail "the second reset"
probe "$B" sign DB-B - | grep -qx "no private key" || fail "the unlock outlived the PIN reset"
echo "B's unlock ended with the PIN reset"
as "$B" "$KEYMGR" token delete --token DB-B --yes >/dev/null 2>"$TMP/del" && fail "a holder deleted their token"
grep -q "administrator role.*(CKR_ACTION_PROHIBITED)" "$TMP/del" || { cat "$TMP/del" >&2; fail "holder's delete: no reason"; }
aud token delete --token DB-B --yes >/dev/null 2>"$TMP/del" && fail "the auditor deleted a token"
grep -q "CKR_ACTION_PROHIBITED" "$TMP/del" || { cat "$TMP/del" >&2; fail "auditor's delete: no reason"; }

# The administrator manages A's key but never signs with it.
idA=$(adm key list --token DB-A | awk '$2 == "public" {print $6; exit}')
[ -n "$idA" ] || { adm key list --token DB-A >&2; fail "the administrator does not see A's public key"; }
# Its certificate, from the unit's CA token (the administrator's), then
# the yearly renewal: a new version of the key with its request.
adm token init --label ca-token --so-pin 87654321 --pin 1234 || fail "admin: CA token"
adm key generate --token ca-token --pin 1234 --type ec:P-256 --label ca >/dev/null || fail "admin: CA key"
adm ca init --token ca-token --pin 1234 --label ca --subject "CN=Điện Biên test CA,O=Ban Cơ yếu" \
	--out "$TMP/out/ca.pem" >/dev/null || fail "admin: ca init"
adm key csr --token DB-A signing --subject "CN=Lò Văn An,OU=Phòng Tổ chức,O=Sở Nội vụ,C=VN" \
	--out "$TMP/out/a.csr" || fail "admin: key csr"
adm cert issue --token ca-token --pin 1234 --ca ca --out "$TMP/out/a.pem" "$TMP/out/a.csr" || fail "admin: cert issue"
adm cert import --token DB-A "$TMP/out/a.pem" || fail "admin: cert import"
adm key rotate --token DB-A signing --out "$TMP/out" >"$TMP/rot" 2>&1 || { cat "$TMP/rot" >&2; fail "admin rotate"; }
adm key revoke --token DB-A --id "$idA" --reason keyCompromise || fail "admin revoke"
adm access grant --uid "$ADM" --holder DB-A 2>"$TMP/self" && fail "the administrator granted itself a holder token"
grep -q "never uses a holder's keys" "$TMP/self" || { cat "$TMP/self" >&2; fail "self-grant refused for the wrong reason"; }
adm access grant --group "$G" --holder DB-A || fail "group grant"
probe "$ADM" sign DB-A 24681357 >"$TMP/adm-sign" && fail "the administrator signed with a holder's key"
cat "$TMP/adm-sign"
probe "$ADM" use "$S_A" "$K_A" | grep -qx "C_SignInit CKR_SESSION_HANDLE_INVALID" || fail "admin used A's numbers"
adm access revoke --group "$G" --holder DB-A || fail "group revoke"

# The auditor reads and verifies, and changes nothing.
aud audit verify || fail "auditor: audit verify"
aud audit list >"$TMP/trail" || fail "auditor: audit list"
grep -q " admin1 *admin .*holder-reset-pin" "$TMP/trail" || { cat "$TMP/trail" >&2; fail "the reset is not attributed"; }
grep -q "uid:$(id -u "$A") *user .*login" "$TMP/trail" || fail "A's login is not in the trail"
aud holder list | grep -q "DB-B .*initial" || fail "auditor: holder list"
aud holder reset-pin --id DB-A 2>/dev/null && fail "the auditor reset a PIN"
aud access grant --uid "$AUD" --holder DB-A 2>/dev/null && fail "the auditor changed a rule"
aud key revoke --token DB-B --id "$idA" 2>"$TMP/aud-rev" && fail "the auditor revoked a key"
echo "auditor refused: $(head -1 "$TMP/aud-rev")"
stop_keymgrd
echo PASS
