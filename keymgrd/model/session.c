/*
 * session.c - applications, their login state and their sessions.
 *
 * A session belongs to an application (every connection of one process,
 * see ctx.h); logins belong to the application and a token, and end with
 * its last session there. Everything here expects ctx->lock.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "ctx.h"
#include "model/access.h"
#include "model/session.h"

/* The application's own login, else the unlock of its user (keymgr
 * unlock) while it lasts; an application with a role never has the
 * unlock of its uid on a holder token (see model/access.h). */
CK_USER_TYPE
session_login_of(const struct km_app *app, int64_t token_id)
{
	for (const struct km_login *l = app->logins; l; l = l->next)
		if (l->token_id == token_id)
			return l->who;
	bool role = app->role != KM_ROLE_NONE || (app->bootstrap && *app->admin_accounts == 0);
	time_t now = time(NULL);
	for (const struct km_unlock *u = *app->unlocks; u; u = u->next)
		if (strcmp(u->principal, app->principal) == 0 && u->token_id == token_id && u->expires > now &&
		    !(role && u->holder))
			return CKU_USER;
	return KM_NOBODY;
}

void
session_logout_app(struct km_app *app, int64_t token_id)
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

bool
session_user_in(const struct km_session *s)
{
	return session_login_of(s->app, s->token_id) == CKU_USER;
}

struct km_session *
session_find(struct km_ctx *ctx, const struct km_app *app, uint32_t h)
{
	for (struct km_session *s = ctx->sessions; s; s = s->next)
		if (s->handle == h && s->app == app)
			return s;
	return NULL;
}


void
session_release(struct km_ctx *ctx, struct km_session *s)
{
	s->busy = false;
	pthread_cond_broadcast(&ctx->cond);
}


void
session_clear_stash(struct km_session *s)
{
	if (s->stash) {
		wire_wipe(s->stash, s->stash_len);
		free(s->stash);
	}
	s->stash = NULL;
	s->stash_len = 0;
	s->stash_kind = s->stash_phase = 0;
}


void
session_end_op(struct km_session *s, enum proto_op kind)
{
	crypto_op_free(s->op[kind]);
	s->op[kind] = NULL;
	s->need_auth[kind] = false;
	s->multipart[kind] = false;
	if (s->stash_kind == kind)
		session_clear_stash(s);
}


void
session_end_find(struct km_session *s)
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
void
session_close_locked(struct km_ctx *ctx, struct km_session *s)
{
	for (struct km_session **pp = &ctx->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (int k = 0; k <= OP_MAX; k++)
		crypto_op_free(s->op[k]);
	session_clear_stash(s);
	session_end_find(s);
	free_session_objects(ctx, s->handle);
	bool others = false;
	for (struct km_session *o = ctx->sessions; o; o = o->next)
		others |= o->app == s->app && o->token_id == s->token_id;
	if (!others)
		session_logout_app(s->app, s->token_id);
	free(s);
}


/* Waits for s to be idle, then closes it. */
void
session_close_idle_locked(struct km_ctx *ctx, struct km_session *s)
{
	while (s->busy)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	session_close_locked(ctx, s);
}
