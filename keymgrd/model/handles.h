/*
 * handles.h - objects as a session sees them (model/handles.c).
 *
 * Every function expects ctx->lock. Objects handed out are either owned
 * by the caller (*owned true: free with handle_put) or borrowed from the
 * session objects or the key cache (valid until the lock is released).
 */
#ifndef KM_HANDLES_H
#define KM_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Object h as session s sees it, with its secrets unsealed when
 * with_secrets. CKR_OK, CKR_OBJECT_HANDLE_INVALID (absent, another
 * token's or another application's, or private while nobody is logged
 * in) or CKR_DEVICE_ERROR. */
CK_RV handle_object_locked(struct km_ctx *ctx, struct km_session *s, uint32_t h, bool with_secrets,
			   struct km_object **out, bool *owned);
/* The key of an operation (C_SignInit...): as handle_object_locked with
 * secrets, through the cache of unsealed token keys. */
CK_RV handle_key_locked(struct km_ctx *ctx, struct km_session *s, uint32_t h, struct km_object **out,
			bool *owned);
/* Whether s's application may have n more session objects, taking bytes
 * more: CKR_OK, or CKR_DEVICE_MEMORY over the limits of docs/security.md
 * (a count per application, bytes per principal). */
CK_RV handle_sobj_room_locked(struct km_ctx *ctx, const struct km_session *s, unsigned n, uint64_t extra);
/* A session object of s's application changed size: counts it again. */
void handle_sobj_resized_locked(struct km_session *s, const struct km_object *o);
/* Frees o when the caller owns it. */
void handle_put(struct km_object *o, bool owned);
/* Frees every cached token key (when keys are destroyed or revoked, and at
 * exit; entries are never used once the store changed anyway). */
void key_cache_forget_locked(struct km_ctx *ctx);

/* May session s hold or change an object with these properties?
 * CKR_OK, CKR_SESSION_READ_ONLY or CKR_USER_NOT_LOGGED_IN. */
CK_RV handle_may_write(const struct km_session *s, bool on_token, bool priv);
CK_RV handle_may_write_obj(const struct km_session *s, const struct km_object *o);
/* Writes token object o back to the store (o->handle is its id). */
CK_RV handle_save_locked(struct km_ctx *ctx, const struct km_object *o);
/*
 * Adds the new objects objs[0..n) (n <= 2) to the token (one transaction)
 * or to the session objects of s; each takes its handle. On success the
 * session objects belong to the list and the caller frees the token ones
 * with handle_drop_added(); on failure nothing was added and the caller
 * owns them all.
 */
CK_RV handle_add_objects_locked(struct km_ctx *ctx, struct km_session *s, struct km_object **objs, size_t n);
void handle_drop_added(struct km_object **objs, size_t n);

#endif
