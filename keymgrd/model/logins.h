/*
 * logins.h - applications' logins kept in the store (model/logins.c), so
 * that an application whose keymgrd died, or was stopped, finds them on
 * another keymgrd of the same store, or on this one restarted, without
 * its PIN being asked again: the module re-opens its sessions there
 * (docs/ha.md).
 *
 * A login is stored under SHA-256(principal, NUL, application id): the
 * application's random id, which only it and the keymgrd it talks to
 * know, and the principal its transport proves (a certificate's subject,
 * a uid) are both needed to take it. It lives session_grace seconds after
 * its keymgrd last renewed it; none is stored when session_grace is 0.
 * Only user logins are kept: an SO, and the role an account's passphrase
 * gave, log in again on the next keymgrd.
 * Every function expects ctx->lock.
 */
#ifndef KM_LOGINS_H
#define KM_LOGINS_H

#include "ctx.h"

/* Sets app->login_key from its principal and id. */
void logins_key(struct km_app *app);
/* app logged in on token_id as who: kept (a failure is logged: the login
 * stands here, it only will not move). */
void logins_save_locked(struct km_ctx *ctx, const struct km_app *app, int64_t token_id, CK_USER_TYPE who);
/* app's login on token_id (every token: negative) ended. */
void logins_drop_locked(struct km_ctx *ctx, const struct km_app *app, int64_t token_id);
/* Every login on token_id ended (its PINs changed, re-initialised). */
void logins_drop_token_locked(struct km_ctx *ctx, int64_t token_id);
/* A new application here: the logins it had on another keymgrd (or this
 * one before a restart) that still hold, where its access rules still let
 * it log in. How many were taken. */
unsigned logins_restore_locked(struct km_ctx *ctx, struct km_app *app);
/* Now and then (the sweep): renews this keymgrd's logins, forgets the
 * expired ones. */
void logins_touch_locked(struct km_ctx *ctx);

#endif
