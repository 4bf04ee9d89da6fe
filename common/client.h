/*
 * client.h - one connection to keymgrd, as the module and the CLI use it.
 *
 * A connection sends one request and reads its reply at a time; callers that
 * share one must serialise on it. Replies are checked against the message
 * table's signature before the caller reads a field.
 */
#ifndef CY_CLIENT_H
#define CY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include "proto.h"
#include "transport.h"
#include "wire.h"

struct cy_conn {
	struct transport *t;
	struct wire_buf req;
	struct wire_buf rep;
	uint32_t type; /* the request in flight */
	uint8_t *shm;  /* a region shared with keymgrd (client_shm), or NULL */
	size_t shm_size;
	int64_t reply_ns[MSG_COUNT]; /* how long the last reply of each type took */
	uint32_t cache_ms; /* how long what keymgrd says of keys may be relied on (HELLO) */
	uint32_t max_sessions; /* how many sessions the application may have open (HELLO) */
	uint32_t fresh;        /* keymgrd did not know the application: none of its sessions are open there */
	size_t server;         /* which server of the list answered (0 for the first) */
};

/*
 * Connects to the first of servers (a list, separated by commas or
 * spaces, of URIs for transport_connect: "unix:PATH", "tls://HOST:PORT",
 * or a path) that answers, and
 * exchanges HELLO with app_id (the PROTO_APP_ID_LEN bytes naming this
 * application instance). On success *out is a new connection the caller
 * frees with client_close. Returns 0, CY_ERR_CONNECT when nothing
 * listens, or another negative error.
 */
int client_open(const char *servers, const uint8_t *app_id, struct cy_conn **out);
/* The same, trying server number first (0-based) of the list first. */
int client_open_from(const char *servers, size_t first, const uint8_t *app_id, struct cy_conn **out);
/* Closes and frees c (NULL is fine); wipes its buffers. */
void client_close(struct cy_conn *c);
/* Starts a request of type in c->req; append the fields, then client_call. */
struct wire_buf *client_begin(struct cy_conn *c, uint32_t type);
/*
 * Sends c->req and reads the reply into c->rep. On 0, *rv is the daemon's
 * CK_RV and, when it is CKR_OK or CKR_BUFFER_TOO_SMALL, c->rep is positioned
 * at the reply fields (already checked against the signature). A negative
 * return means the connection is unusable and must be closed.
 */
int client_call(struct cy_conn *c, uint32_t *rv);
/* Sends c->req and does not wait for its reply: for a last request before
 * closing c (BYE), which then costs no round trip. 0 or a cy_err. */
int client_send_only(struct cy_conn *c);
/*
 * Sends the request of first (a whole request body, as client_begin makes
 * them) and then c->req, in one MULTI frame: one round trip. *first_rv is
 * first's CK_RV; when it failed, the second was not run and *rv is the
 * same. Otherwise *rv is the second's and *view reads its fields (they
 * point into c->rep: read them before the next call). 0, or a negative
 * error (the connection is unusable).
 */
int client_call_after(struct cy_conn *c, const struct wire_buf *first, uint32_t *first_rv, uint32_t *rv,
		      struct wire_buf *view);
/*
 * client_call_after with npre requests (1 to PROTO_MAX_MULTI - 1) before
 * c->req, all in one MULTI: they run in order until one fails. pre_rv[i]
 * is each one's CK_RV (from the first that failed on, that one's); *rv is
 * the request's, or that of the first that failed (the request did not
 * run).
 */
int client_call_batch(struct cy_conn *c, const struct wire_buf *const *pre, size_t npre, uint32_t *pre_rv,
		      uint32_t *rv, struct wire_buf *view);
/*
 * Large inputs and outputs (a megabyte to encrypt) do not travel through
 * the socket: they go through a memory region shared with keymgrd, a
 * memfd sealed against shrinking (so keymgrd can never fault on it) passed
 * once per connection. Makes c's region at least n bytes (replacing a
 * smaller one). Returns 0; 1 when no region could be had (the system or
 * keymgrd refused one: use the socket); or a negative error when the
 * connection broke (close it).
 */
int client_shm(struct cy_conn *c, size_t n);
/* True when the daemon has closed c (checked without blocking). */
bool client_is_stale(struct cy_conn *c);

#endif
