/*
 * client.c - connecting to keymgrd and running one request/reply exchange.
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cy_err.h"
#include "cy_pkcs11.h"
#include "client.h"
#include "paths.h"
#include "frame.h"

/* One server of the list. */
static int
open_one(const char *uri, const uint8_t *app_id, struct cy_conn **out)
{
	int r = CY_ERR_ALLOC;
	uint32_t rv, version;
	struct cy_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CY_ERR_ALLOC;
	wire_init(&c->req, WIRE_MAX_FRAME);
	wire_init(&c->rep, WIRE_MAX_FRAME);
	/* The longest a reply may take (300 s unless configured, so RSA-4096
	 * generation on a busy machine fits): a daemon stopped (SIGSTOP,
	 * hung) or a link that died turns into an error, not a hang of the
	 * application. */
	if ((r = transport_connect(uri, paths_client_timeout(), &c->t)) != 0)
		goto out;
	struct wire_buf *b = client_begin(c, MSG_HELLO);
	wire_put_u32(b, PROTO_VERSION);
	wire_put_bytes(b, app_id, PROTO_APP_ID_LEN);
	if ((r = client_call(c, &rv)) != 0)
		goto out;
	if (rv != CKR_OK || wire_get_u32(&c->rep, &version) != 0 || version != PROTO_VERSION ||
	    wire_get_u32(&c->rep, &c->cache_ms) != 0 || wire_get_u32(&c->rep, &c->max_sessions) != 0 ||
	    wire_get_u32(&c->rep, &c->fresh) != 0) {
		r = CY_ERR_VERSION;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	client_close(c);
	return r;
}

/* The i-th server of the list into uri: 0, or CY_ERR_NOT_FOUND past the end. */
static int
nth_server(const char *servers, size_t i, char *uri, size_t len)
{
	const char *p = servers;
	for (size_t k = 0; *p; k++) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (k == i) {
			if (n >= len)
				return CY_ERR_TOO_LARGE;
			memcpy(uri, p, n);
			uri[n] = '\0';
			return 0;
		}
		p += n;
	}
	return CY_ERR_NOT_FOUND;
}

int
client_open_from(const char *servers, size_t first, const uint8_t *app_id, struct cy_conn **out)
{
	int r = CY_ERR_CONNECT;
	char uri[4096];
	*out = NULL;
	/* first, then the others in order: an application stays with the
	 * keymgrd it has (its operations in progress are there). */
	if (nth_server(servers, first, uri, sizeof(uri)) != 0)
		first = 0;
	for (size_t k = 0;; k++) {
		size_t i = k == 0 ? first : k - 1;
		if (k > 0 && i == first)
			continue;
		int e = nth_server(servers, i, uri, sizeof(uri));
		if (e == CY_ERR_NOT_FOUND)
			break;
		if (e != 0)
			return e;
		/* The next server when this one cannot be reached or spoken
		 * to; a version mismatch is no reason to try elsewhere. */
		r = open_one(uri, app_id, out);
		if (r == 0)
			(*out)->server = i;
		if (r == 0 || r == CY_ERR_VERSION)
			return r;
	}
	return r;
}

int
client_open(const char *servers, const uint8_t *app_id, struct cy_conn **out)
{
	return client_open_from(servers, 0, app_id, out);
}

void
client_close(struct cy_conn *c)
{
	if (c == NULL)
		return;
	transport_close(c->t);
	if (c->shm != NULL) {
		wire_wipe(c->shm, c->shm_size);
		munmap(c->shm, c->shm_size);
	}
	wire_free(&c->req);
	wire_free(&c->rep);
	free(c);
}

struct wire_buf *
client_begin(struct cy_conn *c, uint32_t type)
{
	c->type = type;
	proto_begin_request(&c->req, type);
	return &c->req;
}

/*
 * Waits for the reply by polling the socket for a short while before
 * sleeping in read(): on a virtual machine a thread that sleeps can take
 * tens of microseconds to wake (the idle vCPU is halted and must be sent an
 * interrupt), longer than most replies take to come. How long to poll is
 * learnt per request type: as long as the last reply of that type took
 * (and a little more), between REPLY_SPIN_MIN_NS and REPLY_SPIN_MAX_NS; a
 * reply that takes longer than that (RSA) is waited for asleep. The poll
 * yields the CPU to any thread that has work. When calls of this process
 * have overlapped in the last OVERLAP_NS, only replies that came within
 * REPLY_SPIN_MIN_NS last time are polled for, and not longer than that:
 * threads of one application polling side by side take the CPUs keymgrd's
 * workers need (two threads signing Ed25519 on two cores: 1.25x one
 * thread instead of 1.9x).
 */
#define REPLY_SPIN_MIN_NS 50000
#define REPLY_SPIN_MAX_NS 1000000
#define OVERLAP_NS 100000000

static int calls_in_flight;
static int64_t last_overlap; /* CLOCK_MONOTONIC ns */

static int64_t
ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000L + t->tv_nsec;
}

static int64_t
ns_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

static void
spin_for_reply(struct cy_conn *c, const struct timespec *t0)
{
	int64_t last = c->type < MSG_COUNT ? c->reply_ns[c->type] : 0;
	int64_t limit = last + last / 4 + 20000;
	bool crowded = ns_of(t0) - __atomic_load_n(&last_overlap, __ATOMIC_RELAXED) < OVERLAP_NS;
	if (limit < REPLY_SPIN_MIN_NS)
		limit = REPLY_SPIN_MIN_NS;
	if (last > REPLY_SPIN_MAX_NS || (crowded && last > REPLY_SPIN_MIN_NS))
		return; /* a long wait: sleep at once */
	if (crowded)
		limit = REPLY_SPIN_MIN_NS;
	do {
		if (c->t->ops->wait(c->t, 0) != 0)
			return;
		sched_yield(); /* a thread with work to do goes first */
	} while (ns_since(t0) < limit);
}

static int
call(struct cy_conn *c, uint32_t *rv, int pass_fd)
{
	uint32_t type;
	const struct proto_msg *m = proto_msg(c->type);
	int r;
	if (m == NULL)
		return CY_ERR_INTERNAL;
	if ((r = wire_error(&c->req)) != 0)
		return r;
	/* The daemon checks every request against its signature; checking
	 * here too turns a caller's mistake into an error before it is sent
	 * (and before the daemon closes the connection for it). */
	struct wire_buf fields;
	wire_init_view(&fields, c->req.data + 4, c->req.size - 4);
	if (c->req.size < 4 || (r = proto_check_sig(&fields, m->req_sig)) != 0)
		return CY_ERR_INTERNAL;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = frame_send(c->t, &c->req, pass_fd)) != 0)
		return r;
	wire_reset(&c->req);
	if (__atomic_add_fetch(&calls_in_flight, 1, __ATOMIC_RELAXED) > 1)
		__atomic_store_n(&last_overlap, ns_of(&t0), __ATOMIC_RELAXED);
	spin_for_reply(c, &t0);
	r = frame_recv(c->t, &c->rep, WIRE_MAX_FRAME, -1, NULL);
	__atomic_sub_fetch(&calls_in_flight, 1, __ATOMIC_RELAXED);
	if (r != 0)
		return r;
	if (c->type < MSG_COUNT)
		c->reply_ns[c->type] = ns_since(&t0);
	if (wire_get_u32(&c->rep, &type) != 0 || type != (c->type | PROTO_REPLY) ||
	    wire_get_u32(&c->rep, rv) != 0)
		return CY_ERR_BAD_FORMAT;
	if (*rv == CKR_OK || *rv == CKR_BUFFER_TOO_SMALL)
		r = proto_check_sig(&c->rep, m->rep_sig);
	else
		r = wire_remaining(&c->rep) == 0 ? 0 : CY_ERR_TRAILING;
	return r;
}

int
client_call(struct cy_conn *c, uint32_t *rv)
{
	return call(c, rv, -1);
}

int
client_send_only(struct cy_conn *c)
{
	int r = wire_error(&c->req);
	if (r == 0)
		r = frame_send(c->t, &c->req, -1);
	wire_reset(&c->req);
	return r;
}

/* Reads one reply body of a MULTI reply from b into *view, positioned
 * at its fields (checked against type's signature): 0 or a cy_err. */
static int
multi_part(struct wire_buf *b, uint32_t type, uint32_t *rv, struct wire_buf *view)
{
	const uint8_t *p = NULL;
	uint32_t len = 0, got = 0;
	int r = wire_get_bytes(b, &p, &len);
	if (r != 0)
		return r;
	wire_init_view(view, p, len);
	if (wire_get_u32(view, &got) != 0 || got != (type | PROTO_REPLY) || wire_get_u32(view, rv) != 0)
		return CY_ERR_BAD_FORMAT;
	if (*rv == CKR_OK || *rv == CKR_BUFFER_TOO_SMALL)
		return proto_check_sig(view, proto_msg(type)->rep_sig);
	return wire_remaining(view) == 0 ? 0 : CY_ERR_TRAILING;
}

int
client_call_batch(struct cy_conn *c, const struct wire_buf *const *pre, size_t npre, uint32_t *pre_rv, uint32_t *rv,
		  struct wire_buf *view)
{
	uint32_t type = c->type, types[PROTO_MAX_MULTI];
	size_t n = c->req.size;
	if (npre == 0 || npre >= PROTO_MAX_MULTI)
		return CY_ERR_INTERNAL;
	for (size_t i = 0; i < npre; i++)
		if (pre[i]->size < 4 || (types[i] = wire_load_u32(pre[i]->data)) >= MSG_COUNT ||
		    proto_msg(types[i]) == NULL)
			return CY_ERR_INTERNAL;
	types[npre] = type;
	uint8_t *body = malloc(n ? n : 1);
	if (body == NULL)
		return CY_ERR_ALLOC;
	memcpy(body, c->req.data, n);
	struct wire_buf *b = client_begin(c, MSG_MULTI);
	wire_put_u32(b, (uint32_t)npre + 1);
	for (size_t i = 0; i < npre; i++)
		wire_put_bytes(b, pre[i]->data, pre[i]->size);
	wire_put_bytes(b, body, n);
	wire_wipe(body, n);
	free(body);
	uint32_t mrv = 0, count = 0;
	int r = call(c, &mrv, -1);
	if (r != 0)
		return r;
	if (mrv != CKR_OK || wire_get_u32(&c->rep, &count) != 0 || count < 1 || count > npre + 1)
		return CY_ERR_BAD_FORMAT;
	/* They run in order until one fails: each part before the last
	 * succeeded, the last is the one that failed or the request. */
	for (size_t i = 0; i < count; i++) {
		uint32_t part_rv;
		struct wire_buf part;
		if ((r = multi_part(&c->rep, types[i], &part_rv, &part)) != 0)
			return r;
		if (i == npre) {
			*rv = part_rv;
			*view = part;
			break;
		}
		pre_rv[i] = part_rv;
		bool ok = part_rv == CKR_OK || part_rv == CKR_BUFFER_TOO_SMALL;
		if (ok != (i + 1 < count))
			return CY_ERR_BAD_FORMAT; /* the next runs exactly when this did not fail */
		if (!ok) {
			for (size_t k = i + 1; k < npre; k++)
				pre_rv[k] = part_rv;
			*rv = part_rv; /* the request did not run */
			wire_init_view(view, NULL, 0);
		}
	}
	return 0;
}

int
client_call_after(struct cy_conn *c, const struct wire_buf *first, uint32_t *first_rv, uint32_t *rv,
		  struct wire_buf *view)
{
	const struct wire_buf *pre[1] = { first };
	return client_call_batch(c, pre, 1, first_rv, rv, view);
}

/* Regions grow in steps of this (and start at least this large). */
#define SHM_STEP (1u << 20)

int
client_shm(struct cy_conn *c, size_t n)
{
	if (c->shm != NULL && c->shm_size >= n)
		return 0;
	if (n > 2 * (size_t)WIRE_MAX_FRAME || !(c->t->caps & TRANSPORT_PASS_FDS))
		return 1;
	size_t size = (n + SHM_STEP - 1) / SHM_STEP * SHM_STEP;
	int fd = memfd_create("coyeu-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return 1;
	uint8_t *p = MAP_FAILED;
	uint32_t rv;
	int r = 1;
	if (ftruncate(fd, (off_t)size) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
	    (p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto out;
	struct wire_buf *b = client_begin(c, MSG_SHM_ATTACH);
	wire_put_u64(b, size);
	if ((r = call(c, &rv, fd)) != 0)
		goto out;
	if (rv != CKR_OK) {
		r = 1;
		goto out;
	}
	if (c->shm != NULL) {
		wire_wipe(c->shm, c->shm_size);
		munmap(c->shm, c->shm_size);
	}
	c->shm = p;
	c->shm_size = size;
	p = MAP_FAILED;
out:
	if (p != MAP_FAILED)
		munmap(p, size);
	close(fd); /* keymgrd keeps its own mapping */
	return r;
}

bool
client_is_stale(struct cy_conn *c)
{
	/* Between exchanges nothing may arrive: readable means EOF or junk. */
	return c->t->ops->wait(c->t, 0) != 0;
}
