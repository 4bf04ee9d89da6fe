/*
 * paths.h - where the daemon is, as the module, the CLI and the daemon all
 * agree: $COYEU_SERVER, else $COYEU_SOCKET, else "server" (or "socket") in
 * the [client] section of the config file ($COYEU_CONF or
 * SYSCONFDIR/coyeu/coyeu.conf), else the default socket
 * (/run/coyeu/keymgrd.sock for root, $XDG_RUNTIME_DIR/coyeu/ for other
 * users that have one). A server is a list, "tls://a:7300, tls://b:7300"
 * or unix:PATH entries, tried in order.
 */
#ifndef CY_PATHS_H
#define CY_PATHS_H

#include <stddef.h>
#include <stdint.h>

#define CY_SOCKET_NAME "keymgrd.sock"

/* Writes the default socket path of a keymgrd into buf: RUNSTATEDIR/coyeu/
 * for root, $XDG_RUNTIME_DIR/coyeu/ for another user (a per-user daemon);
 * 0 or CY_ERR_TOO_LARGE. A client looks at the per-user one first, then
 * at the system's (paths_client_server). */
int paths_default_socket(char *buf, size_t len);
/* The config file path: $COYEU_CONF or the system one (static string). */
const char *paths_config_file(void);
/* Resolves the server list as described above into buf; 0 or an error. */
int paths_client_server(char *buf, size_t len);

/* The client's TLS files: [client] tls_ca, tls_cert, tls_key, each
 * overridden by $COYEU_TLS_CA, $COYEU_TLS_CERT, $COYEU_TLS_KEY ("" when
 * unset). */
struct cy_tls_files {
	char ca[4096], cert[4096], key[4096];
};
int paths_client_tls(struct cy_tls_files *f);
/* How long a call may wait for keymgrd's answer, in seconds: $COYEU_TIMEOUT,
 * else [client] timeout (a number of seconds, or 30s, 5m), else 300. */
int paths_client_timeout(void);
/* A file name made from a key label: letters, digits, '.', '-' and '_'
 * kept, anything else (and a leading '.') turned into '_'. */
void paths_file_name(const uint8_t *label, size_t len, char *out, size_t outlen);

#endif
