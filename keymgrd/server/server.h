/*
 * server.h - keymgrd's server: the listeners, the I/O loop and the worker
 * threads that run requests.
 */
#ifndef KM_SERVER_H
#define KM_SERVER_H

#include <signal.h>
#include <sys/types.h>

#include "ctx.h"
#include "transport.h"

#define SERVER_MAX_LISTEN 8

struct tls_server;

struct server_opts {
	const char *socket_path;
	/* TCP listeners, "tls://ADDR:PORT", served with tls (a client
	 * certificate required on each). */
	const char *listen[SERVER_MAX_LISTEN];
	size_t nlisten;
	struct tls_server *tls;
	mode_t socket_mode;   /* of the socket file; its directory gets the x bits */
	gid_t socket_gid;     /* the group of the socket file, or (gid_t)-1 */
	unsigned workers;
	/* The limits of docs/security.md (server_defaults gives them). */
	size_t max_conns;               /* connections altogether */
	size_t max_conns_per_principal; /* of one principal (root's are not counted) */
	size_t admin_reserve;           /* of max_conns, kept for administrators */
	unsigned frame_timeout_ms;      /* a request begun must be whole by then */
	unsigned reply_timeout_ms;      /* a reply must be read by then */
	unsigned drain_ms;              /* the longest wait for requests in flight at stop */
	size_t max_inflight;            /* bytes of part-read requests, altogether */
	/* Listening sockets opened before (server_listen, or passed by
	 * systemd): the UNIX one first, then the TCP ones; server_run opens
	 * what is missing. socket_inherited: the socket file is systemd's, not
	 * removed at exit; tcp_inherited: the TCP ones came from systemd too
	 * (listen is not looked at). */
	int lfd[1 + SERVER_MAX_LISTEN];
	size_t nlfd;
	bool socket_inherited, tcp_inherited;
	/* When *reload becomes non-zero (SIGHUP), the loop clears it and calls
	 * on_reload(reload_arg) between two polls; it may change the limits
	 * and tls of these options (the connections' array keeps its size). */
	volatile sig_atomic_t *reload;
	void (*on_reload)(void *arg);
	void *reload_arg;
	/* Called once the loop accepts (readiness), and as it starts to drain. */
	void (*on_state)(const char *state);
};

/* The defaults of the limits above. */
void server_defaults(struct server_opts *o);

/*
 * Creates the socket (removing a stale one, refusing when another daemon
 * answers on it) and serves ctx until *stop becomes non-zero; then stops
 * accepting, lets requests in flight finish, closes every connection and
 * removes the socket. Returns 0 or a negative cy_err.
 */
int server_run(struct km_ctx *ctx, struct server_opts *o, volatile sig_atomic_t *stop);
/* Wakes the loop from a signal handler (async-signal-safe). */
void server_wake(void);

/* Opens the listeners of o that o->lfd lacks (the UNIX socket at
 * socket_path, then each of listen): 0 or a cy_err (logged), with none of
 * the TCP ones open. */
int server_listen(struct server_opts *o);

/* listen_unix.c: creates the socket at path (removing a stale one, refusing
 * with CY_ERR_EXISTS when another daemon answers on it); the listening fd
 * (non-blocking) or a cy_err. */
int listen_unix(const char *path, mode_t mode, gid_t gid);
/* Takes one connection from listening fd lfd as a transport; 0,
 * CY_ERR_TOO_LARGE when keymgrd is out of descriptors (EMFILE, ENFILE),
 * or another cy_err. */
int listen_unix_accept(int lfd, struct transport **out);

/* listen_tls.c: a TCP socket listening on addr ("tls://ADDR:PORT"; ADDR
 * may be [V6]): the fd (non-blocking) or a cy_err (logged). */
int listen_tcp(const char *addr);
/* The same for "ADDR:PORT" (no scheme). */
int listen_tcp_addr(const char *addr);

/* metrics.c: the Prometheus text endpoint (metrics_listen): serves
 * GET /metrics on the listening fd lfd from a thread of its own, one
 * request at a time, each within 5 s. names: agencies are named. */
int metrics_start(struct km_ctx *ctx, int lfd, bool names);
void metrics_stop(void);
/* Takes one connection from lfd as a TLS transport whose handshake is to
 * do, its peer's address (no port) in addr; 0, CY_ERR_TOO_LARGE out of
 * descriptors, or another cy_err. */
int listen_tls_accept(int lfd, struct tls_server *srv, struct transport **out, char addr[64]);

#endif
