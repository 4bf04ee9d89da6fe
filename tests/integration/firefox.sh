#!/bin/sh
# Firefox ESR, headless, with a fresh profile that has the coyeu module in
# its NSS database, authenticates to a local TLS server that requires a
# client certificate: the certificate and its key are on the token, the
# PIN was given once with keymgr token unlock (none is stored in the
# profile), and Firefox picks the certificate automatically.
. "$(dirname "$0")/lib.sh"

# Firefox replaces malloc with its own allocator, which the ASan runtime
# cannot be preloaded under; the sanitizer build skips this test (the same
# module code runs under ASan in the other tests).
skip_under_sanitizers "Firefox cannot load a sanitizer-built module"
FIREFOX=$(command -v firefox-esr || command -v firefox || true)
[ -n "$FIREFOX" ] || fail "firefox-esr is not installed"
command -v certutil >/dev/null || fail "libnss3-tools is not installed"
start_keymgrd
"$KEYMGR" token init --label web-token --so-pin 87654321 --pin 1234 || fail "token init"
"$KEYMGR" key generate --token web-token --pin 1234 --type rsa:2048 --label official --id 01 || fail "key"

# The official's certificate, on the token beside the key (same CKA_ID).
make_cert web-token official "/O=UBND tinh Dien Bien/CN=Pham Van D" "$TMP/client.pem"
openssl x509 -in "$TMP/client.pem" -outform DER -out "$TMP/client.der"
host pkcs11-tool --module "$COYEU_MODULE" --token-label web-token --login --pin 1234 \
	--write-object "$TMP/client.der" --type cert --id 01 --label official >/dev/null 2>&1 || fail "write certificate"

# The web server: its own CA and certificate; it demands a client certificate.
openssl req -new -x509 -days 30 -newkey rsa:2048 -nodes -keyout "$TMP/ca.key" \
	-subj "/CN=coyeu test server CA" -out "$TMP/ca.pem" 2>/dev/null || fail "server CA"
openssl req -new -newkey rsa:2048 -nodes -keyout "$TMP/server.key" -subj "/CN=127.0.0.1" \
	-out "$TMP/server.csr" 2>/dev/null || fail "server key"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial -days 30 \
	-extfile "$TMP/ext" -out "$TMP/server.pem" 2>/dev/null || fail "server certificate"
port=$((30000 + $$ % 20000))
# The server serves one page, and only over a handshake whose client
# certificate it verified (-Verify, -verify_return_error): its "FILE:" line
# is its verdict that the handshake, the token's signature in it included,
# went through (COYEU_FIREFOX_CA: another CA file, to see the test fail).
mkdir "$TMP/www"
echo "<html><body>coyeu $$</body></html>" >"$TMP/www/page.html"
(cd "$TMP/www" && exec timeout 300 openssl s_server -accept "$port" -cert "$TMP/server.pem" -key "$TMP/server.key" \
	-Verify 1 -verify_return_error -CAfile "${COYEU_FIREFOX_CA:-$TMP/client.pem}" -WWW) >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap 'stop_server; cleanup' EXIT
for _ in $(seq 50); do grep -q ACCEPT "$TMP/server.log" 2>/dev/null && break; sleep 0.1; done

# A fresh profile: the module in its NSS database, the server CA trusted,
# and the certificate chosen without asking.
profile="$TMP/profile"
mkdir "$profile"
certutil -N -d "sql:$profile" --empty-password || fail "profile database"
host modutil -dbdir "sql:$profile" -add coyeu -libfile "$COYEU_MODULE" -force >/dev/null || fail "modutil -add"
certutil -A -d "sql:$profile" -n "test server CA" -t "CT,," -i "$TMP/ca.pem" || fail "trust the server CA"
cat >"$profile/user.js" <<'PREFS'
user_pref("security.default_personal_cert", "Select Automatically");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("app.update.enabled", false);
PREFS

# The official unlocks the token once; Firefox then needs no PIN.
echo 1234 | "$KEYMGR" token unlock --token web-token --timeout 300 --pin-fd 0 >/dev/null || fail "unlock"
HOME="$TMP" MOZ_HEADLESS=1 host timeout 180 "$FIREFOX" --headless --no-remote --profile "$profile" \
	--screenshot "$TMP/page.png" "https://127.0.0.1:$port/page.html" >"$TMP/firefox.log" 2>&1 ||
	{ cat "$TMP/firefox.log" "$TMP/server.log" >&2; fail "firefox"; }
grep -q "depth=0 .*CN = Pham Van D" "$TMP/server.log" && grep -q "^verify return:1" "$TMP/server.log" ||
	{ cat "$TMP/server.log" >&2; fail "the server did not verify the token's certificate"; }
grep -q "^FILE:page.html" "$TMP/server.log" ||
	{ cat "$TMP/server.log" "$TMP/firefox.log" >&2; fail "the handshake with the token's key did not go through: no page served"; }
# (A connection Firefox opens and drops unused ends in "unexpected eof":
# not a verdict. These are.)
grep -qi "verify error\\|alert\\|handshake failure\\|bad signature\\|decrypt error" "$TMP/server.log" &&
	{ cat "$TMP/server.log" >&2; fail "the server refused a handshake"; }
[ -s "$TMP/page.png" ] || fail "Firefox made no screenshot of the page"
echo "TLS server verified the token's certificate and served the page over it: $(grep -m1 'depth=0' "$TMP/server.log")"
grep -rqs 1234 "$profile"/*.js && fail "a PIN is stored in the profile"
stop_server
stop_keymgrd
echo PASS
