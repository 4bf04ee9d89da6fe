/* logins.c - applications' logins kept in the store (see logins.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>

#include "log.h"
#include "model/access.h"
#include "model/logins.h"
#include "model/session.h"

void
logins_key(struct km_app *app)
{
	/* principal, NUL, id: gcry_md_hash_buffer cannot fail quietly (a
	 * key of zeros shared by every application would be the failure). */
	uint8_t buf[sizeof(app->principal) + 1 + sizeof(app->id)];
	size_t n = strnlen(app->principal, sizeof(app->principal));
	memcpy(buf, app->principal, n);
	buf[n] = '\0';
	memcpy(buf + n + 1, app->id, sizeof(app->id));
	gcry_md_hash_buffer(GCRY_MD_SHA256, app->login_key, buf, n + 1 + sizeof(app->id));
}

static bool
kept(const struct km_ctx *ctx)
{
	return ctx->policy.session_grace > 0;
}

void
logins_save_locked(struct km_ctx *ctx, const struct km_app *app, int64_t token_id, CK_USER_TYPE who)
{
	/* A user's login only: an SO (on a holder token, an administrator
	 * whose role came from an account's passphrase, which does not move)
	 * logs in again. */
	if (!kept(ctx) || who != CKU_USER)
		return;
	struct store_login l = { .token_id = token_id, .who = (uint32_t)who,
				 .expires = (int64_t)time(NULL) + ctx->policy.session_grace };
	memcpy(l.app, app->login_key, sizeof(l.app));
	memcpy(l.daemon, ctx->daemon_id, sizeof(l.daemon));
	if (store_login_put(ctx->st, &l) != 0)
		log_warn("%s: login on token %lld not kept in the store: it will not move to another keymgrd",
			 app->principal, (long long)token_id);
}

void
logins_drop_locked(struct km_ctx *ctx, const struct km_app *app, int64_t token_id)
{
	/* keymgrd stopping ends its applications here, not their logins:
	 * they go on on another keymgrd, or on this one restarted. */
	if (ctx->stopping)
		return;
	if (kept(ctx) && store_login_drop(ctx->st, app->login_key, token_id, ctx->daemon_id) != 0)
		log_warn("%s: an ended login stays in the store until it expires (%lld s)", app->principal,
			 (long long)ctx->policy.session_grace);
}

void
logins_drop_token_locked(struct km_ctx *ctx, int64_t token_id)
{
	if (kept(ctx) && store_login_drop(ctx->st, NULL, token_id, ctx->daemon_id) != 0)
		log_warn("token %lld: ended logins stay in the store until they expire", (long long)token_id);
}

unsigned
logins_restore_locked(struct km_ctx *ctx, struct km_app *app)
{
	struct store_login *v = NULL;
	size_t n = 0;
	unsigned taken = 0;
	int64_t now = (int64_t)time(NULL);
	if (!kept(ctx) ||
	    store_login_take(ctx->st, app->login_key, ctx->daemon_id, now, now + ctx->policy.session_grace, &v, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		CK_USER_TYPE who = v[i].who;
		/* What would let it log in now still must: the token, and for
		 * its user an access rule (a rule revoked meanwhile ends it). */
		bool ok = token_find_locked(ctx, v[i].token_id) != NULL && who == CKU_USER &&
			  access_may_use_locked(ctx, app, v[i].token_id) &&
			  session_login_of(app, v[i].token_id) == KM_NOBODY;
		struct km_login *l = ok ? calloc(1, sizeof(*l)) : NULL;
		if (l == NULL) {
			logins_drop_locked(ctx, app, v[i].token_id);
			continue;
		}
		l->token_id = v[i].token_id;
		l->who = who;
		l->next = app->logins;
		app->logins = l;
		taken++;
		log_info("%s: user login on token %lld taken back from the store", app->principal,
			 (long long)v[i].token_id);
	}
	free(v);
	return taken;
}

void
logins_touch_locked(struct km_ctx *ctx)
{
	int64_t now = (int64_t)time(NULL);
	/* Four times within the grace: a login lives on while its keymgrd
	 * does, and at most the grace after it stopped renewing it. */
	if (!kept(ctx) || now - ctx->logins_touched < ctx->policy.session_grace / 4)
		return;
	ctx->logins_touched = now;
	if (store_login_touch(ctx->st, ctx->daemon_id, now, now + ctx->policy.session_grace) != 0)
		log_warn("the logins kept in the store could not be renewed");
}
