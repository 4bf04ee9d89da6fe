/* status.c - keymgrd's health (see status.h). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "model/rotate.h"
#include "model/status.h"

static int
count_agency(struct km_status *s, const char *agency)
{
	for (size_t i = 0; i < s->nagencies; i++)
		if (strcmp(s->agencies[i].agency, agency) == 0)
			return s->agencies[i].expiring++, 0;
	struct km_status_agency *v = realloc(s->agencies, (s->nagencies + 1) * sizeof(*v));
	if (v == NULL)
		return CY_ERR_ALLOC;
	s->agencies = v;
	snprintf(v[s->nagencies].agency, sizeof(v[0].agency), "%s", agency);
	v[s->nagencies++].expiring = 1;
	return 0;
}

int
status_collect_locked(struct km_ctx *ctx, struct km_status *s)
{
	memset(s, 0, sizeof(*s));
	s->now = (int64_t)time(NULL);
	s->started = ctx->stats.started;
	s->last_backup = ctx->stats.last_backup;
	s->store = ctx->st->ops->scheme;
	s->schema = store_schema_version(ctx->st);
	for (int i = 0; i < 2; i++) {
		s->conns[i] = atomic_load(&ctx->stats.conns[i]);
		s->accepted[i] = atomic_load(&ctx->stats.accepted[i]);
	}
	s->refused = atomic_load(&ctx->stats.refused);
	memcpy(s->requests, ctx->stats.requests, sizeof(s->requests));
	memcpy(s->errors, ctx->stats.errors, sizeof(s->errors));
	uint8_t mac[32];
	if (store_audit_head(ctx->st, &s->audit_id, s->audit_hash, mac) != 0)
		return CY_ERR_STORE;
	if (ctx->ntokens > 0 && (s->tokens = calloc(ctx->ntokens, sizeof(*s->tokens))) == NULL)
		return CY_ERR_ALLOC;
	int64_t soon = s->now + KM_STATUS_EXPIRY_DAYS * 86400;
	for (size_t i = 0; i < ctx->ntokens; i++) {
		const struct km_token *t = &ctx->tokens[i];
		struct km_status_token *o = &s->tokens[s->ntokens++];
		snprintf(o->label, sizeof(o->label), "%s", t->st.label);
		o->user_locked = t->st.user_failures >= ctx->max_pin_failures;
		o->so_locked = t->st.so_failures >= ctx->max_pin_failures;
		s->locked_pins += o->user_locked + o->so_locked;
		struct rotate_key *due = NULL;
		size_t ndue = 0;
		if (ctx->policy.rotate_before > 0 &&
		    rotate_due_locked(ctx, t->st.id, s->now + ctx->policy.rotate_before, &due, &ndue) == 0) {
			o->due = (uint32_t)ndue;
			s->due += (uint32_t)ndue;
		}
		free(due);
		struct store_cert_filter f = { .status = "valid", .expires_before = soon };
		struct store_cert *c = NULL;
		size_t nc = 0;
		if (store_cert_list(ctx->st, t->st.id, &f, s->now, &c, &nc) != 0)
			return CY_ERR_STORE;
		for (size_t j = 0; j < nc; j++) {
			if (count_agency(s, c[j].agency[0] ? c[j].agency : "(no agency)") != 0) {
				free(c);
				return CY_ERR_ALLOC;
			}
			s->expiring++;
		}
		free(c);
	}
	return 0;
}

void
status_free(struct km_status *s)
{
	free(s->tokens);
	free(s->agencies);
	memset(s, 0, sizeof(*s));
}

void
status_backup_made_locked(struct km_ctx *ctx)
{
	ctx->stats.last_backup = (int64_t)time(NULL);
	if (!ctx->stats.backup_mark[0])
		return;
	char tmp[sizeof(ctx->stats.backup_mark) + 8], line[32];
	snprintf(tmp, sizeof(tmp), "%s.new", ctx->stats.backup_mark);
	int n = snprintf(line, sizeof(line), "%lld\n", (long long)ctx->stats.last_backup);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) != 0 || rename(tmp, ctx->stats.backup_mark) != 0)
		log_warn("cannot write %s: the time of the last backup is lost at restart", ctx->stats.backup_mark);
}

void
status_load_backup_mark(struct km_ctx *ctx, const char *path)
{
	snprintf(ctx->stats.backup_mark, sizeof(ctx->stats.backup_mark), "%s", path);
	FILE *f = fopen(path, "re");
	long long t = 0;
	if (f != NULL) {
		if (fscanf(f, "%lld", &t) == 1 && t > 0)
			ctx->stats.last_backup = t;
		fclose(f);
	}
}
