/*
 * ctx.c - keymgrd's state: made once at start-up, freed at exit.
 */
#include "config.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <gcrypt.h>

#include "crypto/crypto.h"
#include "crypto/pincache.h"
#include "ctx.h"
#include "model/session.h"
#include "cy_err.h"
#include "model/access.h"
#include "model/audit.h"
#include "model/handles.h"

void
ctx_defaults(unsigned *max_pin_failures, struct km_policy *p)
{
	*max_pin_failures = 10;
	memset(p, 0, sizeof(*p));
	p->rotate_before = 30 * 86400;
	p->grace = 30 * 86400;
	p->interval = 3600;
	p->crl_days = 7;
	p->unlock_max = 8 * 3600;
	p->session_grace = 120;
	p->pin_rate = 10;
	p->max_token_objects = 200000;
	p->max_token_bytes = 1024ull << 20;
	p->max_principal_objects = 1000;
	p->max_principal_bytes = 16u << 20;
	p->max_sessions = 1024;
	p->max_session_objects = 1024;
	p->max_session_bytes = 64u << 20;
}

int
ctx_init(struct km_ctx *ctx, struct store *st, uint8_t *master_key)
{
	memset(ctx, 0, sizeof(*ctx));
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->cond, NULL);
	ctx->st = st;
	ctx->master_key = master_key;
	ctx_defaults(&ctx->max_pin_failures, &ctx->policy);
	ctx->pin_cost = pin_cost_default;
	snprintf(ctx->self.name, sizeof(ctx->self.name), "keymgrd");
	ctx->self.uid = (uint32_t)geteuid();
	ctx->self.pid = (int32_t)getpid();
	ctx->stats.started = (int64_t)time(NULL);
	gcry_create_nonce(ctx->daemon_id, sizeof(ctx->daemon_id));
	uint32_t base;
	gcry_create_nonce(&base, sizeof(base));
	/* Random starting handles, so a handle from before a restart is very
	 * unlikely to name something again. */
	ctx->next_session = (base & 0x3fffffffu) | 1;
	ctx->next_sobj = base >> 8 & 0xfffff;
	int r = token_load_all_locked(ctx);
	if (r == 0)
		r = audit_init(ctx);
	if (r == 0)
		r = access_count_admins_locked(ctx);
	if (r == 0 && (ctx->pin_cache = pin_cache_new()) == NULL)
		r = CY_ERR_ALLOC;
	return r;
}

void
ctx_free(struct km_ctx *ctx)
{
	free(ctx->backup.data);
	ctx->backup.data = NULL;
	audit_free(ctx);
	pin_cache_free(ctx->pin_cache);
	ctx->pin_cache = NULL;
	crypto_forget_keys();
	key_cache_forget_locked(ctx);
	while (ctx->apps) {
		struct km_app *a = ctx->apps;
		while (a->sessions)
			session_close_locked(ctx, a->sessions);
		ctx->apps = a->next;
		access_app_free(a);
	}
	free(ctx->stab);
	ctx->stab = NULL;
	ctx->stab_size = 0;
	token_free_all_locked(ctx);
	while (ctx->unlocks) {
		struct km_unlock *u = ctx->unlocks;
		ctx->unlocks = u->next;
		free(u);
	}
	free(ctx->crl_seen);
	ctx->crl_seen = NULL;
	ctx->ncrl_seen = 0;
	pthread_mutex_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
}
