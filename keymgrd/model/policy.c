/* policy.c - keymgrd's rotation and destruction policy (see policy.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "paths.h"
#include "pki/x509_make.h"
#include "model/audit.h"
#include "model/policy.h"
#include "model/rotate.h"

static pthread_t timer;
static bool timer_started;
static volatile sig_atomic_t stopping;
static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_cond = PTHREAD_COND_INITIALIZER;

/* Rotates one due key and leaves its request in the outbox. */
static void
rotate_due_key(struct km_ctx *ctx, int64_t token_id, const struct rotate_key *k)
{
	struct rotation *rot = NULL;
	pthread_mutex_lock(&ctx->lock);
	CK_RV rv = rotate_prepare_locked(ctx, token_id, k->label, k->len, &rot);
	pthread_mutex_unlock(&ctx->lock);
	if (rv == CKR_OK)
		rv = rotate_generate(rot);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&ctx->lock);
		struct audit_actor self = audit_self(ctx);
		rv = rotate_commit_locked(ctx, rot, &self, 0);
		pthread_mutex_unlock(&ctx->lock);
	}
	if (rv != CKR_OK) {
		log_warn("policy: cannot rotate '%.*s' (CK_RV 0x%lx)", (int)k->len, (const char *)k->label,
			 (unsigned long)rv);
		rotate_free(rot);
		return;
	}
	const uint8_t *id, *csr;
	size_t idlen, csrlen;
	uint64_t version;
	char name[256], path[4400];
	rotate_result(rot, &id, &idlen, &version, &csr, &csrlen);
	paths_file_name(k->label, k->len, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s-v%llu.csr", ctx->policy.outbox, name, (unsigned long long)version);
	if (pki_write_pem(path, "CERTIFICATE REQUEST", csr, csrlen) != 0)
		log_err("policy: '%s' rotated to version %llu but %s cannot be written", name,
			(unsigned long long)version, path);
	else
		log_info("policy: '%s' rotated to version %llu; request in %s", name, (unsigned long long)version, path);
	rotate_free(rot);
}

void
policy_run(struct km_ctx *ctx)
{
	struct km_policy *p = &ctx->policy;
	int64_t *ids = NULL;
	size_t n = 0;
	pthread_mutex_lock(&ctx->lock);
	if ((ids = calloc(ctx->ntokens ? ctx->ntokens : 1, sizeof(*ids))) != NULL)
		for (size_t i = 0; i < ctx->ntokens; i++)
			ids[n++] = ctx->tokens[i].st.id;
	pthread_mutex_unlock(&ctx->lock);
	for (size_t i = 0; i < n; i++) {
		struct rotate_key *due = NULL;
		size_t ndue = 0;
		uint32_t destroyed = 0;
		pthread_mutex_lock(&ctx->lock);
		if (p->grace > 0 && rotate_expire_locked(ctx, ids[i], p->grace, &destroyed) != 0)
			log_err("policy: token %lld: retired versions could not be destroyed", (long long)ids[i]);
		if (p->rotate_before > 0 &&
		    rotate_due_locked(ctx, ids[i], (int64_t)time(NULL) + p->rotate_before, &due, &ndue) != 0)
			log_err("policy: token %lld: cannot find the keys due", (long long)ids[i]);
		pthread_mutex_unlock(&ctx->lock);
		if (ndue > 0 && !p->auto_rotate)
			log_warn("policy: token %lld: %zu key(s) due for rotation, first '%.*s'"
				 " (keymgr key rotate --due)", (long long)ids[i], ndue, (int)due[0].len,
				 (const char *)due[0].label);
		for (size_t k = 0; p->auto_rotate && k < ndue && !stopping; k++)
			rotate_due_key(ctx, ids[i], &due[k]);
		free(due);
	}
	free(ids);
}

static void *
timer_main(void *arg)
{
	struct km_ctx *ctx = arg;
	pthread_mutex_lock(&timer_lock);
	while (!stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ctx->policy.interval;
		while (!stopping && pthread_cond_timedwait(&timer_cond, &timer_lock, &until) != ETIMEDOUT)
			;
		if (stopping)
			break;
		pthread_mutex_unlock(&timer_lock);
		policy_run(ctx);
		pthread_mutex_lock(&timer_lock);
	}
	pthread_mutex_unlock(&timer_lock);
	return NULL;
}

int
policy_start(struct km_ctx *ctx)
{
	if (ctx->policy.interval <= 0)
		return 0;
	if (pthread_create(&timer, NULL, timer_main, ctx) != 0)
		return CY_ERR_INTERNAL;
	timer_started = true;
	return 0;
}

void
policy_stop(void)
{
	if (!timer_started)
		return;
	pthread_mutex_lock(&timer_lock);
	stopping = true;
	pthread_cond_signal(&timer_cond);
	pthread_mutex_unlock(&timer_lock);
	pthread_join(timer, NULL);
	timer_started = false;
}
