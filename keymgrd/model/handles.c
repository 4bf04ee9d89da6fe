/*
 * handles.c - object handles as a session sees them.
 *
 * Session objects live in memory (handles with KM_SOBJ_BIT); token objects
 * are read from the store by id and unsealed on demand. Keys for an
 * operation come through a small cache of unsealed token keys, valid while
 * the store's generation stays the same. Everything here expects ctx->lock.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "ctx.h"
#include "model/audit.h"
#include "log.h"
#include "model/access.h"
#include "model/handles.h"
#include "model/session.h"

/* Session object h of s's application on s's token, or NULL (the objects
 * of one application: at most max_session_objects). */
static struct km_object *
find_sobj(const struct km_session *s, uint32_t h)
{
	for (struct km_sobj *o = s->app->sobjs; o; o = o->next)
		if (o->obj->handle == h)
			return o->obj->token_id == s->token_id ? o->obj : NULL;
	return NULL;
}

CK_RV
handle_sobj_room_locked(struct km_ctx *ctx, const struct km_session *s, unsigned n, uint64_t bytes)
{
	const struct km_app *app = s->app;
	if (app->nsobjs + n > ctx->policy.max_session_objects)
		return CKR_DEVICE_MEMORY;
	uint64_t total = bytes;
	for (const struct km_app *a = ctx->apps; a; a = a->next)
		if (strcmp(a->principal, app->principal) == 0)
			total += a->sobj_bytes;
	return total > ctx->policy.max_session_bytes ? CKR_DEVICE_MEMORY : CKR_OK;
}

void
handle_sobj_resized_locked(struct km_session *s, const struct km_object *o)
{
	for (struct km_sobj *n = s->app->sobjs; n; n = n->next) {
		if (n->obj == o) {
			uint64_t now = obj_size(o);
			s->app->sobj_bytes = s->app->sobj_bytes - n->bytes + now;
			n->bytes = now;
			return;
		}
	}
}

/*
 * Object h as session s sees it. Session objects are returned in place
 * (*owned false); token objects are read from the store (*owned true, the
 * caller frees them), with secrets unsealed when with_secrets.
 */
CK_RV
handle_object_locked(struct km_ctx *ctx, struct km_session *s, uint32_t h, bool with_secrets,
		     struct km_object **out, bool *owned)
{
	struct km_object *o = NULL;
	*owned = false;
	if (h & KM_SOBJ_BIT) {
		o = find_sobj(s, h);
		if (o == NULL)
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
	if (!obj_visible(o, session_user_in(s))) {
		if (*owned)
			obj_free(o);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	*out = o;
	return CKR_OK;
}

void
handle_put(struct km_object *o, bool owned)
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
 * The key of an operation (C_SignInit...): req_object with secrets, but a
 * token key read and unsealed before is used again while the store has not
 * changed since (store_generation), which saves the read and the unsealing
 * (11 of the 18 us of a C_SignInit with an HMAC key). The object returned
 * may be the cached one: read only, valid until the lock is released.
 */
CK_RV
handle_key_locked(struct km_ctx *ctx, struct km_session *s, uint32_t h, struct km_object **out, bool *owned)
{
	if (h & KM_SOBJ_BIT)
		return handle_object_locked(ctx, s, h, true, out, owned);
	uint64_t gen = store_generation(ctx->st);
	struct km_cached_key *e = &ctx->key_cache[h % KM_KEY_CACHE];
	if (gen != 0 && e->o != NULL && e->handle == h && e->generation == gen && e->token_id == s->token_id) {
		if (!obj_visible(e->o, session_user_in(s)))
			return CKR_OBJECT_HANDLE_INVALID;
		*out = e->o;
		*owned = false;
		return CKR_OK;
	}
	CK_RV rv = handle_object_locked(ctx, s, h, true, out, owned);
	if (rv != CKR_OK || !*owned || gen == 0 || gen != store_generation(ctx->st))
		return rv;
	obj_free(e->o);
	*e = (struct km_cached_key){ h, s->token_id, gen, *out };
	*owned = false;
	return CKR_OK;
}

/* May session s hold or change an object with these properties? */
CK_RV
handle_may_write(const struct km_session *s, bool on_token, bool priv)
{
	if (on_token && !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	/* Seeing a token is not writing it: public token objects (which a R/W
	 * public session may make) only by who may be its user, its SO or an
	 * administrator; an account's uid that has not given its passphrase,
	 * say, only looks. */
	bool admin = access_role_locked(NULL, s->app) == KM_ROLE_ADMIN;
	if (on_token && !s->user_ok && !admin && session_login_of(s->app, s->token_id) != CKU_SO)
		return CKR_TOKEN_WRITE_PROTECTED;
	/* An administrator puts a holder's keys on their token (generates or
	 * imports them) without being its user, and never sees them after. */
	bool admin_writes = s->holder_token && admin;
	if (priv && !session_user_in(s) && !admin_writes)
		return CKR_USER_NOT_LOGGED_IN;
	return CKR_OK;
}

CK_RV
handle_may_write_obj(const struct km_session *s, const struct km_object *o)
{
	return handle_may_write(s, o->on_token, al_bool(&o->pub, CKA_PRIVATE, false));
}

/* Writes token object o back to the store (o->handle is its id), with
 * the request's audit entry. */
CK_RV
handle_save_locked(struct km_ctx *ctx, const struct km_object *o)
{
	struct store_object so;
	struct km_token *t = token_find_locked(ctx, o->token_id);
	memset(&so, 0, sizeof(so));
	so.id = o->handle;
	if (t == NULL || obj_to_store(o, t->data_key, &so) != 0)
		return CKR_DEVICE_ERROR;
	int e = store_begin(ctx->st);
	if (e == 0 && (e = store_object_update(ctx->st, &so)) == 0)
		e = audit_commit_locked(ctx);
	if (e != 0)
		store_rollback(ctx->st);
	store_object_clear(&so);
	return e ? CKR_DEVICE_ERROR : CKR_OK;
}

/*
 * Adds the new objects objs[0..n) to the token (one transaction) or to the
 * session objects of s; each takes its handle. On success the session
 * objects belong to the list and the caller frees the token ones with
 * handle_drop_added(); on failure nothing was added and the caller owns them all.
 */
CK_RV
handle_add_objects_locked(struct km_ctx *ctx, struct km_session *s, struct km_object **objs, size_t n)
{
	struct km_token *t = token_find_locked(ctx, s->token_id);
	struct km_sobj *nodes[2] = { NULL, NULL };
	bool any_token = false;
	if (t == NULL || n > 2)
		return CKR_DEVICE_ERROR;
	CK_RV rv0;
	unsigned nsession = 0;
	uint64_t bytes = 0;
	unsigned ntoken = 0;
	uint64_t tbytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (!objs[i]->on_token) {
			nsession++;
			bytes += obj_size(objs[i]);
		} else {
			ntoken++;
			tbytes += obj_size(objs[i]);
		}
	}
	if (ntoken && (rv0 = token_room_locked(ctx, t, ntoken, tbytes)) != CKR_OK)
		return rv0;
	/* What a principal without the administrator role writes counts
	 * against its own quota too (a holder's token, or a group's). */
	const char *by = access_role_locked(ctx, s->app) == KM_ROLE_ADMIN ? NULL : s->app->principal;
	if (ntoken && by != NULL && (rv0 = principal_room_locked(ctx, by, ntoken, tbytes)) != CKR_OK)
		return rv0;
	CK_RV rv = nsession ? handle_sobj_room_locked(ctx, s, nsession, bytes) : CKR_OK;
	if (rv != CKR_OK) {
		log_info("%s: session objects refused: %u of at most %u, and the principal's bytes",
			 s->app->principal, s->app->nsobjs, ctx->policy.max_session_objects);
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		int sr = token_stamp_object(objs[i]);
		if (sr != 0) {
			free(nodes[0]);
			return sr == CY_ERR_INVALID_ARG ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_HOST_MEMORY;
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
		if (objs[i]->on_token && token_insert_object_intx(ctx, t, objs[i], by) != 0)
			goto rollback;
	}
	if (any_token && audit_commit_locked(ctx) != 0)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		if (objs[i]->on_token)
			continue;
		objs[i]->owner = s->handle;
		objs[i]->handle = KM_SOBJ_BIT | (ctx->next_sobj++ & ~KM_SOBJ_BIT);
		if (objs[i]->handle == KM_SOBJ_BIT)
			objs[i]->handle = KM_SOBJ_BIT | ctx->next_sobj++;
		nodes[i]->obj = objs[i];
		nodes[i]->bytes = obj_size(objs[i]);
		nodes[i]->next = s->app->sobjs;
		s->app->sobjs = nodes[i];
		s->app->nsobjs++;
		s->app->sobj_bytes += nodes[i]->bytes;
	}
	return CKR_OK;
rollback:
	store_rollback(ctx->st);
	token_recount_locked(ctx, t);
fail:
	free(nodes[0]);
	free(nodes[1]);
	return CKR_DEVICE_ERROR;
}

/* After handle_add_objects_locked: frees the token objects the store now holds. */
void
handle_drop_added(struct km_object **objs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (objs[i]->on_token)
			obj_free(objs[i]);
}
