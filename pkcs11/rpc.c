/*
 * rpc.c - coyeu-pkcs11.so's side of the wire: the module's state, the
 * connection pool and one request/reply exchange (rpc_*), with the
 * helpers every PKCS#11 function file uses.
 *
 * Threads: each call borrows a connection from a small pool (its own
 * mutex, held only to pop or push), so calls from many threads run in
 * parallel on separate connections; the daemon keeps sessions and login
 * state per application, so every pooled connection sees the same ones.
 *
 * Fork: C_Initialize records the pid. In a child every call answers
 * CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize, which
 * drops the inherited connections without a word on them (they are the
 * parent's) and picks a new application id, so the child never shares
 * the parent's sessions or connections.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gcrypt.h>

#include "module.h"
#include "paths.h"

#define POOL_MAX 16

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	bool initialized;
	pid_t pid;
	uint8_t app_id[PROTO_APP_ID_LEN];
	char socket[PATH_MAX];
	bool remote; /* a tls:// server in the list: lazy.c and view.c at work */
	uint32_t next_handle;  /* the session handle C_OpenSession asks for next */
	uint32_t max_sessions; /* how many keymgrd allows the application (HELLO) */
	size_t server_at;      /* the server of the list the last connection went to */
	struct cy_conn *idle[POOL_MAX];
	size_t nidle;
} mod;

int64_t
mod_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

CK_RV
mod_ready(void)
{
	if (!__atomic_load_n(&mod.initialized, __ATOMIC_ACQUIRE) || mod.pid != getpid())
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	return CKR_OK;
}

void
pad_field(unsigned char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);
	memset(dst, ' ', n);
	memcpy(dst, src, len < n ? len : n);
}

/* ---- the pool ---- */

static struct cy_conn *
pool_get(void)
{
	struct cy_conn *c = NULL;
	pthread_mutex_lock(&pool_lock);
	while (mod.nidle > 0 && c == NULL) {
		c = mod.idle[--mod.nidle];
		if (client_is_stale(c)) {
			/* keymgrd went away (or restarted) since the last call. */
			client_close(c);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	/* A remote keymgrd may be a moment away (a link coming back): two
	 * more tries, 0.25 and 1 s later; a local one is there or not. */
	static const useconds_t backoff[] = { 250000, 1000000 };
	for (size_t i = 0; c == NULL; i++) {
		size_t at = __atomic_load_n(&mod.server_at, __ATOMIC_RELAXED);
		if (client_open_from(mod.socket, at, mod.app_id, &c) == 0) {
			__atomic_store_n(&mod.max_sessions, c->max_sessions, __ATOMIC_RELAXED);
			__atomic_store_n(&mod.server_at, c->server, __ATOMIC_RELAXED);
			/* A keymgrd that does not know this application (another
			 * one of the list, or the same restarted) has none of its
			 * sessions: each is opened again with its next request;
			 * its logins it took from the store (docs/ha.md). */
			if (c->fresh)
				lazy_reopen_all();
			slots_take_snapshot(&c->rep);
			break;
		}
		c = NULL;
		if (!mod.remote || i >= sizeof(backoff) / sizeof(backoff[0]))
			break;
		usleep(backoff[i]);
	}
	return c;
}

static void
pool_put(struct cy_conn *c)
{
	pthread_mutex_lock(&pool_lock);
	if (mod.nidle < POOL_MAX && mod.pid == getpid()) {
		mod.idle[mod.nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	client_close(c);
}

static void
pool_drop_all(void)
{
	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < mod.nidle; i++)
		client_close(mod.idle[i]);
	mod.nidle = 0;
	pthread_mutex_unlock(&pool_lock);
}

CK_RV
rpc_begin(struct rpc *r, uint32_t type, CK_RV down_rv)
{
	memset(r, 0, sizeof(*r));
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if ((r->c = pool_get()) == NULL)
		return down_rv;
	r->req = client_begin(r->c, type);
	r->rep = &r->c->rep;
	return CKR_OK;
}

/*
 * Sends r's request, after first (a whole request body) when given, in
 * one round trip; before both go the closes lazy.c kept and the open of
 * r's session when it is still to be sent. Returns the request's CK_RV
 * (*first_rv first's), with r->rep at its fields.
 */
static CK_RV
exchange(struct rpc *r, const struct wire_buf *first, CK_RV *first_rv)
{
	uint32_t rv = 0;
	if (wire_error(r->req) != 0) {
		/* Our own request did not fit; the connection is still fine. */
		if (first_rv != NULL)
			*first_rv = CKR_ARGUMENTS_BAD;
		return CKR_ARGUMENTS_BAD;
	}
	struct wire_buf closes, open;
	size_t nclosed = 0, np = 0, open_at = 0, first_at = 0;
	const struct wire_buf *pre[3];
	uint32_t pre_rv[3] = { 0 };
	bool closing = mod.remote && lazy_take_closes(&closes, &nclosed);
	bool opening = lazy_take_open(r->session, &open);
	if (closing)
		pre[np++] = &closes;
	if (opening) {
		open_at = np;
		pre[np++] = &open;
	}
	if (first != NULL) {
		first_at = np;
		pre[np++] = first;
	}
	int e = np == 0 ? client_call(r->c, &rv) : client_call_batch(r->c, pre, np, pre_rv, &rv, &r->view);
	if (closing) {
		if (e == 0)
			lazy_closes_done(&closes, nclosed);
		wire_free(&closes);
	}
	if (opening) {
		lazy_open_done(r->session, e == 0, pre_rv[open_at]);
		wire_free(&open);
	}
	if (e != 0) {
		r->broken = true;
		if (first_rv != NULL)
			*first_rv = CKR_DEVICE_ERROR;
		return CKR_DEVICE_ERROR;
	}
	if (np > 0)
		r->rep = &r->view;
	if (opening && pre_rv[open_at] != CKR_OK) {
		/* keymgrd refused the open this module answered: the session
		 * is gone, and the call says so in a code it may return. */
		rv = (uint32_t)lazy_open_rv(pre_rv[open_at]);
		if (first_rv != NULL)
			*first_rv = rv;
		return rv;
	}
	if (first_rv != NULL)
		*first_rv = pre_rv[first_at];
	return rv;
}

CK_RV
rpc_call(struct rpc *r)
{
	return exchange(r, NULL, NULL);
}

CK_RV
rpc_call_after(struct rpc *r, const struct wire_buf *first, CK_RV *first_rv)
{
	return exchange(r, first, first_rv);
}

CK_RV
rpc_check(struct rpc *r)
{
	if (wire_error(r->rep) != 0) {
		r->broken = true;
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

void
rpc_end(struct rpc *r)
{
	if (r->c == NULL)
		return;
	if (r->broken)
		client_close(r->c);
	else
		pool_put(r->c);
	r->c = NULL;
}

/* The requests that make, change or destroy objects: after one, no list
 * of a token's objects (view.c) holds. */
static const bool changes_objects[MSG_COUNT] = {
	[MSG_CREATE_OBJECT] = true, [MSG_COPY_OBJECT] = true, [MSG_DESTROY_OBJECT] = true,
	[MSG_SET_ATTRS] = true, [MSG_GENERATE_KEY] = true, [MSG_GENERATE_KEY_PAIR] = true,
	[MSG_UNWRAP_KEY] = true, [MSG_DERIVE_KEY] = true, [MSG_LOGOUT] = true,
};

CK_RV
rpc_begin_session(struct rpc *r, uint32_t type, CK_SESSION_HANDLE h)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	if (type < MSG_COUNT && changes_objects[type])
		view_forget();
	if ((rv = rpc_begin_on(r, type, h)) != CKR_OK)
		return rv;
	wire_put_u32(r->req, (uint32_t)h);
	return CKR_OK;
}

CK_RV
rpc_begin_on(struct rpc *r, uint32_t type, CK_SESSION_HANDLE h)
{
	CK_RV rv = rpc_begin(r, type, CKR_DEVICE_ERROR);
	if (rv == CKR_OK)
		r->session = (uint32_t)h;
	return rv;
}

CK_RV
rpc_call_none(struct rpc *r)
{
	CK_RV rv = rpc_call(r);
	rpc_end(r);
	return rv;
}

CK_RV
rpc_call_u32(struct rpc *r, CK_ULONG *out)
{
	uint32_t v = 0;
	CK_RV rv = rpc_call(r);
	if (rv == CKR_OK) {
		wire_get_u32(r->rep, &v);
		if ((rv = rpc_check(r)) == CKR_OK)
			*out = v;
	}
	rpc_end(r);
	return rv;
}

CK_RV
rpc_session_info(CK_SESSION_HANDLE hSession, CK_SESSION_INFO *pInfo)
{
	struct rpc r;
	uint32_t v[3] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = rpc_begin_session(&r, MSG_SESSION_INFO, hSession)) != CKR_OK)
		return rv;
	if ((rv = rpc_call(&r)) == CKR_OK) {
		for (int i = 0; i < 3; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			pInfo->slotID = v[0];
			pInfo->state = v[1];
			pInfo->flags = v[2];
			pInfo->ulDeviceError = 0;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
rpc_session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	struct rpc r;
	if (!fits_u32(flags))
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = rpc_begin_session(&r, MSG_SESSION_CANCEL, h);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)flags);
	return rpc_call_none(&r);
}

bool
rpc_remote(void)
{
	return mod.remote;
}

uint32_t
rpc_max_sessions(void)
{
	return __atomic_load_n(&mod.max_sessions, __ATOMIC_RELAXED);
}

uint32_t
rpc_new_handle(void)
{
	uint32_t h;
	do
		h = __atomic_fetch_add(&mod.next_handle, 1, __ATOMIC_RELAXED) & 0x7fffffffu;
	while (h == 0);
	return h;
}

/* ---- starting and stopping (general.c holds the lock around these) ---- */

enum mod_state
mod_state(void)
{
	if (!mod.initialized)
		return MOD_OFF;
	return mod.pid == getpid() ? MOD_HERE : MOD_PARENT;
}

void
rpc_child_reset(void)
{
	/* The inherited sockets are the parent's, and the pool's lock may
	 * have been held by a thread that did not come along. */
	pthread_mutex_init(&pool_lock, NULL);
	pool_drop_all();
}

CK_RV
rpc_start(void)
{
	if (paths_client_server(mod.socket, sizeof(mod.socket)) != 0)
		return CKR_GENERAL_ERROR;
	/* The application's id is what takes its logins back after a
	 * failover (docs/ha.md): a secret, not only unique. */
	gcry_randomize(mod.app_id, sizeof(mod.app_id), GCRY_STRONG_RANDOM);
	mod.server_at = 0;
	mod.remote = strstr(mod.socket, "tls://") != NULL;
	mod.next_handle = 1;
	mod.max_sessions = 0;
	lazy_reset();
	mod.pid = getpid();
	__atomic_store_n(&mod.initialized, true, __ATOMIC_RELEASE);
	return CKR_OK;
}

void
rpc_stop(void)
{
	__atomic_store_n(&mod.initialized, false, __ATOMIC_RELEASE);
	/* Closing our connections ends our sessions in keymgrd; over TLS,
	 * where a link that drops keeps them a while, BYE says not to wait. */
	pthread_mutex_lock(&pool_lock);
	struct cy_conn *c = mod.nidle > 0 ? mod.idle[mod.nidle - 1] : NULL;
	pthread_mutex_unlock(&pool_lock);
	if (c != NULL && !client_is_stale(c)) {
		/* keymgrd reads it before it sees the connection close. */
		client_begin(c, MSG_BYE);
		client_send_only(c);
	}
	pool_drop_all();
}
