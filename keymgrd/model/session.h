/*
 * session.h - applications, login state and sessions (model/session.c).
 *
 * Every function expects ctx->lock. A session is found by the application
 * that opened it and its handle; one a worker is using unlocked is busy
 * (see ctx.h) and is released with session_release.
 */
#ifndef KM_SESSION_H
#define KM_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Nobody is logged in (a CK_USER_TYPE that PKCS#11 does not use). */
#define KM_NOBODY ((CK_USER_TYPE)-1)

/* Who app is logged in as on token_id: its own login, else the unlock of
 * its user (keymgr unlock) while that lasts, else KM_NOBODY. */
CK_USER_TYPE session_login_of(const struct km_app *app, int64_t token_id);
/* Ends app's login on token_id (if any), in the store too (logins.h). */
void session_logout_app(struct km_ctx *ctx, struct km_app *app, int64_t token_id);
/* Whether the user is logged in for session s. */
bool session_user_in(const struct km_session *s);

/* app's session h, or NULL; busy ones included (a hash look-up). */
struct km_session *session_find(struct km_ctx *ctx, const struct km_app *app, uint32_t h);
/* Gives new session s (its token_id and flags set) handle want (0: one
 * that app has free) and adds it to app's sessions: CKR_OK,
 * CKR_SESSION_COUNT when app has as many as it may
 * (ctx->policy.max_sessions), CKR_SESSION_HANDLE_INVALID when app has a
 * session want already, or CKR_HOST_MEMORY. */
CK_RV session_add_locked(struct km_ctx *ctx, struct km_app *app, struct km_session *s, uint32_t want);
/* Frees the session object *pp of app, unlinking it. */
void session_free_sobj(struct km_app *app, struct km_sobj **pp);
/* Clears s's busy mark and wakes those waiting for it. */
void session_release(struct km_ctx *ctx, struct km_session *s);
/* Frees the result kept for the two-call convention. */
void session_clear_stash(struct km_session *s);
/* Ends s's operation of kind (and its stash). */
void session_end_op(struct km_session *s, enum proto_op kind);
/* Ends s's object search. */
void session_end_find(struct km_session *s);
/* Closes s (not busy) and frees it with its session objects; logs its
 * application out of the token when it was its last session there. */
void session_close_locked(struct km_ctx *ctx, struct km_session *s);
/* As session_close_locked, waiting first until s is not busy. */
void session_close_idle_locked(struct km_ctx *ctx, struct km_session *s);

#endif
