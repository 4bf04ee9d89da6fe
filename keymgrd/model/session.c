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
#include "cy_err.h"
#include "ctx.h"
#include "model/access.h"
#include "model/logins.h"
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
session_logout_app(struct km_ctx *ctx, struct km_app *app, int64_t token_id)
{
	for (struct km_login **pp = &app->logins; *pp; pp = &(*pp)->next) {
		if ((*pp)->token_id == token_id) {
			struct km_login *dead = *pp;
			*pp = dead->next;
			free(dead);
			logins_drop_locked(ctx, app, token_id);
			return;
		}
	}
}

bool
session_user_in(const struct km_session *s)
{
	return session_login_of(s->app, s->token_id) == CKU_USER;
}

/* ---- the table of sessions by handle ---- */

/* Handles are the application's own (a module may ask for one it
 * chose), so the table is keyed by both. */
static size_t
bucket(const struct km_ctx *ctx, const struct km_app *app, uint32_t h)
{
	uint64_t k = ((uint64_t)(uintptr_t)app >> 4) * 0x9e3779b97f4a7c15ull ^ h;
	return (size_t)((k * 2654435761u) >> 7) & (ctx->stab_size - 1);
}

struct km_session *
session_find(struct km_ctx *ctx, const struct km_app *app, uint32_t h)
{
	if (ctx->stab_size == 0)
		return NULL;
	for (struct km_session *s = ctx->stab[bucket(ctx, app, h)]; s; s = s->hnext)
		if (s->handle == h && s->app == app)
			return s;
	return NULL;
}

/* Doubles the table (or makes its first one); 0 or CY_ERR_ALLOC. */
static int
grow_table(struct km_ctx *ctx)
{
	size_t size = ctx->stab_size ? 2 * ctx->stab_size : 256;
	struct km_session **t = calloc(size, sizeof(*t));
	if (t == NULL)
		return CY_ERR_ALLOC;
	struct km_session **old = ctx->stab;
	size_t oldsize = ctx->stab_size;
	ctx->stab = t;
	ctx->stab_size = size;
	for (size_t i = 0; i < oldsize; i++) {
		while (old[i]) {
			struct km_session *s = old[i];
			old[i] = s->hnext;
			size_t b = bucket(ctx, s->app, s->handle);
			s->hnext = t[b];
			t[b] = s;
		}
	}
	free(old);
	return 0;
}

CK_RV
session_add_locked(struct km_ctx *ctx, struct km_app *app, struct km_session *s, uint32_t want)
{
	if (app->nsessions >= ctx->policy.max_sessions)
		return CKR_SESSION_COUNT;
	if (want != 0 && session_find(ctx, app, want) != NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (ctx->nsessions >= ctx->stab_size && grow_table(ctx) != 0)
		return CKR_HOST_MEMORY;
	s->handle = want;
	while (s->handle == 0 || (want == 0 && session_find(ctx, app, s->handle) != NULL))
		s->handle = ctx->next_session++ & 0x7fffffffu;
	s->app = app;
	size_t b = bucket(ctx, app, s->handle);
	s->hnext = ctx->stab[b];
	ctx->stab[b] = s;
	ctx->nsessions++;
	s->prev = NULL;
	s->next = app->sessions;
	if (app->sessions)
		app->sessions->prev = s;
	app->sessions = s;
	app->nsessions++;
	struct km_token *t = token_find_locked(ctx, s->token_id);
	if (t != NULL) {
		t->sessions++;
		t->rw_sessions += (s->flags & CKF_RW_SESSION) != 0;
	}
	return CKR_OK;
}

static void
session_unlink(struct km_ctx *ctx, struct km_session *s)
{
	for (struct km_session **pp = &ctx->stab[bucket(ctx, s->app, s->handle)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	ctx->nsessions--;
	struct km_app *app = s->app;
	if (s->prev)
		s->prev->next = s->next;
	else
		app->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	app->nsessions--;
	struct km_token *t = token_find_locked(ctx, s->token_id);
	if (t != NULL) {
		t->sessions--;
		t->rw_sessions -= (s->flags & CKF_RW_SESSION) != 0;
	}
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


void
session_free_sobj(struct km_app *app, struct km_sobj **pp)
{
	struct km_sobj *dead = *pp;
	*pp = dead->next;
	app->nsobjs--;
	app->sobj_bytes -= dead->bytes;
	obj_free(dead->obj);
	free(dead);
}

/* Closes s (not busy); logs its application out of the token when it was
 * the application's last session there. */
void
session_close_locked(struct km_ctx *ctx, struct km_session *s)
{
	struct km_app *app = s->app;
	session_unlink(ctx, s);
	for (int k = 0; k <= OP_MAX; k++)
		crypto_op_free(s->op[k]);
	session_clear_stash(s);
	session_end_find(s);
	for (struct km_sobj **pp = &app->sobjs; *pp;) {
		if ((*pp)->obj->owner == s->handle)
			session_free_sobj(app, pp);
		else
			pp = &(*pp)->next;
	}
	bool others = false;
	for (struct km_session *o = app->sessions; o && !others; o = o->next)
		others = o->token_id == s->token_id;
	if (!others)
		session_logout_app(ctx, app, s->token_id);
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
