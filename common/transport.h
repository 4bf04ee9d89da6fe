/*
 * transport.h - how frames travel between the module or the CLI and
 * keymgrd: a small table of operations per kind of connection, so that
 * framing, the client and the server loop never touch a socket themselves.
 *
 * The first transport is "unix:PATH" (transport_unix.c: a UNIX stream
 * socket, descriptor passing, the peer's uid from SO_PEERCRED). Adding one
 * (TLS, a loopback for tests) is a file defining a struct transport_ops
 * plus a line in transport.c's registry (or transport_register at run
 * time); see docs/architecture.md.
 */
#ifndef CY_TRANSPORT_H
#define CY_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The transport can carry file descriptors (the shared-memory path). */
#define TRANSPORT_PASS_FDS 1u

/* No local uid: the principal is not a user of this machine. */
#define CY_UID_NONE 0xffffffffu

/* The most groups of a local principal that keymgrd looks at. */
#define CY_MAX_GROUPS 64

/* Who is at the other end of a connection, as its transport proves it. */
struct cy_principal {
	/* "uid:1000" for a local user, "cert:CN=...,O=..." (the subject of
	 * a verified TLS client certificate) for a remote one */
	char name[256];
	char sans[256]; /* a certificate's SANs, "dns:NAME\n", "email:..\n" */
	uint32_t uid;   /* the local uid, or CY_UID_NONE */
	int32_t pid;    /* the local process, or 0 */
	uint32_t groups[CY_MAX_GROUPS]; /* its gids, the primary one first */
	uint32_t ngroups;
};

struct transport;

struct transport_ops {
	const char *scheme; /* "unix" for "unix:PATH" */
	/* Client side: connects to rest (what follows "scheme:"); replies
	 * that take longer than timeout_s seconds are an error. */
	int (*connect)(const char *rest, int timeout_s, struct transport **out);
	/* Sends all of iov[0..n) (iov is consumed), with pass_fd (>= 0) on
	 * the first byte. 0 or a cy_err; CY_ERR_EOF when the peer is gone. */
	int (*send)(struct transport *t, struct iovec *iov, int n, int pass_fd);
	/* Server side: writes what fits now of iov[0..n) without waiting,
	 * with pass_fd (>= 0) on the first byte: the count, or -1 with errno
	 * (EAGAIN when the transport is full). NULL for a transport keymgrd
	 * does not serve on. */
	ssize_t (*send_some)(struct transport *t, const struct iovec *iov, int n, int pass_fd);
	/* Reads at most n bytes: the count, 0 at EOF, or -1 with errno
	 * (EAGAIN when a non-blocking transport has nothing). A descriptor
	 * that came with the bytes goes to *fd when fd is not NULL (else it
	 * is closed); *fd is left alone when none came. */
	ssize_t (*recv)(struct transport *t, void *p, size_t n, int *fd);
	/* Waits up to ms (0: just looks) for something to read or EOF: 1,
	 * 0 when nothing came, or a cy_err. */
	int (*wait)(struct transport *t, int ms);
	/* Bytes read from the peer and held by the transport, which poll()
	 * on fd does not see (TLS records). NULL: never any. */
	size_t (*pending)(struct transport *t);
	/* Server side: goes on with a handshake that has not finished: 0
	 * when done, 1 with *events (POLLIN, POLLOUT) to wait for, or a
	 * cy_err (the peer must go). NULL: none to do. */
	int (*handshake)(struct transport *t, short *events);
	/* Who the peer is (after the handshake). 0 or a cy_err. */
	int (*peer)(struct transport *t, struct cy_principal *who);
	void (*close)(struct transport *t);
};

/* What every transport's connection starts with. */
struct transport {
	const struct transport_ops *ops;
	unsigned caps; /* TRANSPORT_* */
	int fd;        /* what a poll() loop watches for this connection */
};

/*
 * Connects to uri: "scheme:rest" for a registered transport, or a bare
 * path for the UNIX socket there. 0, CY_ERR_CONNECT when nothing listens,
 * or another cy_err.
 */
int transport_connect(const char *uri, int timeout_s, struct transport **out);
/* Closes and frees t (NULL is fine). */
void transport_close(struct transport *t);
/* Moves *iov (of *n entries) past done bytes written: what a partial write
 * leaves to send. */
void transport_iov_advance(struct iovec **iov, int *n, size_t done);
/* Adds a transport known only at run time (tests). 0 or CY_ERR_TOO_LARGE. */
int transport_register(const struct transport_ops *ops);

/* transport_unix.c: the server's side of an accepted UNIX connection fd
 * (made non-blocking; t owns fd from then on, also on failure). */
int transport_unix_adopt(int fd, struct transport **out);
extern const struct transport_ops transport_unix_ops;
/* Writes all of iov[0..n) to stream socket fd (iov is consumed), with
 * pass_fd (>= 0) on the first byte; on a full non-blocking socket it
 * waits up to wait_ms for room (0: an error at once). For transports
 * over a socket. 0 or a cy_err (CY_ERR_EOF when the peer is gone). */
int transport_fd_send(int fd, struct iovec *iov, int n, int pass_fd, int wait_ms);
/* transport_ops.wait for a stream socket fd. */
int transport_fd_wait(int fd, int ms);

#endif
