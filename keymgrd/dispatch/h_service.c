/*
 * h_service.c - keymgr backup and keymgr status: the administrator's view
 * of keymgrd as a service (docs/admin-guide.md).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gcrypt.h>

#include "backup.h"
#include "dispatch/request.h"
#include "log.h"
#include "model/status.h"

/* The pieces a backup is sent in (a frame holds 16 MiB). */
#define BACKUP_PIECE (4u << 20)

static void
backup_drop_locked(struct km_ctx *ctx)
{
	free(ctx->backup.data);
	memset(&ctx->backup, 0, sizeof(ctx->backup));
}

/* Puts the piece of the backup at offset; the last one frees it. */
static void
put_piece_locked(struct km_ctx *ctx, struct wire_buf *out, uint64_t offset)
{
	size_t n = ctx->backup.len - offset < BACKUP_PIECE ? ctx->backup.len - offset : BACKUP_PIECE;
	wire_put_bytes(out, ctx->backup.data + offset, (uint32_t)n);
	if (offset + n == ctx->backup.len)
		backup_drop_locked(ctx);
}

CK_RV
process_backup(struct req *r)
{
	uint32_t klen, slen;
	const uint8_t *key = get_bytes(r, &klen), *salt = get_bytes(r, &slen);
	struct backup_kdf k;
	k.t = get_u32(r);
	k.m_kib = get_u32(r);
	k.p = get_u32(r);
	if (klen != BACKUP_KEY_LEN || slen != sizeof(k.salt) || k.t == 0 || k.m_kib == 0 || k.p == 0)
		return CKR_ARGUMENTS_BAD;
	memcpy(k.salt, salt, sizeof(k.salt));
	struct km_ctx *ctx = r->ctx;
	uint8_t *db = NULL;
	size_t db_len = 0;
	int e = store_snapshot(ctx->st, &db, &db_len);
	if (e == CY_ERR_CONFIG) {
		snprintf(r->audit_obj, sizeof(r->audit_obj), "store %s: has its own backup", ctx->st->ops->scheme);
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	if (e != 0)
		return CKR_DEVICE_ERROR;
	struct backup_content c = { .created = (int64_t)time(NULL), .schema = (uint32_t)store_schema_version(ctx->st),
				    .master = ctx->master_key, .db = db, .db_len = db_len };
	backup_drop_locked(ctx);
	e = backup_seal(key, &k, &c, &ctx->backup.data, &ctx->backup.len);
	free(db);
	if (e != 0)
		return e == CY_ERR_ALLOC ? CKR_DEVICE_MEMORY : CKR_DEVICE_ERROR;
	gcry_create_nonce(&ctx->backup.id, sizeof(ctx->backup.id));
	snprintf(r->audit_obj, sizeof(r->audit_obj), "backup of %zu bytes, schema %u", ctx->backup.len, c.schema);
	status_backup_made_locked(ctx);
	log_info("%s: backup of the store made (%zu bytes)", r->peer->who.name, ctx->backup.len);
	wire_put_u64(r->out, ctx->backup.id);
	wire_put_u64(r->out, ctx->backup.len);
	put_piece_locked(ctx, r->out, 0);
	return CKR_OK;
}

CK_RV
process_backup_read(struct req *r)
{
	uint64_t id = get_u64(r), offset = get_u64(r);
	struct km_ctx *ctx = r->ctx;
	/* One backup at a time: another keymgr backup since replaces it. */
	if (ctx->backup.data == NULL || id != ctx->backup.id || offset >= ctx->backup.len)
		return CKR_ARGUMENTS_BAD;
	put_piece_locked(ctx, r->out, offset);
	return CKR_OK;
}

CK_RV
process_status(struct req *r)
{
	struct km_status s;
	struct wire_buf *o = r->out;
	if (status_collect_locked(r->ctx, &s) != 0) {
		status_free(&s);
		return CKR_DEVICE_ERROR;
	}
	wire_put_str(o, PACKAGE_VERSION);
	wire_put_u64(o, (uint64_t)s.started);
	wire_put_u64(o, (uint64_t)s.now);
	wire_put_str(o, s.store);
	wire_put_u32(o, (uint32_t)s.schema);
	wire_put_u64(o, s.conns[0]);
	wire_put_u64(o, s.conns[1]);
	wire_put_u64(o, s.accepted[0]);
	wire_put_u64(o, s.accepted[1]);
	wire_put_u64(o, s.refused);
	/* By message type: type, requests, errors (20 bytes each). */
	uint8_t rows[MSG_COUNT * 20];
	size_t n = 0;
	for (uint32_t t = 1; t < MSG_COUNT; t++) {
		if (s.requests[t] == 0)
			continue;
		wire_store_u32(rows + n, t);
		wire_store_u32(rows + n + 4, (uint32_t)(s.requests[t] >> 32));
		wire_store_u32(rows + n + 8, (uint32_t)s.requests[t]);
		wire_store_u32(rows + n + 12, (uint32_t)(s.errors[t] >> 32));
		wire_store_u32(rows + n + 16, (uint32_t)s.errors[t]);
		n += 20;
	}
	wire_put_bytes(o, rows, (uint32_t)n);
	/* Tokens with a locked PIN or keys due: "label\tuser|so|-\tdue" lines. */
	wire_put_u32(o, (uint32_t)s.ntokens);
	struct wire_buf lines;
	wire_init(&lines, 1u << 20);
	for (size_t i = 0; i < s.ntokens; i++) {
		const struct km_status_token *t = &s.tokens[i];
		if (!t->user_locked && !t->so_locked && t->due == 0)
			continue;
		char line[128];
		int len = snprintf(line, sizeof(line), "%s\t%s\t%u\n", t->label,
				   t->user_locked && t->so_locked ? "user,so" : t->user_locked ? "user" : t->so_locked ? "so" : "-",
				   t->due);
		wire_put_raw(&lines, line, (size_t)len);
	}
	wire_put_raw(&lines, "", 1);
	wire_put_str(o, (const char *)lines.data);
	wire_reset(&lines);
	wire_put_u32(o, s.due);
	for (size_t i = 0; i < s.nagencies; i++) {
		char line[300];
		int len = snprintf(line, sizeof(line), "%s\t%u\n", s.agencies[i].agency, s.agencies[i].expiring);
		wire_put_raw(&lines, line, (size_t)len);
	}
	wire_put_raw(&lines, "", 1);
	wire_put_str(o, (const char *)lines.data);
	wire_free(&lines);
	wire_put_u64(o, (uint64_t)s.audit_id);
	wire_put_bytes(o, s.audit_hash, sizeof(s.audit_hash));
	wire_put_u64(o, (uint64_t)s.last_backup);
	status_free(&s);
	return wire_error(o) ? CKR_DEVICE_MEMORY : CKR_OK;
}
