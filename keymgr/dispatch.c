/*
 * dispatch.c - keymgrd's request handlers: one process_* per message type.
 *
 * dispatch_request() checks a request against its signature in the message
 * table (so a handler's reads cannot fail), takes the state lock, calls the
 * handler, and builds exactly one reply: the handler's CK_RV and, when that
 * is CKR_OK or CKR_BUFFER_TOO_SMALL, the fields it wrote. Handlers run with
 * the lock held; the slow ones drop it around the crypto after marking the
 * session busy (see daemon.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gcrypt.h>

#include "attr.h"
#include "audit.h"
#include "ca.h"
#include "crypto.h"
#include "cy_err.h"
#include "daemon.h"
#include "log.h"
#include "lifecycle.h"
#include "mech.h"
#include "rotate.h"
#include "x509.h"

#define NOBODY ((CK_USER_TYPE)-1)

struct req {
	struct km_ctx *ctx;
	struct km_peer *peer;
	struct wire_buf *in;
	struct wire_buf *out; /* reply fields */
	/* What the audit entry of this request names (see audit.h). */
	int64_t audit_token;
	uint32_t audit_session;
	char audit_obj[64];
};

/* Reads that the signature check has already proven safe. */
static uint32_t
get_u32(struct req *r)
{
	uint32_t v = 0;
	wire_get_u32(r->in, &v);
	return v;
}

static uint64_t
get_u64(struct req *r)
{
	uint64_t v = 0;
	wire_get_u64(r->in, &v);
	return v;
}

static bool
get_bool(struct req *r)
{
	bool v = false;
	wire_get_bool(r->in, &v);
	return v;
}

static const uint8_t *
get_bytes(struct req *r, uint32_t *n)
{
	const uint8_t *p = NULL;
	*n = 0;
	wire_get_bytes(r->in, &p, n);
	return p;
}

/* ---- applications and login state ---- */

/* The application's own login, else the unlock of its user (keymgr
 * unlock) while it lasts. */
static CK_USER_TYPE
login_of(const struct km_app *app, int64_t token_id)
{
	for (const struct km_login *l = app->logins; l; l = l->next)
		if (l->token_id == token_id)
			return l->who;
	time_t now = time(NULL);
	for (const struct km_unlock *u = *app->unlocks; u; u = u->next)
		if (u->uid == app->uid && u->token_id == token_id && u->expires > now)
			return CKU_USER;
	return NOBODY;
}

static void
logout_app(struct km_app *app, int64_t token_id)
{
	for (struct km_login **pp = &app->logins; *pp; pp = &(*pp)->next) {
		if ((*pp)->token_id == token_id) {
			struct km_login *dead = *pp;
			*pp = dead->next;
			free(dead);
			return;
		}
	}
}

static bool
user_in(const struct km_session *s)
{
	return login_of(s->app, s->token_id) == CKU_USER;
}

/* ---- sessions ---- */

static struct km_session *
find_session(struct km_ctx *ctx, const struct km_app *app, uint32_t h)
{
	for (struct km_session *s = ctx->sessions; s; s = s->next)
		if (s->handle == h && s->app == app)
			return s;
	return NULL;
}

/* The caller's session h, waiting until no other worker is using it. */
static struct km_session *
session_locked(struct req *r, uint32_t h)
{
	struct km_session *s;
	while ((s = find_session(r->ctx, r->peer->app, h)) != NULL && s->busy)
		pthread_cond_wait(&r->ctx->cond, &r->ctx->lock);
	r->audit_session = h;
	if (s != NULL)
		r->audit_token = s->token_id;
	return s;
}

static void
session_release(struct km_ctx *ctx, struct km_session *s)
{
	s->busy = false;
	pthread_cond_broadcast(&ctx->cond);
}

static void
clear_stash(struct km_session *s)
{
	if (s->stash) {
		wire_wipe(s->stash, s->stash_len);
		free(s->stash);
	}
	s->stash = NULL;
	s->stash_len = 0;
	s->stash_kind = s->stash_phase = 0;
}

static void
end_op(struct km_session *s, enum proto_op kind)
{
	crypto_op_free(s->op[kind]);
	s->op[kind] = NULL;
	s->need_auth[kind] = false;
	if (s->stash_kind == kind)
		clear_stash(s);
}

static void
end_find(struct km_session *s)
{
	free(s->found);
	s->found = NULL;
	s->nfound = s->found_pos = 0;
	s->finding = false;
}

static void
free_session_objects(struct km_ctx *ctx, uint32_t owner)
{
	struct km_sobj **pp = &ctx->sobjs;
	while (*pp) {
		if ((*pp)->obj->owner == owner) {
			struct km_sobj *dead = *pp;
			*pp = dead->next;
			obj_free(dead->obj);
			free(dead);
		} else {
			pp = &(*pp)->next;
		}
	}
}

/* Closes s (not busy); logs its application out of the token when it was
 * the application's last session there. */
static void
close_session_locked(struct km_ctx *ctx, struct km_session *s)
{
	for (struct km_session **pp = &ctx->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (int k = 0; k <= OP_MAX; k++)
		crypto_op_free(s->op[k]);
	clear_stash(s);
	end_find(s);
	free_session_objects(ctx, s->handle);
	bool others = false;
	for (struct km_session *o = ctx->sessions; o; o = o->next)
		others |= o->app == s->app && o->token_id == s->token_id;
	if (!others)
		logout_app(s->app, s->token_id);
	free(s);
}

/* Waits for s to be idle, then closes it. */
static void
close_idle_locked(struct km_ctx *ctx, struct km_session *s)
{
	while (s->busy)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	close_session_locked(ctx, s);
}

/* ---- objects ---- */

static struct km_object *
find_sobj(struct km_ctx *ctx, uint32_t h)
{
	for (struct km_sobj *o = ctx->sobjs; o; o = o->next)
		if (o->obj->handle == h)
			return o->obj;
	return NULL;
}

/* The application that owns a session object: that of its session. */
static bool
sobj_mine(struct km_ctx *ctx, const struct km_session *s, const struct km_object *o)
{
	if (o->token_id != s->token_id)
		return false;
	for (struct km_session *x = ctx->sessions; x; x = x->next)
		if (x->handle == o->owner)
			return x->app == s->app;
	return false;
}

/*
 * Object h as session s sees it. Session objects are returned in place
 * (*owned false); token objects are read from the store (*owned true, the
 * caller frees them), with secrets unsealed when with_secrets.
 */
static CK_RV
object_locked(struct req *r, struct km_session *s, uint32_t h, bool with_secrets,
	      struct km_object **out, bool *owned)
{
	struct km_ctx *ctx = r->ctx;
	struct km_object *o = NULL;
	*owned = false;
	if (r->audit_obj[0] == '\0')
		snprintf(r->audit_obj, sizeof(r->audit_obj), "object %u", h);
	if (h & KM_SOBJ_BIT) {
		o = find_sobj(ctx, h);
		if (o == NULL || !sobj_mine(ctx, s, o))
			return CKR_OBJECT_HANDLE_INVALID;
	} else {
		struct store_object so;
		struct km_token *t = token_find_locked(ctx, s->token_id);
		memset(&so, 0, sizeof(so));
		if (h == 0 || t == NULL)
			return CKR_OBJECT_HANDLE_INVALID;
		int e = store_object_get(ctx->st, h, &so);
		if (e == CY_ERR_NOT_FOUND || (e == 0 && so.token_id != s->token_id)) {
			store_object_clear(&so);
			return CKR_OBJECT_HANDLE_INVALID;
		}
		if (e == 0)
			e = obj_from_store(&so, with_secrets ? t->data_key : NULL, &o);
		store_object_clear(&so);
		if (e != 0) {
			log_err("object %u: cannot be read: %s", h, cy_strerror(e));
			return CKR_DEVICE_ERROR;
		}
		*owned = true;
	}
	if (!obj_visible(o, user_in(s))) {
		if (*owned)
			obj_free(o);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	*out = o;
	return CKR_OK;
}

static void
object_put(struct km_object *o, bool owned)
{
	if (owned)
		obj_free(o);
}

void
key_cache_forget_locked(struct km_ctx *ctx)
{
	for (size_t i = 0; i < KM_KEY_CACHE; i++) {
		obj_free(ctx->key_cache[i].o);
		memset(&ctx->key_cache[i], 0, sizeof(ctx->key_cache[i]));
	}
}

/*
 * The key of an operation (C_SignInit...): object_locked with secrets, but a
 * token key read and unsealed before is used again while the store has not
 * changed since (store_generation), which saves the read and the unsealing
 * (11 of the 18 us of a C_SignInit with an HMAC key). The object returned
 * may be the cached one: read only, valid until the lock is released.
 */
static CK_RV
key_for_use_locked(struct req *r, struct km_session *s, uint32_t h, struct km_object **out, bool *owned)
{
	struct km_ctx *ctx = r->ctx;
	if (h & KM_SOBJ_BIT)
		return object_locked(r, s, h, true, out, owned);
	uint64_t gen = store_generation(ctx->st);
	struct km_cached_key *e = &ctx->key_cache[h % KM_KEY_CACHE];
	if (gen != 0 && e->o != NULL && e->handle == h && e->generation == gen && e->token_id == s->token_id) {
		if (r->audit_obj[0] == '\0')
			snprintf(r->audit_obj, sizeof(r->audit_obj), "object %u", h);
		if (!obj_visible(e->o, user_in(s)))
			return CKR_OBJECT_HANDLE_INVALID;
		*out = e->o;
		*owned = false;
		return CKR_OK;
	}
	CK_RV rv = object_locked(r, s, h, true, out, owned);
	if (rv != CKR_OK || !*owned || gen == 0 || gen != store_generation(ctx->st))
		return rv;
	obj_free(e->o);
	*e = (struct km_cached_key){ h, s->token_id, gen, *out };
	*owned = false;
	return CKR_OK;
}

/* May session s hold or change an object with these properties? */
static CK_RV
may_write(const struct km_session *s, bool on_token, bool priv)
{
	if (on_token && !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (priv && !user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	return CKR_OK;
}

static CK_RV
may_write_obj(const struct km_session *s, const struct km_object *o)
{
	return may_write(s, o->on_token, al_bool(&o->pub, CKA_PRIVATE, false));
}

/* Writes token object o back to the store (o->handle is its id). */
static CK_RV
save_token_object_locked(struct km_ctx *ctx, const struct km_object *o)
{
	struct store_object so;
	struct km_token *t = token_find_locked(ctx, o->token_id);
	memset(&so, 0, sizeof(so));
	so.id = o->handle;
	if (t == NULL || obj_to_store(o, t->data_key, &so) != 0)
		return CKR_DEVICE_ERROR;
	int e = store_object_update(ctx->st, &so);
	store_object_clear(&so);
	return e ? CKR_DEVICE_ERROR : CKR_OK;
}

/*
 * Adds the new objects objs[0..n) to the token (one transaction) or to the
 * session objects of s; each takes its handle. On success the session
 * objects belong to the list and the caller frees the token ones with
 * drop_added(); on failure nothing was added and the caller owns them all.
 */
static CK_RV
add_objects_locked(struct km_ctx *ctx, struct km_session *s, struct km_object **objs, size_t n)
{
	struct km_token *t = token_find_locked(ctx, s->token_id);
	struct km_sobj *nodes[2] = { NULL, NULL };
	bool any_token = false;
	if (t == NULL || n > 2)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (token_stamp_object(objs[i]) != 0) {
			free(nodes[0]);
			return CKR_HOST_MEMORY;
		}
		objs[i]->token_id = s->token_id;
		any_token |= objs[i]->on_token;
		if (!objs[i]->on_token && (nodes[i] = calloc(1, sizeof(*nodes[i]))) == NULL) {
			free(nodes[0]);
			return CKR_HOST_MEMORY;
		}
	}
	if (any_token && store_begin(ctx->st) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (objs[i]->on_token && token_insert_object_intx(ctx, t, objs[i]) != 0)
			goto rollback;
	}
	if (any_token && store_commit(ctx->st) != 0)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		if (objs[i]->on_token)
			continue;
		objs[i]->owner = s->handle;
		objs[i]->handle = KM_SOBJ_BIT | (ctx->next_sobj++ & ~KM_SOBJ_BIT);
		if (objs[i]->handle == KM_SOBJ_BIT)
			objs[i]->handle = KM_SOBJ_BIT | ctx->next_sobj++;
		nodes[i]->obj = objs[i];
		nodes[i]->next = ctx->sobjs;
		ctx->sobjs = nodes[i];
	}
	return CKR_OK;
rollback:
	store_rollback(ctx->st);
fail:
	free(nodes[0]);
	free(nodes[1]);
	return CKR_DEVICE_ERROR;
}

/* After add_objects_locked: frees the token objects the store now holds. */
static void
drop_added(struct km_object **objs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (objs[i]->on_token)
			obj_free(objs[i]);
}

/* ---- general ---- */

static CK_RV
process_hello(struct req *r)
{
	uint32_t n, version = get_u32(r);
	const uint8_t *id = get_bytes(r, &n);
	struct km_ctx *ctx = r->ctx;
	if (version != PROTO_VERSION) {
		log_warn("peer uid %u pid %d speaks protocol %u, not %u", (unsigned)r->peer->uid,
			 (int)r->peer->pid, version, PROTO_VERSION);
		return CKR_DEVICE_ERROR;
	}
	if (n != PROTO_APP_ID_LEN || r->peer->app != NULL)
		return CKR_ARGUMENTS_BAD;
	struct km_app *a;
	for (a = ctx->apps; a; a = a->next)
		if (a->uid == r->peer->uid && memcmp(a->id, id, n) == 0)
			break;
	if (a == NULL) {
		if ((a = calloc(1, sizeof(*a))) == NULL)
			return CKR_HOST_MEMORY;
		a->uid = r->peer->uid;
		a->unlocks = (const struct km_unlock *const *)&ctx->unlocks;
		memcpy(a->id, id, n);
		a->next = ctx->apps;
		ctx->apps = a;
	}
	a->conns++;
	r->peer->app = a;
	wire_put_u32(r->out, PROTO_VERSION);
	return CKR_OK;
}

static bool
slot_valid(struct km_ctx *ctx, uint32_t slot)
{
	return token_find_locked(ctx, slot) != NULL || slot == token_spare_slot_locked(ctx);
}

static CK_RV
process_slot_list(struct req *r)
{
	(void)get_bool(r); /* every slot holds a token */
	struct km_ctx *ctx = r->ctx;
	wire_put_u32(r->out, (uint32_t)ctx->ntokens + 1);
	for (size_t i = 0; i < ctx->ntokens; i++)
		wire_put_u32(r->out, (uint32_t)ctx->tokens[i].st.id);
	wire_put_u32(r->out, (uint32_t)token_spare_slot_locked(ctx));
	return CKR_OK;
}

static CK_RV
process_slot_info(struct req *r)
{
	uint32_t slot = get_u32(r);
	char desc[64];
	if (!slot_valid(r->ctx, slot))
		return CKR_SLOT_ID_INVALID;
	snprintf(desc, sizeof(desc), "coyeu keymgrd slot %u", slot);
	wire_put_str(r->out, desc);
	wire_put_str(r->out, "coyeu");
	wire_put_u32(r->out, CKF_TOKEN_PRESENT);
	return CKR_OK;
}

static CK_RV
process_token_info(struct req *r)
{
	uint32_t slot = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	if (!slot_valid(ctx, slot))
		return CKR_SLOT_ID_INVALID;
	struct km_token *t = token_find_locked(ctx, slot);
	uint32_t n = 0, rw = 0;
	for (struct km_session *s = ctx->sessions; s; s = s->next) {
		if (s->token_id == slot) {
			n++;
			rw += (s->flags & CKF_RW_SESSION) != 0;
		}
	}
	wire_put_str(r->out, t ? t->st.label : "");
	wire_put_str(r->out, "coyeu");
	wire_put_str(r->out, "keymgrd");
	wire_put_str(r->out, t ? t->st.serial : "");
	wire_put_u32(r->out, (uint32_t)token_flags_locked(ctx, t));
	wire_put_u32(r->out, n);
	wire_put_u32(r->out, rw);
	wire_put_u32(r->out, KM_PIN_MIN);
	wire_put_u32(r->out, KM_PIN_MAX);
	wire_put_u32(r->out, 0);
	wire_put_u32(r->out, 1);
	return CKR_OK;
}

static CK_RV
process_mech_list(struct req *r)
{
	size_t n;
	const struct crypto_mech_info *m = crypto_mechs(&n);
	if (!slot_valid(r->ctx, get_u32(r)))
		return CKR_SLOT_ID_INVALID;
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_u32(r->out, (uint32_t)m[i].type);
	return CKR_OK;
}

static CK_RV
process_mech_info(struct req *r)
{
	uint32_t slot = get_u32(r), type = get_u32(r);
	if (!slot_valid(r->ctx, slot))
		return CKR_SLOT_ID_INVALID;
	const struct crypto_mech_info *m = crypto_mech(type);
	if (m == NULL)
		return CKR_MECHANISM_INVALID;
	wire_put_u32(r->out, (uint32_t)m->min_bits);
	wire_put_u32(r->out, (uint32_t)m->max_bits);
	wire_put_u32(r->out, (uint32_t)m->flags);
	return CKR_OK;
}

/* ---- tokens and PINs ---- */

static CK_RV
process_init_token(struct req *r)
{
	uint32_t slot = get_u32(r), plen, llen;
	const uint8_t *pin = get_bytes(r, &plen);
	const uint8_t *lab = get_bytes(r, &llen);
	char label[33];
	if (!slot_valid(r->ctx, slot))
		return CKR_SLOT_ID_INVALID;
	if (llen > 32)
		return CKR_ARGUMENTS_BAD;
	if (llen)
		memcpy(label, lab, llen);
	label[llen] = '\0';
	r->audit_token = slot;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "label %s", label);
	log_info("uid %u: initialise token in slot %u", (unsigned)r->peer->uid, slot);
	return token_init_locked(r->ctx, slot, pin, plen, label);
}

static CK_RV
process_init_pin(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t n;
	const uint8_t *pin = get_bytes(r, &n);
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (login_of(s->app, s->token_id) != CKU_SO)
		return CKR_USER_NOT_LOGGED_IN;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	struct km_token *t = token_find_locked(r->ctx, s->token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	log_info("uid %u: token %lld user PIN set by SO", (unsigned)r->peer->uid, (long long)t->st.id);
	return token_set_pin_locked(r->ctx, t, CKU_USER, pin, n);
}

/* token_verify_pin for session s's token, with s kept (busy) meanwhile. */
static CK_RV
verify_pin_for(struct req *r, struct km_session *s, CK_USER_TYPE who, const uint8_t *pin, uint32_t n)
{
	s->busy = true;
	CK_RV rv = token_verify_pin(r->ctx, s->token_id, who, pin, n);
	session_release(r->ctx, s);
	return rv;
}

static CK_RV
process_set_pin(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t on, nn;
	const uint8_t *old = get_bytes(r, &on);
	const uint8_t *new = get_bytes(r, &nn);
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	struct km_token *t = token_find_locked(r->ctx, s->token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	CK_USER_TYPE who = login_of(s->app, s->token_id) == CKU_SO ? CKU_SO : CKU_USER;
	CK_RV rv = token_pin_len_ok(nn);
	if (rv == CKR_OK)
		rv = verify_pin_for(r, s, who, old, on);
	if (rv == CKR_OK && (t = token_find_locked(r->ctx, s->token_id)) == NULL)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = token_set_pin_locked(r->ctx, t, who, new, nn);
	return rv;
}

/* ---- sessions ---- */

static CK_RV
process_open_session(struct req *r)
{
	uint32_t slot = get_u32(r), flags = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	if (!slot_valid(ctx, slot))
		return CKR_SLOT_ID_INVALID;
	if (token_find_locked(ctx, slot) == NULL)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if (!(flags & CKF_RW_SESSION) && login_of(r->peer->app, slot) == CKU_SO)
		return CKR_SESSION_READ_WRITE_SO_EXISTS;
	struct km_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CKR_HOST_MEMORY;
	do {
		s->handle = ctx->next_session++ & 0x7fffffffu;
	} while (s->handle == 0 || find_session(ctx, r->peer->app, s->handle) != NULL);
	s->app = r->peer->app;
	s->token_id = slot;
	s->flags = (flags & CKF_RW_SESSION) | CKF_SERIAL_SESSION;
	s->next = ctx->sessions;
	ctx->sessions = s;
	wire_put_u32(r->out, s->handle);
	return CKR_OK;
}

static CK_RV
process_close_session(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	close_session_locked(r->ctx, s);
	return CKR_OK;
}

static CK_RV
process_close_all(struct req *r)
{
	uint32_t slot = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	if (!slot_valid(ctx, slot))
		return CKR_SLOT_ID_INVALID;
	for (;;) {
		struct km_session *s;
		for (s = ctx->sessions; s; s = s->next)
			if (s->app == r->peer->app && s->token_id == slot)
				break;
		if (s == NULL)
			break;
		close_idle_locked(ctx, s);
	}
	return CKR_OK;
}

static CK_RV
process_session_info(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	bool rw = s->flags & CKF_RW_SESSION;
	CK_STATE state;
	switch (login_of(s->app, s->token_id)) {
	case CKU_SO: state = CKS_RW_SO_FUNCTIONS; break;
	case CKU_USER: state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS; break;
	default: state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION; break;
	}
	wire_put_u32(r->out, (uint32_t)s->token_id);
	wire_put_u32(r->out, (uint32_t)state);
	wire_put_u32(r->out, (uint32_t)s->flags);
	return CKR_OK;
}

/* CKU_CONTEXT_SPECIFIC: the user's PIN again, for the operation whose key
 * has CKA_ALWAYS_AUTHENTICATE; good for that one operation. */
static CK_RV
context_login_locked(struct req *r, struct km_session *s, const uint8_t *pin, uint32_t n)
{
	bool pending = false;
	for (int k = 0; k <= OP_MAX; k++)
		pending |= s->need_auth[k];
	if (!pending)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (login_of(s->app, s->token_id) != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	CK_RV rv = verify_pin_for(r, s, CKU_USER, pin, n);
	if (rv == CKR_OK && login_of(s->app, s->token_id) != CKU_USER)
		rv = CKR_USER_NOT_LOGGED_IN; /* logged out meanwhile */
	if (rv == CKR_OK)
		for (int k = 0; k <= OP_MAX; k++)
			s->need_auth[k] = false;
	return rv;
}

/* May the application of session s log in as who now? */
static CK_RV
may_log_in_locked(struct km_ctx *ctx, const struct km_session *s, CK_USER_TYPE who)
{
	CK_USER_TYPE cur = login_of(s->app, s->token_id);
	/* Unlocked for the user (keymgr token unlock) but not logged in by
	 * this application: a program that logs in regardless gets its own
	 * login, with the PIN checked as usual. */
	bool own = false;
	for (const struct km_login *l = s->app->logins; l; l = l->next)
		own |= l->token_id == s->token_id;
	if (cur == CKU_USER && who == CKU_USER && !own)
		cur = NOBODY;
	if (cur == who)
		return CKR_USER_ALREADY_LOGGED_IN;
	if (cur != NOBODY)
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (who == CKU_SO) {
		for (struct km_session *o = ctx->sessions; o; o = o->next)
			if (o->app == s->app && o->token_id == s->token_id && !(o->flags & CKF_RW_SESSION))
				return CKR_SESSION_READ_ONLY_EXISTS;
	}
	return CKR_OK;
}

static CK_RV
process_login(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t who = get_u32(r), n;
	const uint8_t *pin = get_bytes(r, &n);
	struct km_ctx *ctx = r->ctx;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%s", who == CKU_SO ? "so" : who == CKU_USER ? "user"
		 : who == CKU_CONTEXT_SPECIFIC ? "context-specific" : "unknown user type");
	if (who == CKU_CONTEXT_SPECIFIC)
		return context_login_locked(r, s, pin, n);
	if (who != CKU_SO && who != CKU_USER)
		return CKR_USER_TYPE_INVALID;
	CK_RV rv = may_log_in_locked(ctx, s, who);
	if (rv != CKR_OK)
		return rv;
	if (token_find_locked(ctx, s->token_id) == NULL)
		return CKR_DEVICE_ERROR;
	/* The PIN is checked without the lock; then the state is checked again
	 * (another thread of the application may have logged in meanwhile). */
	if ((rv = verify_pin_for(r, s, who, pin, n)) != CKR_OK || (rv = may_log_in_locked(ctx, s, who)) != CKR_OK)
		return rv;
	struct km_login *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CKR_HOST_MEMORY;
	l->token_id = s->token_id;
	l->who = who;
	l->next = s->app->logins;
	s->app->logins = l;
	log_info("uid %u pid %d: %s login on token %lld", (unsigned)r->peer->uid, (int)r->peer->pid,
		 who == CKU_SO ? "SO" : "user", (long long)s->token_id);
	return CKR_OK;
}

static CK_RV
process_logout(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (login_of(s->app, s->token_id) == NOBODY)
		return CKR_USER_NOT_LOGGED_IN;
	logout_app(s->app, s->token_id);
	return CKR_OK;
}

/*
 * keymgr unlock: the user PIN, checked like any login (failures count),
 * unlocks the token for every application of the caller's uid for the
 * given time. Only that uid benefits; keymgr lock (or the time) ends it.
 */
static CK_RV
process_unlock(struct req *r)
{
	uint32_t slot = get_u32(r), n;
	const uint8_t *pin = get_bytes(r, &n);
	uint32_t seconds = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	struct km_token *t = token_find_locked(ctx, slot);
	r->audit_token = slot;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%u s", seconds);
	if (t == NULL)
		return slot_valid(ctx, slot) ? CKR_TOKEN_NOT_RECOGNIZED : CKR_SLOT_ID_INVALID;
	if (seconds == 0 || seconds > 7 * 24 * 3600)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = token_verify_pin(ctx, slot, CKU_USER, pin, n);
	if (rv != CKR_OK)
		return rv;
	struct km_unlock *u;
	for (u = ctx->unlocks; u; u = u->next)
		if (u->uid == r->peer->uid && u->token_id == slot)
			break;
	if (u == NULL) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return CKR_HOST_MEMORY;
		u->uid = r->peer->uid;
		u->token_id = slot;
		u->next = ctx->unlocks;
		ctx->unlocks = u;
	}
	u->expires = time(NULL) + seconds;
	log_info("uid %u: token %u unlocked for %u s", (unsigned)r->peer->uid, slot, seconds);
	return CKR_OK;
}

static CK_RV
process_lock(struct req *r)
{
	uint32_t slot = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	r->audit_token = slot == 0xffffffffu ? -1 : (int64_t)slot;
	for (struct km_unlock **pp = &ctx->unlocks; *pp;) {
		struct km_unlock *u = *pp;
		if (u->uid == r->peer->uid && (slot == 0xffffffffu || u->token_id == slot)) {
			*pp = u->next;
			free(u);
		} else {
			pp = &u->next;
		}
	}
	log_info("uid %u: token(s) locked", (unsigned)r->peer->uid);
	return CKR_OK;
}

/* ---- objects ---- */

static CK_RV
read_template(struct req *r, struct attrlist *l)
{
	al_init(l, true);
	CK_RV rv = al_read_template(r->in, l);
	if (rv != CKR_OK)
		al_free(l);
	return rv;
}

/*
 * A new X.509 certificate: CKA_SUBJECT/ISSUER/SERIAL_NUMBER from its DER
 * where missing, and, without a CKA_ID, the CKA_ID of the token's public
 * key it certifies (found by key hash), so NSS pairs them.
 */
static CK_RV
complete_cert_locked(struct req *r, struct km_session *s, struct km_object *o)
{
	uint8_t keyhash[X509_KEYHASH_LEN];
	uint64_t type = CKC_X_509;
	if (al_ulong(&o->pub, CKA_CERTIFICATE_TYPE, &type) == 0 && type != CKC_X_509)
		return CKR_OK;
	CK_RV rv = x509_complete_cert(o, keyhash);
	const struct attr *id = al_find(&o->pub, CKA_ID);
	if (rv != CKR_OK || (id != NULL && id->len > 0))
		return rv;
	int64_t *ids = NULL;
	size_t n = 0;
	if (store_object_by_keyhash(r->ctx->st, s->token_id, keyhash, CKO_PUBLIC_KEY, &ids, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n && rv == CKR_OK; i++) {
		struct km_object *key;
		bool owned;
		if (object_locked(r, s, (uint32_t)ids[i], false, &key, &owned) != CKR_OK)
			continue;
		const struct attr *kid = al_find(&key->pub, CKA_ID);
		if (kid != NULL && kid->len > 0 && al_set(&o->pub, CKA_ID, kid->val, kid->len) != 0)
			rv = CKR_HOST_MEMORY;
		object_put(key, owned);
		break;
	}
	free(ids);
	return rv;
}

static CK_RV
process_create_object(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	struct attrlist tmpl;
	CK_RV rv = read_template(r, &tmpl);
	struct km_object *o = NULL;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_template_class(&tmpl, &cls, &kt)) != CKR_OK ||
	    (rv = obj_build(&tmpl, cls, kt, OM_CREATE, is_so, &o)) != CKR_OK ||
	    (rv = crypto_complete_new_key(o)) != CKR_OK ||
	    (cls == CKO_CERTIFICATE && (rv = complete_cert_locked(r, s, o)) != CKR_OK) ||
	    (rv = may_write_obj(s, o)) != CKR_OK)
		goto out;
	if ((rv = add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, o->handle);
	drop_added(&o, 1);
	o = NULL;
out:
	obj_free(o);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_copy_object(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t h = get_u32(r);
	struct attrlist tmpl;
	struct km_object *o = NULL, *c = NULL;
	bool owned = false;
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if ((rv = object_locked(r, s, h, true, &o, &owned)) != CKR_OK)
		goto out;
	if (!al_bool(&o->pub, CKA_COPYABLE, true)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	if (obj_clone(o, &c) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_set_attrs(c, &tmpl, true, is_so)) != CKR_OK)
		goto out;
	c->on_token = al_bool(&c->pub, CKA_TOKEN, false);
	if ((rv = may_write_obj(s, c)) != CKR_OK)
		goto out;
	if ((rv = add_objects_locked(r->ctx, s, &c, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, c->handle);
	drop_added(&c, 1);
	c = NULL;
out:
	obj_free(c);
	if (o)
		object_put(o, owned);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_destroy_object(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t h = get_u32(r);
	struct km_object *o;
	bool owned;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	CK_RV rv = object_locked(r, s, h, false, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	if ((rv = may_write_obj(s, o)) == CKR_OK && !al_bool(&o->pub, CKA_DESTROYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK && o->cls == CKO_PRIVATE_KEY) {
		crypto_forget_keys(); /* no parsed copy outlives the key */
		key_cache_forget_locked(r->ctx);
	}
	if (rv == CKR_OK && o->on_token) {
		if (store_object_delete(r->ctx->st, h) != 0)
			rv = CKR_DEVICE_ERROR;
	} else if (rv == CKR_OK) {
		for (struct km_sobj **pp = &r->ctx->sobjs; *pp; pp = &(*pp)->next) {
			if ((*pp)->obj == o) {
				struct km_sobj *dead = *pp;
				*pp = dead->next;
				obj_free(dead->obj);
				free(dead);
				return CKR_OK;
			}
		}
	}
	object_put(o, owned);
	return rv;
}

static CK_RV
process_object_size(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t h = get_u32(r);
	struct km_object *o;
	bool owned;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	CK_RV rv = object_locked(r, s, h, true, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	wire_put_u64(r->out, obj_size(o));
	object_put(o, owned);
	return CKR_OK;
}

static CK_RV
process_get_attrs(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t h = get_u32(r), n = get_u32(r);
	struct km_object *o;
	bool owned;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	CK_RV rv = object_locked(r, s, h, true, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r->out, n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t type = get_u32(r), len = 0;
		const uint8_t *val = NULL;
		CK_RV arv = obj_get_attr(o, type, &val, &len);
		wire_put_u32(r->out, type);
		wire_put_u32(r->out, (uint32_t)arv);
		wire_put_bytes(r->out, arv == CKR_OK ? val : NULL, arv == CKR_OK ? len : 0);
	}
	object_put(o, owned);
	return CKR_OK;
}

static CK_RV
process_set_attrs(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t h = get_u32(r);
	struct attrlist tmpl;
	struct km_object *o = NULL, *c = NULL;
	bool owned = false;
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if ((rv = object_locked(r, s, h, true, &o, &owned)) != CKR_OK)
		goto out;
	if ((rv = may_write_obj(s, o)) != CKR_OK)
		goto out;
	if (!al_bool(&o->pub, CKA_MODIFIABLE, true)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	/* Work on a copy so a failed store write leaves the object as it was. */
	if (obj_clone(o, &c) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	c->handle = o->handle;
	c->owner = o->owner;
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_set_attrs(c, &tmpl, false, is_so)) != CKR_OK)
		goto out;
	if ((rv = may_write_obj(s, c)) != CKR_OK)
		goto out;
	if (o->on_token) {
		rv = save_token_object_locked(r->ctx, c);
	} else {
		rv = obj_set_attrs(o, &tmpl, false, is_so);
	}
out:
	obj_free(c);
	if (o)
		object_put(o, owned);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_find_init(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	struct km_ctx *ctx = r->ctx;
	struct attrlist tmpl;
	struct store_filter f;
	int64_t *ids = NULL;
	size_t nids = 0;
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if (s->finding) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	bool user = user_in(s);
	memset(&f, 0, sizeof(f));
	f.include_private = user;
	uint64_t cls;
	if (al_ulong(&tmpl, CKA_CLASS, &cls) == 0) {
		f.has_cls = true;
		f.cls = (uint32_t)cls;
	}
	const struct attr *a;
	if ((a = al_find(&tmpl, CKA_ID)) != NULL) {
		f.has_ckaid = true;
		f.ckaid = a->val;
		f.ckaid_len = a->len;
	}
	if ((a = al_find(&tmpl, CKA_LABEL)) != NULL) {
		f.has_label = true;
		f.label = a->val;
		f.label_len = a->len;
	}
	size_t cap = 16, n = 0;
	uint32_t *found = malloc(cap * sizeof(*found));
	if (found == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	for (struct km_sobj *so = ctx->sobjs; so; so = so->next) {
		struct km_object *o = so->obj;
		if (!sobj_mine(ctx, s, o) || !obj_visible(o, user) || !obj_matches(o, &tmpl))
			continue;
		if (n == cap) {
			uint32_t *nf = realloc(found, 2 * cap * sizeof(*found));
			if (nf == NULL) {
				rv = CKR_HOST_MEMORY;
				goto fail;
			}
			found = nf;
			cap *= 2;
		}
		found[n++] = o->handle;
	}
	if (store_object_find(ctx->st, s->token_id, &f, &ids, &nids) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto fail;
	}
	for (size_t i = 0; i < nids; i++) {
		struct km_object *o;
		bool owned;
		if (object_locked(r, s, (uint32_t)ids[i], false, &o, &owned) != CKR_OK)
			continue;
		bool match = obj_matches(o, &tmpl);
		object_put(o, owned);
		if (!match)
			continue;
		if (n == cap) {
			uint32_t *nf = realloc(found, 2 * cap * sizeof(*found));
			if (nf == NULL) {
				rv = CKR_HOST_MEMORY;
				goto fail;
			}
			found = nf;
			cap *= 2;
		}
		found[n++] = (uint32_t)ids[i];
	}
	s->found = found;
	s->nfound = n;
	s->found_pos = 0;
	s->finding = true;
	found = NULL;
fail:
	free(found);
out:
	free(ids);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_find(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t max = get_u32(r);
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	size_t left = s->nfound - s->found_pos;
	if (max > PROTO_MAX_LIST)
		max = PROTO_MAX_LIST;
	if (left > max)
		left = max;
	wire_put_u32(r->out, (uint32_t)left);
	for (size_t i = 0; i < left; i++)
		wire_put_u32(r->out, s->found[s->found_pos++]);
	return CKR_OK;
}

static CK_RV
process_find_final(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	end_find(s);
	return CKR_OK;
}

/* ---- keys ---- */

/* Reads an 'M' field; only parameterless mechanisms generate keys. */
static CK_RV
read_keygen_mech(struct req *r, bool pair, CK_MECHANISM_TYPE *mech, CK_KEY_TYPE *kt)
{
	uint32_t n;
	*mech = get_u32(r);
	(void)get_bytes(r, &n);
	if (!crypto_keygen_mech(*mech, pair, kt))
		return CKR_MECHANISM_INVALID;
	return n ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
}

static CK_RV
process_generate_key(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE kt;
	struct attrlist tmpl;
	struct km_object *o = NULL;
	CK_RV mrv = read_keygen_mech(r, false, &mech, &kt);
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else
		rv = mrv;
	if (rv != CKR_OK || (rv = obj_template_agrees(&tmpl, CKO_SECRET_KEY, kt)) != CKR_OK)
		goto out;
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, CKO_SECRET_KEY, kt, OM_GENERATE, is_so, &o)) != CKR_OK ||
	    (rv = may_write_obj(s, o)) != CKR_OK)
		goto out;
	if ((rv = crypto_generate_key(mech, o)) != CKR_OK)
		goto out;
	if ((rv = add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, o->handle);
	drop_added(&o, 1);
	o = NULL;
out:
	obj_free(o);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_generate_key_pair(struct req *r)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = session_locked(r, get_u32(r));
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE kt;
	struct attrlist pt, vt;
	struct km_object *objs[2] = { NULL, NULL };
	CK_RV mrv = read_keygen_mech(r, true, &mech, &kt);
	CK_RV rv = read_template(r, &pt);
	if (rv != CKR_OK)
		return rv;
	if ((rv = read_template(r, &vt)) != CKR_OK) {
		al_free(&pt);
		return rv;
	}
	if (s == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else
		rv = mrv;
	if (rv != CKR_OK || (rv = obj_template_agrees(&pt, CKO_PUBLIC_KEY, kt)) != CKR_OK ||
	    (rv = obj_template_agrees(&vt, CKO_PRIVATE_KEY, kt)) != CKR_OK)
		goto out;
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&pt, CKO_PUBLIC_KEY, kt, OM_GENERATE, is_so, &objs[0])) != CKR_OK ||
	    (rv = obj_build(&vt, CKO_PRIVATE_KEY, kt, OM_GENERATE, is_so, &objs[1])) != CKR_OK ||
	    (rv = may_write_obj(s, objs[0])) != CKR_OK || (rv = may_write_obj(s, objs[1])) != CKR_OK)
		goto out;
	/* RSA-4096 takes seconds: generate without the lock. */
	s->busy = true;
	pthread_mutex_unlock(&ctx->lock);
	rv = crypto_generate_key_pair(mech, objs[0], objs[1]);
	pthread_mutex_lock(&ctx->lock);
	session_release(ctx, s);
	if (rv != CKR_OK)
		goto out;
	if ((rv = add_objects_locked(ctx, s, objs, 2)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, objs[0]->handle);
	wire_put_u32(r->out, objs[1]->handle);
	drop_added(objs, 2);
	objs[0] = objs[1] = NULL;
out:
	obj_free(objs[0]);
	obj_free(objs[1]);
	al_free(&pt);
	al_free(&vt);
	return rv;
}

/* ---- cryptographic operations ---- */

static CK_RV
process_op_init(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t kind = get_u32(r), mech = get_u32(r), plen;
	const uint8_t *param = get_bytes(r, &plen);
	uint32_t h = get_u32(r);
	struct mech_param mp;
	struct km_object *key;
	bool owned;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (kind < OP_SIGN || kind > OP_MAX)
		return CKR_ARGUMENTS_BAD;
	if (s->op[kind] != NULL)
		return CKR_OPERATION_ACTIVE;
	if (mech_param_decode(mech, param, plen, &mp) != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	CK_RV rv = key_for_use_locked(r, s, h, &key, &owned);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return CKR_KEY_HANDLE_INVALID;
	if (rv != CKR_OK)
		return rv;
	rv = lifecycle_allows(key, kind);
	if (rv == CKR_OK)
		rv = crypto_op_init(kind, mech, &mp, key, &s->op[kind]);
	if (rv == CKR_OK)
		s->need_auth[kind] = key->cls == CKO_PRIVATE_KEY &&
				     al_bool(&key->pub, CKA_ALWAYS_AUTHENTICATE, false);
	object_put(key, owned);
	return rv;
}

/*
 * OP_RUN, OP_UPDATE, OP_FINAL. The step is computed once; its output waits
 * in the session's stash until a call has room for it, so asking for the
 * length first (length_only, or too small a capacity) does not redo it.
 * shm_out: where the output goes in the peer's shared region (OP_SHM), or
 * NULL to put it in the reply.
 */
static CK_RV
op_step(struct req *r, uint32_t sh, uint32_t kind, uint32_t phase, const uint8_t *in, size_t inlen,
	const uint8_t *sig, size_t siglen, uint32_t cap, bool length_only, uint8_t *shm_out)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = session_locked(r, sh);
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (kind < OP_SIGN || kind > OP_MAX)
		return CKR_ARGUMENTS_BAD;
	if (s->op[kind] == NULL)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (s->need_auth[kind])
		return CKR_USER_NOT_LOGGED_IN;
	bool ends = phase != MSG_OP_UPDATE;
	if (s->stash_kind != kind || s->stash_phase != phase) {
		uint8_t *out = NULL;
		size_t outlen = 0;
		struct km_op *op = s->op[kind];
		clear_stash(s);
		s->busy = true;
		pthread_mutex_unlock(&ctx->lock);
		CK_RV rv;
		/* An encryption whose output fits the shared region goes there. */
		if (shm_out != NULL && !length_only && kind == OP_ENCRYPT)
			crypto_op_output_to(op, shm_out, cap);
		if (phase == MSG_OP_RUN)
			rv = crypto_op_run(op, in, inlen, sig, siglen, &out, &outlen);
		else if (phase == MSG_OP_UPDATE)
			rv = crypto_op_update(op, in, inlen, &out, &outlen);
		else
			rv = crypto_op_final(op, sig, siglen, &out, &outlen);
		crypto_op_output_to(op, NULL, 0);
		pthread_mutex_lock(&ctx->lock);
		session_release(ctx, s);
		if (rv == CKR_OK && out != NULL && out == shm_out) {
			/* Delivered in place: nothing to keep. */
			wire_put_u32(r->out, (uint32_t)outlen);
			wire_put_bytes(r->out, NULL, 0);
			if (ends)
				end_op(s, kind);
			return CKR_OK;
		}
		if (rv != CKR_OK || kind == OP_VERIFY) {
			if (out != shm_out)
				free(out);
			if (rv != CKR_OK || ends)
				end_op(s, kind);
			if (rv == CKR_OK) {
				wire_put_u32(r->out, 0);
				wire_put_bytes(r->out, NULL, 0);
			}
			return rv;
		}
		s->stash = out;
		s->stash_len = outlen;
		s->stash_kind = kind;
		s->stash_phase = phase;
	}
	if (s->stash_len > UINT32_MAX)
		return CKR_DEVICE_ERROR;
	wire_put_u32(r->out, (uint32_t)s->stash_len);
	if (length_only) {
		wire_put_bytes(r->out, NULL, 0);
		return CKR_OK;
	}
	if (cap < s->stash_len) {
		wire_put_bytes(r->out, NULL, 0);
		return CKR_BUFFER_TOO_SMALL;
	}
	if (shm_out != NULL) {
		if (s->stash_len)
			memcpy(shm_out, s->stash, s->stash_len);
		wire_put_bytes(r->out, NULL, 0);
	} else {
		wire_put_bytes(r->out, s->stash, s->stash_len);
	}
	clear_stash(s);
	if (ends)
		end_op(s, kind);
	return CKR_OK;
}

static CK_RV
process_op_step(struct req *r, uint32_t phase)
{
	uint32_t sh = get_u32(r), kind = get_u32(r), inlen, siglen;
	const uint8_t *in = get_bytes(r, &inlen);
	const uint8_t *sig = get_bytes(r, &siglen);
	uint32_t cap = get_u32(r);
	bool length_only = get_bool(r);
	return op_step(r, sh, kind, phase, in, inlen, sig, siglen, cap, length_only, NULL);
}

static CK_RV process_op_run(struct req *r) { return process_op_step(r, MSG_OP_RUN); }
static CK_RV process_op_update(struct req *r) { return process_op_step(r, MSG_OP_UPDATE); }
static CK_RV process_op_final(struct req *r) { return process_op_step(r, MSG_OP_FINAL); }

/* A step whose input and output are in the peer's shared region. */
static CK_RV
process_op_shm(struct req *r)
{
	uint32_t sh = get_u32(r), kind = get_u32(r), phase = get_u32(r), siglen;
	uint64_t in_off = get_u64(r), inlen = get_u64(r);
	const uint8_t *sig = get_bytes(r, &siglen);
	uint64_t out_off = get_u64(r);
	uint32_t cap = get_u32(r);
	bool length_only = get_bool(r);
	const struct km_peer *p = r->peer;
	if (phase != MSG_OP_RUN && phase != MSG_OP_UPDATE && phase != MSG_OP_FINAL)
		return CKR_ARGUMENTS_BAD;
	if (p->shm == NULL || in_off > p->shm_size || inlen > p->shm_size - in_off ||
	    out_off > p->shm_size || cap > p->shm_size - out_off)
		return CKR_ARGUMENTS_BAD;
	return op_step(r, sh, kind, phase, p->shm + in_off, (size_t)inlen, sig, siglen, cap, length_only,
		       p->shm + out_off);
}

/* Unmaps the peer's shared region. */
static void
shm_release(struct km_peer *p)
{
	if (p->shm != NULL)
		munmap(p->shm, p->shm_size);
	p->shm = NULL;
	p->shm_size = 0;
}

/* Largest shared region a peer may attach. */
#define SHM_MAX (2 * (uint64_t)WIRE_MAX_FRAME)

/*
 * SHM_ATTACH: maps the memfd that came with the request. It must be sealed
 * against shrinking: a region that shrank under keymgrd would fault on the
 * next access and kill the daemon (SIGBUS). Any other file is refused.
 */
static CK_RV
process_shm_attach(struct req *r)
{
	uint64_t size = get_u64(r);
	struct km_peer *p = r->peer;
	int fd = p->pending_fd;
	struct stat st;
	CK_RV rv = CKR_ARGUMENTS_BAD;
	p->pending_fd = -1;
	if (fd < 0)
		return CKR_ARGUMENTS_BAD;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    size == 0 || size > SHM_MAX || (uint64_t)st.st_size != size) {
		log_warn("peer pid %d: shared region refused (not a memfd sealed against shrinking, "
			 "or not of the size announced)", (int)p->pid);
		goto out;
	}
	void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rv = CKR_DEVICE_MEMORY;
		goto out;
	}
	shm_release(p);
	p->shm = m;
	p->shm_size = (size_t)size;
	rv = CKR_OK;
out:
	close(fd);
	return rv;
}

/* C_SessionCancel: ends the operations named by CKF_ flags. */
static CK_RV
process_session_cancel(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t flags = get_u32(r);
	static const struct { CK_FLAGS flag; enum proto_op op; } ops[] = {
		{ CKF_SIGN, OP_SIGN }, { CKF_VERIFY, OP_VERIFY },
		{ CKF_ENCRYPT, OP_ENCRYPT }, { CKF_DECRYPT, OP_DECRYPT },
		{ CKF_SIGN_RECOVER, OP_SIGN_RECOVER }, { CKF_VERIFY_RECOVER, OP_VERIFY_RECOVER },
	};
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (flags & ops[i].flag)
			end_op(s, ops[i].op);
	if (flags & CKF_FIND_OBJECTS)
		end_find(s);
	return CKR_OK;
}

/* ---- wrapping ---- */

/* Reads an 'M' field into *type and *p (pointing into the request). */
static CK_RV
read_mech(struct req *r, CK_MECHANISM_TYPE *type, struct mech_param *p)
{
	uint32_t n;
	*type = get_u32(r);
	const uint8_t *param = get_bytes(r, &n);
	return mech_param_decode(*type, param, n, p) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
}

/* The class and key type of a template for a new secret key (unwrap,
 * derive): coyeu makes only secret keys that way. */
static CK_RV
secret_template(const struct attrlist *tmpl, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt)
{
	CK_RV rv = obj_template_class(tmpl, cls, kt);
	if (rv == CKR_OK && (*cls != CKO_SECRET_KEY || *kt == ATTR_ANY_KEY))
		rv = CKR_TEMPLATE_INCONSISTENT; /* see docs/conformance.md */
	return rv;
}

/*
 * Gives the new secret key *o (built from the template) its value, checks
 * it, and adds it to the token or the session; replies with its handle.
 * *o is consumed on success (set to NULL).
 */
static CK_RV
add_secret_locked(struct req *r, struct km_session *s, struct km_object **o, const uint8_t *val, size_t vlen)
{
	CK_RV rv;
	if (al_set(&(*o)->sec, CKA_VALUE, val, vlen) != 0)
		return CKR_HOST_MEMORY;
	if ((rv = crypto_complete_new_key(*o)) != CKR_OK || (rv = may_write_obj(s, *o)) != CKR_OK ||
	    (rv = add_objects_locked(r->ctx, s, o, 1)) != CKR_OK)
		return rv;
	wire_put_u32(r->out, (*o)->handle);
	drop_added(o, 1);
	*o = NULL;
	return CKR_OK;
}

static CK_RV
process_wrap_key(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t wh = get_u32(r), kh = get_u32(r), cap = get_u32(r);
	bool length_only = get_bool(r);
	struct km_object *wk = NULL, *key = NULL;
	bool wown = false, kown = false;
	uint8_t *out = NULL;
	size_t outlen = 0;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	CK_RV rv = object_locked(r, s, wh, true, &wk, &wown);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_WRAPPING_KEY_HANDLE_INVALID;
	if (rv != CKR_OK)
		goto out;
	if ((rv = object_locked(r, s, kh, true, &key, &kown)) != CKR_OK) {
		if (rv == CKR_OBJECT_HANDLE_INVALID)
			rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	/* Secret keys travel as their value, private keys as PKCS #8. */
	const struct attr *v = al_find(&key->sec, CKA_VALUE);
	uint8_t *p8 = NULL;
	size_t p8len = 0;
	if (key->cls != CKO_SECRET_KEY && key->cls != CKO_PRIVATE_KEY)
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (key->cls == CKO_SECRET_KEY && v == NULL)
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (!al_bool(&key->pub, CKA_EXTRACTABLE, false))
		rv = CKR_KEY_UNEXTRACTABLE;
	else if (al_bool(&key->pub, CKA_WRAP_WITH_TRUSTED, false) && !al_bool(&wk->pub, CKA_TRUSTED, false))
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (!obj_wrap_allows(wk, key))
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if ((rv = prv) == CKR_OK && (rv = lifecycle_allows(wk, OP_ENCRYPT)) == CKR_OK &&
		 (key->cls == CKO_SECRET_KEY || (rv = x509_private_to_pkcs8(key, &p8, &p8len)) == CKR_OK))
		rv = p8 ? crypto_wrap(mech, &mp, wk, p8, p8len, &out, &outlen)
			: crypto_wrap(mech, &mp, wk, v->val, v->len, &out, &outlen);
	if (p8) {
		wire_wipe(p8, p8len);
		free(p8);
	}
	if (rv != CKR_OK)
		goto out;
	wire_put_u32(r->out, (uint32_t)outlen);
	if (length_only) {
		wire_put_bytes(r->out, NULL, 0);
	} else if (cap < outlen) {
		wire_put_bytes(r->out, NULL, 0);
		rv = CKR_BUFFER_TOO_SMALL;
	} else {
		wire_put_bytes(r->out, out, outlen);
	}
out:
	if (out) {
		wire_wipe(out, outlen);
		free(out);
	}
	if (wk)
		object_put(wk, wown);
	if (key)
		object_put(key, kown);
	return rv;
}

static CK_RV
process_unwrap_key(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t uh = get_u32(r), wlen;
	const uint8_t *wrapped = get_bytes(r, &wlen);
	struct attrlist tmpl;
	struct km_object *uk = NULL, *o = NULL;
	bool uown = false;
	uint8_t *val = NULL;
	size_t vlen = 0;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if ((rv = object_locked(r, s, uh, true, &uk, &uown)) != CKR_OK) {
		if (rv == CKR_OBJECT_HANDLE_INVALID)
			rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
		goto out;
	}
	/* A private key (RSA, P-curve or Edwards) comes as PKCS #8; any other
	 * new key must be a secret one. The unwrapping key's
	 * CKA_UNWRAP_TEMPLATE joins the caller's template first. */
	if ((rv = prv) != CKR_OK || (rv = obj_apply_template(uk, CKA_UNWRAP_TEMPLATE, &tmpl)) != CKR_OK ||
	    (rv = obj_template_class(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	bool priv = cls == CKO_PRIVATE_KEY && (kt == CKK_RSA || kt == CKK_EC || kt == CKK_EC_EDWARDS);
	if (!priv && (rv = secret_template(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	if ((rv = lifecycle_allows(uk, OP_DECRYPT)) != CKR_OK ||
	    (rv = crypto_unwrap(mech, &mp, uk, wrapped, wlen, &val, &vlen)) != CKR_OK)
		goto out;
	if (priv) {
		bool so_in = login_of(s->app, s->token_id) == CKU_SO;
		if ((rv = obj_build(&tmpl, cls, kt, OM_UNWRAP, so_in, &o)) != CKR_OK ||
		    (rv = x509_pkcs8_to_private(val, vlen, o)) != CKR_OK ||
		    (rv = crypto_complete_new_key(o)) != CKR_OK || (rv = may_write_obj(s, o)) != CKR_OK ||
		    (rv = add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
			goto out;
		wire_put_u32(r->out, o->handle);
		drop_added(&o, 1);
		o = NULL;
		goto out;
	}
	/* With a mechanism that keeps block padding, CKA_VALUE_LEN says how
	 * much of the plaintext is the key. */
	uint64_t want;
	if (al_ulong(&tmpl, CKA_VALUE_LEN, &want) == 0) {
		if (want > vlen) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			goto out;
		}
		vlen = want;
	}
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, cls, kt, OM_UNWRAP, is_so, &o)) == CKR_OK)
		rv = add_secret_locked(r, s, &o, val, vlen);
out:
	if (val) {
		wire_wipe(val, vlen);
		free(val);
	}
	obj_free(o);
	if (uk)
		object_put(uk, uown);
	al_free(&tmpl);
	return rv;
}

static CK_RV
process_derive_key(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t bh = get_u32(r);
	struct attrlist tmpl;
	struct km_object *base = NULL, *o = NULL;
	bool bown = false;
	uint8_t *val = NULL;
	size_t vlen = 0;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	CK_RV rv = read_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if (s == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	if ((rv = object_locked(r, s, bh, true, &base, &bown)) != CKR_OK) {
		if (rv == CKR_OBJECT_HANDLE_INVALID)
			rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	if ((rv = prv) != CKR_OK || (rv = obj_apply_template(base, CKA_DERIVE_TEMPLATE, &tmpl)) != CKR_OK ||
	    (rv = secret_template(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	/* The length comes from the key type or CKA_VALUE_LEN. */
	uint64_t want = 0;
	if (kt == CKK_DES3)
		want = 24;
	else if (al_ulong(&tmpl, CKA_VALUE_LEN, &want) != 0) {
		rv = CKR_TEMPLATE_INCOMPLETE;
		goto out;
	}
	if (want == 0 || want > 512) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	bool is_so = login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, cls, kt, OM_GENERATE, is_so, &o)) != CKR_OK)
		goto out;
	if ((rv = lifecycle_allows(base, OP_SIGN)) != CKR_OK ||
	    (rv = crypto_derive(mech, &mp, base, want, &val, &vlen)) != CKR_OK)
		goto out;
	/* A derived key is not local; it stays always-sensitive and
	 * never-extractable only if its base key was. */
	bool sens = al_bool(&o->pub, CKA_SENSITIVE, true), extr = al_bool(&o->pub, CKA_EXTRACTABLE, false);
	if (al_set_bool(&o->pub, CKA_LOCAL, false) ||
	    al_set_bool(&o->pub, CKA_ALWAYS_SENSITIVE, sens && al_bool(&base->pub, CKA_ALWAYS_SENSITIVE, false)) ||
	    al_set_bool(&o->pub, CKA_NEVER_EXTRACTABLE, !extr && al_bool(&base->pub, CKA_NEVER_EXTRACTABLE, false)) ||
	    al_set_ulong(&o->pub, CKA_KEY_GEN_MECHANISM, mech)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = add_secret_locked(r, s, &o, val, vlen);
out:
	if (val) {
		wire_wipe(val, vlen);
		free(val);
	}
	obj_free(o);
	if (base)
		object_put(base, bown);
	al_free(&tmpl);
	return rv;
}

/* ---- key lifecycle ---- */

/* keymgr key retire/revoke/destroy: the user of the token moves a key
 * version (every key object with the CKA_ID) to a new state. */
static CK_RV
process_key_state(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t n;
	const uint8_t *id = get_bytes(r, &n);
	uint32_t state = get_u32(r), reason = get_u32(r), changed = 0;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "id ");
	for (uint32_t i = 0; i < n && i < 24; i++)
		snprintf(r->audit_obj + 3 + 2 * i, 3, "%02x", id[i]);
	if (!user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	if (state < COYEU_KEY_ACTIVE || state > COYEU_KEY_DESTROYED || reason > 10)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = lifecycle_set_locked(r->ctx, s->token_id, id, n, state, reason, &changed);
	if (rv == CKR_OK)
		wire_put_u32(r->out, changed);
	/* A revocation is published at once by the token's CAs. */
	if (rv == CKR_OK && state == COYEU_KEY_REVOKED)
		ca_refresh_locked(r->ctx, s->token_id);
	return rv;
}

/* ---- certificates and the inventory ---- */

/* The CKA_ID of token_id's public key whose key hash is keyhash, if any. */
static int
key_id_for(struct req *r, struct km_session *s, const uint8_t *keyhash, struct attrlist *into)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int found = 0;
	if (store_object_by_keyhash(r->ctx->st, s->token_id, keyhash, CKO_PUBLIC_KEY, &ids, &n) != 0)
		return -1;
	for (size_t i = 0; i < n && !found; i++) {
		struct km_object *key;
		bool owned;
		if (object_locked(r, s, (uint32_t)ids[i], false, &key, &owned) != CKR_OK)
			continue;
		const struct attr *kid = al_find(&key->pub, CKA_ID);
		if (kid != NULL && kid->len > 0)
			found = al_set(into, CKA_ID, kid->val, kid->len) == 0 ? 1 : -1;
		object_put(key, owned);
	}
	free(ids);
	return found;
}

/*
 * keymgr cert import: all the certificates or none, in one transaction.
 * Each becomes a public token certificate object (label: its CN) with the
 * CKA_ID of the key it certifies when the token has it; one already on
 * the token (same issuer and serial) is counted and skipped.
 */
/* A certificate of an import, parsed. */
struct import_cert {
	const uint8_t *der;
	uint32_t len;
	struct x509_cert c;
};

/* Parses the count certificates of blob b into certs; returns 0, the
 * 1-based index of the first that does not parse, or -1 when the blob
 * itself is malformed. */
static long
parse_import(struct wire_buf *b, uint32_t count, struct import_cert *certs)
{
	for (uint32_t i = 0; i < count; i++) {
		if (wire_get_bytes(b, &certs[i].der, &certs[i].len) != 0)
			return -1;
		if (x509_parse_cert(certs[i].der, certs[i].len, &certs[i].c) != 0)
			return (long)i + 1;
	}
	return wire_end(b) != 0 ? -1 : 0;
}

/*
 * keymgr cert import: all or nothing, in one transaction. The certificates
 * are parsed without keymgrd's lock (a few thousand take a while); only
 * the store's part holds it.
 */
static CK_RV
process_cert_import(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t len, count = 0;
	const uint8_t *blob = get_bytes(r, &len);
	struct km_ctx *ctx = r->ctx;
	struct wire_buf b;
	uint32_t imported = 0, dups = 0, nokey = 0, bad = 0, activated = 0;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	wire_init_view(&b, blob, len);
	if (token_find_locked(ctx, s->token_id) == NULL || wire_get_u32(&b, &count) != 0 || count > 100000)
		return CKR_ARGUMENTS_BAD;
	struct import_cert *certs = calloc(count ? count : 1, sizeof(*certs));
	if (certs == NULL)
		return CKR_HOST_MEMORY;
	s->busy = true;
	pthread_mutex_unlock(&ctx->lock);
	long parsed = parse_import(&b, count, certs);
	pthread_mutex_lock(&ctx->lock);
	session_release(ctx, s);
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%u certificates", count);
	CK_RV rv = CKR_OK;
	struct km_token *t = token_find_locked(ctx, s->token_id);
	if (parsed < 0)
		rv = CKR_ARGUMENTS_BAD;
	else if (t == NULL || !user_in(s))
		rv = CKR_USER_NOT_LOGGED_IN; /* logged out, or the token re-initialised, meanwhile */
	else if (parsed > 0)
		bad = (uint32_t)parsed;
	else if (store_begin(ctx->st) != 0)
		rv = CKR_DEVICE_ERROR;
	for (uint32_t i = 0; i < count && bad == 0 && rv == CKR_OK; i++) {
		struct x509_cert *c = &certs[i].c;
		struct attrlist tmpl;
		struct km_object *o = NULL;
		bool exists = false;
		if (store_cert_exists(ctx->st, s->token_id, c->issuer, c->issuer_len, c->serial, c->serial_len,
				      &exists) != 0) {
			rv = CKR_DEVICE_ERROR;
		} else if (exists) {
			dups++;
		} else {
			al_init(&tmpl, false);
			int e = x509_cert_template(c, certs[i].der, certs[i].len, &tmpl);
			int k = e ? -1 : key_id_for(r, s, c->keyhash, &tmpl);
			if (e || k < 0)
				rv = CKR_HOST_MEMORY;
			else if ((rv = obj_build(&tmpl, CKO_CERTIFICATE, ATTR_ANY_KEY, OM_CREATE, false, &o)) == CKR_OK) {
				o->token_id = s->token_id;
				if (token_stamp_object(o) != 0 || token_insert_object_intx(ctx, t, o) != 0)
					rv = CKR_DEVICE_ERROR;
				else {
					imported++;
					nokey += k == 0;
				}
			}
			/* The certificate of a rotated key's new version
			 * activates it and retires the old one. */
			const struct attr *kid = al_find(&tmpl, CKA_ID);
			bool act = false;
			if (rv == CKR_OK && k > 0 && kid != NULL &&
			    (rv = rotate_activate_intx(ctx, s->token_id, kid->val, kid->len, &act)) == CKR_OK)
				activated += act;
			obj_free(o);
			al_free(&tmpl);
		}
	}
	if (parsed == 0 && rv == CKR_OK && store_commit(ctx->st) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		store_rollback(ctx->st); /* nothing when no transaction is open */
	for (uint32_t i = 0; i < count; i++)
		x509_cert_clear(&certs[i].c);
	free(certs);
	/* Thousands of small parse results, freed among what the store pass
	 * allocated, stay in the worker's heap (48 instead of 16 MiB
	 * resident after 100,000 imported): give them back. */
	if (count >= 1000)
		malloc_trim(0);
	if (rv != CKR_OK)
		return rv;
	if (bad)
		imported = dups = nokey = activated = 0;
	if (activated)
		snprintf(r->audit_obj, sizeof(r->audit_obj), "%u certificates, %u key versions activated", count,
			 activated);
	wire_put_u32(r->out, imported);
	wire_put_u32(r->out, dups);
	wire_put_u32(r->out, nokey);
	wire_put_u32(r->out, bad);
	wire_put_u32(r->out, activated);
	return CKR_OK;
}

/* keymgr key rotate: the new version is generated (and its request
 * signed) without the lock, like any key pair. */
static CK_RV
process_key_rotate(struct req *r)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = session_locked(r, get_u32(r));
	uint32_t n;
	const uint8_t *label = get_bytes(r, &n);
	struct rotation *rot = NULL;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	CK_RV rv = rotate_prepare_locked(ctx, s->token_id, label, n, &rot);
	if (rv == CKR_OK) {
		s->busy = true;
		pthread_mutex_unlock(&ctx->lock);
		rv = rotate_generate(rot);
		pthread_mutex_lock(&ctx->lock);
		session_release(ctx, s);
	}
	if (rv == CKR_OK)
		rv = rotate_commit_locked(ctx, rot, r->peer->uid, s->handle);
	if (rv == CKR_OK) {
		const uint8_t *id, *csr;
		size_t idlen, csrlen;
		uint64_t version;
		rotate_result(rot, &id, &idlen, &version, &csr, &csrlen);
		wire_put_u32(r->out, (uint32_t)version);
		wire_put_bytes(r->out, id, idlen);
		wire_put_bytes(r->out, csr, csrlen);
		wire_put_u32(r->out, 0);
	} else if (rv == CKR_OPERATION_ACTIVE) {
		/* Rotated already, waiting for the certificate: the pending
		 * version's request again (its first answer may have been lost). */
		uint8_t id[64], *csr = NULL;
		size_t idlen = 0, csrlen = 0;
		uint64_t version = 0;
		rv = rotate_pending_request_locked(ctx, s->token_id, label, n, &version, id, &idlen, &csr, &csrlen);
		if (rv == CKR_OK) {
			wire_put_u32(r->out, (uint32_t)version);
			wire_put_bytes(r->out, id, idlen);
			wire_put_bytes(r->out, csr, csrlen);
			wire_put_u32(r->out, 1);
		}
		free(csr);
	} else {
		/* A rotation that happened is audited inside its transaction. */
		audit_locked(ctx, r->peer->uid, s->token_id, s->handle, "key-rotate", "", rv);
	}
	rotate_free(rot);
	return rv;
}

/* keymgr key rotate --due: the keys the rotation policy finds due. */
static CK_RV
process_rotate_due(struct req *r)
{
	struct km_session *s = session_locked(r, get_u32(r));
	uint64_t ahead = 0;
	wire_get_u64(r->in, &ahead);
	struct rotate_key *v = NULL;
	size_t n = 0;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if (ahead > 100ull * 365 * 86400)
		return CKR_ARGUMENTS_BAD;
	if (rotate_due_locked(r->ctx, s->token_id, time(NULL) + (int64_t)ahead, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	struct wire_buf b;
	wire_init(&b, WIRE_MAX_FRAME / 2);
	wire_put_u32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_bytes(&b, v[i].label, v[i].len);
	CK_RV rv = wire_error(&b) ? CKR_DEVICE_MEMORY : CKR_OK;
	if (rv == CKR_OK)
		wire_put_bytes(r->out, b.data, b.size);
	wire_free(&b);
	free(v);
	return rv;
}

/* The session of a request that needs the logged-in user and a R/W session. */
static CK_RV
rw_user_session(struct req *r, struct km_session **out)
{
	struct km_session *s = session_locked(r, get_u32(r));
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (!user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if (!(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	*out = s;
	return CKR_OK;
}

static CK_RV
process_cert_issue(struct req *r)
{
	struct km_session *s = NULL;
	CK_RV rv = rw_user_session(r, &s);
	uint32_t ln, cn, days = 0;
	const uint8_t *label = get_bytes(r, &ln), *csr = get_bytes(r, &cn);
	uint8_t *der = NULL;
	size_t len = 0;
	days = get_u32(r);
	if (rv != CKR_OK)
		return rv;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
	if (days == 0 || days > 100 * 366)
		return CKR_ARGUMENTS_BAD;
	if ((rv = ca_issue_locked(r->ctx, s->token_id, label, ln, csr, cn, days, &der, &len)) == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	return rv;
}

static CK_RV
process_crl_generate(struct req *r)
{
	struct km_session *s = NULL;
	CK_RV rv = rw_user_session(r, &s);
	uint32_t ln, days;
	const uint8_t *label = get_bytes(r, &ln);
	uint8_t *der = NULL;
	size_t len = 0;
	days = get_u32(r);
	if (rv != CKR_OK)
		return rv;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
	if (days == 0 || days > 3660)
		return CKR_ARGUMENTS_BAD;
	if ((rv = ca_crl_locked(r->ctx, s->token_id, label, ln, days, &der, &len)) == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	return rv;
}

static CK_RV
process_key_csr(struct req *r)
{
	struct km_session *s = NULL;
	CK_RV rv = rw_user_session(r, &s);
	uint32_t ln;
	const uint8_t *label = get_bytes(r, &ln);
	char *subject = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	wire_get_str(r->in, &subject);
	if (rv == CKR_OK)
		rv = rotate_request_locked(r->ctx, s->token_id, label, ln, subject && *subject ? subject : NULL, &der,
					   &len);
	if (rv == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	free(subject);
	return rv;
}

static CK_RV
process_ca_init(struct req *r)
{
	struct km_session *s = NULL;
	CK_RV rv = rw_user_session(r, &s);
	uint32_t ln, days;
	const uint8_t *label = get_bytes(r, &ln);
	char *subject = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	wire_get_str(r->in, &subject);
	days = get_u32(r);
	if (rv == CKR_OK && (subject == NULL || !*subject || days == 0 || days > 100 * 366))
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK) {
		snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
		rv = ca_self_sign_locked(r->ctx, s->token_id, label, ln, subject, days, &der, &len);
	}
	if (rv == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	free(subject);
	return rv;
}

static CK_RV
process_inventory(struct req *r)
{
	uint32_t slot = get_u32(r);
	char *agency = NULL, *status = NULL;
	uint64_t before = 0;
	wire_get_str(r->in, &agency);
	wire_get_str(r->in, &status);
	wire_get_u64(r->in, &before);
	struct store_cert_filter f = { .agency = agency && *agency ? agency : NULL,
				       .status = status && *status ? status : NULL, .expires_before = (int64_t)before };
	struct store_cert *v = NULL;
	size_t n = 0;
	CK_RV rv = CKR_OK;
	if (token_find_locked(r->ctx, slot) == NULL)
		rv = slot_valid(r->ctx, slot) ? CKR_TOKEN_NOT_RECOGNIZED : CKR_SLOT_ID_INVALID;
	else if (store_cert_list(r->ctx->st, slot, &f, time(NULL), &v, &n) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		struct wire_buf b;
		wire_init(&b, WIRE_MAX_FRAME / 2);
		wire_put_u32(&b, (uint32_t)n);
		for (size_t i = 0; i < n; i++) {
			wire_put_u64(&b, (uint64_t)v[i].object_id);
			wire_put_str(&b, v[i].holder);
			wire_put_str(&b, v[i].agency);
			wire_put_str(&b, v[i].unit);
			wire_put_u64(&b, (uint64_t)v[i].not_before);
			wire_put_u64(&b, (uint64_t)v[i].not_after);
			wire_put_bytes(&b, v[i].key_id_buf, v[i].key_id_len);
			wire_put_str(&b, v[i].status);
			wire_put_u32(&b, v[i].reason);
			wire_put_u64(&b, (uint64_t)v[i].revoked_at);
			wire_put_bytes(&b, v[i].serial_buf, v[i].serial_len);
		}
		if (wire_error(&b) == 0)
			wire_put_bytes(r->out, b.data, b.size);
		else
			rv = CKR_DEVICE_MEMORY;
		wire_free(&b);
	}
	free(v);
	free(agency);
	free(status);
	return rv;
}

/* ---- the audit trail ---- */

/* Audit requests are for the daemon's own user and root only. */
static bool
peer_is_admin(const struct km_peer *p)
{
	return p->uid == 0 || p->uid == geteuid();
}

static CK_RV
process_audit_list(struct req *r)
{
	uint64_t from = 0;
	wire_get_u64(r->in, &from);
	uint32_t max = get_u32(r);
	struct store_audit *v = NULL;
	size_t n = 0;
	if (!peer_is_admin(r->peer))
		return CKR_ACTION_PROHIBITED;
	if (max > 10000)
		max = 10000;
	if (store_audit_list(r->ctx->st, (int64_t)from, max, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	struct wire_buf b;
	wire_init(&b, WIRE_MAX_FRAME / 2);
	wire_put_u32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wire_put_u64(&b, (uint64_t)v[i].id);
		wire_put_u64(&b, (uint64_t)v[i].time);
		wire_put_u32(&b, v[i].uid);
		wire_put_u64(&b, (uint64_t)v[i].token);
		wire_put_u32(&b, v[i].session);
		wire_put_str(&b, v[i].op);
		wire_put_str(&b, v[i].object);
		wire_put_u32(&b, v[i].result);
		wire_put_bytes(&b, v[i].hash, 32);
	}
	free(v);
	CK_RV rv = wire_error(&b) ? CKR_DEVICE_MEMORY : CKR_OK;
	if (rv == CKR_OK)
		wire_put_bytes(r->out, b.data, b.size);
	wire_free(&b);
	return rv;
}

static CK_RV
process_audit_verify(struct req *r)
{
	struct audit_check c;
	if (!peer_is_admin(r->peer))
		return CKR_ACTION_PROHIBITED;
	if (audit_verify_locked(r->ctx, &c) != 0)
		return CKR_DEVICE_ERROR;
	wire_put_u64(r->out, c.entries);
	wire_put_u64(r->out, (uint64_t)c.bad_id);
	wire_put_str(r->out, c.why);
	return CKR_OK;
}

/* Requests that change state or prove who someone is: each leaves an
 * audit entry, failures included. */
static bool
audited(uint32_t type)
{
	switch (type) {
	case MSG_INIT_TOKEN: case MSG_INIT_PIN: case MSG_SET_PIN: case MSG_LOGIN: case MSG_LOGOUT:
	case MSG_CREATE_OBJECT: case MSG_COPY_OBJECT: case MSG_DESTROY_OBJECT: case MSG_SET_ATTRS:
	case MSG_GENERATE_KEY: case MSG_GENERATE_KEY_PAIR: case MSG_WRAP_KEY: case MSG_UNWRAP_KEY:
	case MSG_DERIVE_KEY: case MSG_UNLOCK: case MSG_LOCK: case MSG_KEY_STATE: case MSG_CERT_IMPORT:
	case MSG_CERT_ISSUE: case MSG_CRL_GENERATE: case MSG_CA_INIT:
		return true;
	}
	return false;
}

/* Records request type's outcome; new objects are named by the handles
 * at the start of the reply fields. */
static void
audit_request_locked(struct req *r, const struct proto_msg *m, CK_RV rv)
{
	static const uint32_t makers[] = { MSG_CREATE_OBJECT, MSG_COPY_OBJECT, MSG_GENERATE_KEY,
					   MSG_UNWRAP_KEY, MSG_DERIVE_KEY, MSG_GENERATE_KEY_PAIR };
	char obj[sizeof(r->audit_obj)];
	snprintf(obj, sizeof(obj), "%s", r->audit_obj);
	for (size_t i = 0; rv == CKR_OK && i < sizeof(makers) / sizeof(makers[0]); i++) {
		if (m->type != makers[i] || r->out->size < 4)
			continue;
		uint32_t h = wire_load_u32(r->out->data);
		if (m->type == MSG_GENERATE_KEY_PAIR && r->out->size >= 8)
			snprintf(obj, sizeof(obj), "objects %u %u", h, wire_load_u32(r->out->data + 4));
		else
			snprintf(obj, sizeof(obj), "object %u", h);
	}
	audit_locked(r->ctx, r->peer->uid, r->audit_token, r->audit_session, m->name, obj, rv);
}

/* ---- the table ---- */

typedef CK_RV (*handler_fn)(struct req *r);

static const handler_fn handlers[MSG_COUNT] = {
	[MSG_HELLO] = process_hello,
	[MSG_SLOT_LIST] = process_slot_list,
	[MSG_SLOT_INFO] = process_slot_info,
	[MSG_TOKEN_INFO] = process_token_info,
	[MSG_MECH_LIST] = process_mech_list,
	[MSG_MECH_INFO] = process_mech_info,
	[MSG_INIT_TOKEN] = process_init_token,
	[MSG_INIT_PIN] = process_init_pin,
	[MSG_SET_PIN] = process_set_pin,
	[MSG_OPEN_SESSION] = process_open_session,
	[MSG_CLOSE_SESSION] = process_close_session,
	[MSG_CLOSE_ALL] = process_close_all,
	[MSG_SESSION_INFO] = process_session_info,
	[MSG_LOGIN] = process_login,
	[MSG_LOGOUT] = process_logout,
	[MSG_CREATE_OBJECT] = process_create_object,
	[MSG_COPY_OBJECT] = process_copy_object,
	[MSG_DESTROY_OBJECT] = process_destroy_object,
	[MSG_OBJECT_SIZE] = process_object_size,
	[MSG_GET_ATTRS] = process_get_attrs,
	[MSG_SET_ATTRS] = process_set_attrs,
	[MSG_FIND_INIT] = process_find_init,
	[MSG_FIND] = process_find,
	[MSG_FIND_FINAL] = process_find_final,
	[MSG_GENERATE_KEY] = process_generate_key,
	[MSG_GENERATE_KEY_PAIR] = process_generate_key_pair,
	[MSG_OP_INIT] = process_op_init,
	[MSG_OP_RUN] = process_op_run,
	[MSG_OP_UPDATE] = process_op_update,
	[MSG_OP_FINAL] = process_op_final,
	[MSG_OP_SHM] = process_op_shm,
	[MSG_SHM_ATTACH] = process_shm_attach,
	[MSG_SESSION_CANCEL] = process_session_cancel,
	[MSG_WRAP_KEY] = process_wrap_key,
	[MSG_UNWRAP_KEY] = process_unwrap_key,
	[MSG_DERIVE_KEY] = process_derive_key,
	[MSG_UNLOCK] = process_unlock,
	[MSG_LOCK] = process_lock,
	[MSG_AUDIT_LIST] = process_audit_list,
	[MSG_AUDIT_VERIFY] = process_audit_verify,
	[MSG_KEY_STATE] = process_key_state,
	[MSG_CERT_IMPORT] = process_cert_import,
	[MSG_INVENTORY] = process_inventory,
	[MSG_KEY_ROTATE] = process_key_rotate,
	[MSG_ROTATE_DUE] = process_rotate_due,
	[MSG_CERT_ISSUE] = process_cert_issue,
	[MSG_CRL_GENERATE] = process_crl_generate,
	[MSG_KEY_CSR] = process_key_csr,
	[MSG_CA_INIT] = process_ca_init,
};

int
dispatch_request(struct km_ctx *ctx, struct km_peer *peer, struct wire_buf *req,
		 struct wire_buf *rep)
{
	uint32_t type;
	struct wire_buf fields;
	if (wire_get_u32(req, &type) != 0)
		return CY_ERR_TRUNCATED;
	const struct proto_msg *m = proto_msg(type);
	wire_reset(rep);
	if (m == NULL || handlers[type] == NULL) {
		log_debug("peer pid %d: unknown request type %u", (int)peer->pid, type);
		return proto_begin_reply(rep, type, CKR_FUNCTION_NOT_SUPPORTED);
	}
	int e = proto_check_sig(req, m->req_sig);
	if (e != 0) {
		log_warn("peer pid %d: malformed %s request: %s", (int)peer->pid, m->name, cy_strerror(e));
		return e;
	}
	if (type != MSG_HELLO && peer->app == NULL) {
		log_warn("peer pid %d: %s before hello", (int)peer->pid, m->name);
		return CY_ERR_BAD_FORMAT;
	}
	struct req r = { ctx, peer, req, &fields, -1, 0, "" };
	wire_init(&fields, WIRE_MAX_FRAME - 16);
	pthread_mutex_lock(&ctx->lock);
	CK_RV rv = handlers[type](&r);
	if (audited(type))
		audit_request_locked(&r, m, rv);
	pthread_mutex_unlock(&ctx->lock);
	bool with_fields = rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL;
	if (with_fields && (wire_error(&fields) != 0 || proto_check_sig(&fields, m->rep_sig) != 0)) {
		log_err("%s: reply does not fit its signature", m->name);
		rv = CKR_GENERAL_ERROR;
		with_fields = false;
	}
	proto_begin_reply(rep, type, (uint32_t)rv);
	if (with_fields)
		wire_put_raw(rep, fields.data, fields.size);
	wire_free(&fields);
	return wire_error(rep);
}

void
dispatch_peer_gone(struct km_ctx *ctx, struct km_peer *peer)
{
	struct km_app *a = peer->app;
	shm_release(peer);
	if (a == NULL)
		return;
	pthread_mutex_lock(&ctx->lock);
	peer->app = NULL;
	if (--a->conns == 0) {
		for (;;) {
			struct km_session *s;
			for (s = ctx->sessions; s; s = s->next)
				if (s->app == a)
					break;
			if (s == NULL)
				break;
			close_idle_locked(ctx, s);
		}
		while (a->logins) {
			struct km_login *l = a->logins;
			a->logins = l->next;
			free(l);
		}
		for (struct km_app **pp = &ctx->apps; *pp; pp = &(*pp)->next) {
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		}
		free(a);
	}
	pthread_mutex_unlock(&ctx->lock);
}
