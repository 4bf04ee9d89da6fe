/*
 * status.h - what keymgrd can say about its health (keymgr status, the
 * metrics endpoint): counts since start, the store, and what needs an
 * administrator (locked PINs, keys due for rotation, certificates about
 * to expire, the last backup).
 */
#ifndef KM_STATUS_H
#define KM_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

/* Certificates within KM_STATUS_EXPIRY_DAYS of their end, by agency. */
#define KM_STATUS_EXPIRY_DAYS 30

struct km_status_agency {
	char agency[256];
	uint32_t expiring;
};

struct km_status_token {
	char label[33];
	bool user_locked, so_locked;
	uint32_t due; /* keys due for rotation */
};

struct km_status {
	int64_t now, started, last_backup;
	const char *store; /* the back end: "sqlite", "postgresql" */
	int schema;
	uint64_t conns[2], accepted[2], refused;
	uint64_t requests[MSG_COUNT], errors[MSG_COUNT];
	struct km_status_token *tokens;
	size_t ntokens;
	uint32_t locked_pins, due;
	struct km_status_agency *agencies; /* with certificates expiring */
	size_t nagencies;
	uint64_t expiring;
	int64_t audit_id;
	uint8_t audit_hash[32];
};

/* Fills s (free with status_free): 0, or a cy_err. */
int status_collect_locked(struct km_ctx *ctx, struct km_status *s);
void status_free(struct km_status *s);
/* Remembers that a backup was made now (also in the mark file). */
void status_backup_made_locked(struct km_ctx *ctx);
/* Reads the mark file's time at start. */
void status_load_backup_mark(struct km_ctx *ctx, const char *path);

#endif
