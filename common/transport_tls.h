/*
 * transport_tls.h - the "tls://HOST:PORT" transport (transport_tls.c) and
 * keymgrd's side of it.
 */
#ifndef CY_TRANSPORT_TLS_H
#define CY_TRANSPORT_TLS_H

#include "transport.h"

extern const struct transport_ops transport_tls_ops;

/* keymgrd's TLS material (keymgrd.conf tls_cert, tls_key, tls_client_ca,
 * tls_crl). */
struct tls_server_files {
	const char *cert, *key, *client_ca;
	const char *crl;      /* files separated by commas (at most 8), or NULL */
	unsigned handshake_ms;                    /* 0: 10 s */
};
struct tls_server;
/* Loads f: 0, or CY_ERR_CONFIG (logged, naming the file). */
int tls_server_new(const struct tls_server_files *f, struct tls_server **out);
/* Drops the caller's reference: the credentials go once the last
 * connection made with them has closed too (a SIGHUP's new ones take over
 * for the next handshakes meanwhile). */
void tls_server_free(struct tls_server *srv);
/* How long a handshake may take. */
unsigned tls_server_handshake_ms(const struct tls_server *srv);
/* An accepted TCP connection fd from peer_addr as a transport whose
 * handshake is still to do (transport_ops.handshake); t owns fd. */
int tls_server_adopt(struct tls_server *srv, int fd, const char *peer_addr, struct transport **out);

#endif
