/*
 * paths.h - where the daemon's socket is, as the module, the CLI and the
 * daemon all agree: $COYEU_SOCKET, else "socket" in the [client] section of
 * the config file ($COYEU_CONF or SYSCONFDIR/coyeu/coyeu.conf), else the
 * default (/run/coyeu/keymgrd.sock for root, $XDG_RUNTIME_DIR/coyeu/ for
 * other users that have one).
 */
#ifndef CY_PATHS_H
#define CY_PATHS_H

#include <stddef.h>
#include <stdint.h>

#define CY_SOCKET_NAME "keymgrd.sock"

/* Writes the default socket path into buf; returns 0 or CY_ERR_TOO_LARGE. */
int paths_default_socket(char *buf, size_t len);
/* The config file path: $COYEU_CONF or the system one (static string). */
const char *paths_config_file(void);
/* Resolves the socket as described above into buf; returns 0 or an error. */
int paths_client_socket(char *buf, size_t len);
/* A file name made from a key label: letters, digits, '.', '-' and '_'
 * kept, anything else (and a leading '.') turned into '_'. */
void paths_file_name(const uint8_t *label, size_t len, char *out, size_t outlen);

#endif
