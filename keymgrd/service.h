/*
 * service.h - keymgrd as a system service: systemd's readiness protocol
 * (sd_notify), its listening sockets (socket activation), its encrypted
 * credentials, and the drop from root to keymgrd's own user.
 */
#ifndef KM_SERVICE_H
#define KM_SERVICE_H

#include <stdbool.h>
#include <sys/types.h>

#include "server/server.h"

/* Tells systemd (when NOTIFY_SOCKET is set) the state: "ready", "reloading",
 * "stopping", or a STATUS= line; a no-op otherwise. */
void service_state(const char *state);
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Takes the sockets systemd passed (LISTEN_FDS/LISTEN_PID): a UNIX stream
 * socket becomes keymgrd's socket (socket_path then names it, and it is
 * not removed at exit), TCP ones the TLS listeners (instead of listen =;
 * they need tls_cert and its friends). 0 when none were passed or all were taken; a cy_err after
 * saying why (a datagram socket, two UNIX ones, TCP without TLS).
 */
int service_listen_fds(struct server_opts *so, char *socket_path, size_t len);

/*
 * The master key's file when systemd passed it as a credential
 * (LoadCredential= or LoadCredentialEncrypted=, name "master.key", in
 * $CREDENTIALS_DIRECTORY): the path in buf, true; false when there is none.
 */
bool service_credential(const char *name, char *buf, size_t len);

/* The uid and gid of user: 0, or -1 after saying there is no such user. */
int service_user(const char *user, uid_t *uid, gid_t *gid);
/*
 * Becomes uid/gid for good (supplementary groups: user's own), checks that
 * root cannot be regained: 0, or -1 after saying why.
 */
int service_drop(const char *user, uid_t uid, gid_t gid);

#endif
