/*
 * h_audit.c - reading and verifying the audit trail.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/handles.h"
#include "model/session.h"
#include <unistd.h>
#include "model/audit.h"

CK_RV
process_audit_list(struct req *r)
{
	uint64_t from = 0;
	wire_get_u64(r->in, &from);
	uint32_t max = get_u32(r);
	struct store_audit *v = NULL;
	size_t n = 0;
	if (max > 10000)
		max = 10000;
	if (store_audit_list(r->ctx->st, (int64_t)from, max, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	struct wire_buf *b = r->out;
	wire_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wire_put_u64(b, (uint64_t)v[i].id);
		wire_put_u64(b, (uint64_t)v[i].time);
		wire_put_u32(b, v[i].uid);
		wire_put_u64(b, (uint64_t)v[i].token);
		wire_put_u32(b, v[i].session);
		wire_put_str(b, v[i].op);
		wire_put_str(b, v[i].object);
		wire_put_u32(b, v[i].result);
		wire_put_bytes(b, v[i].hash, 32);
		wire_put_str(b, v[i].who);
		wire_put_str(b, v[i].role);
	}
	free(v);
	CK_RV rv = wire_error(b) ? CKR_DEVICE_MEMORY : CKR_OK;
	return rv;
}

CK_RV
process_audit_verify(struct req *r)
{
	struct audit_check c;
	if (audit_verify_locked(r->ctx, &c) != 0)
		return CKR_DEVICE_ERROR;
	wire_put_u64(r->out, c.entries);
	wire_put_u64(r->out, (uint64_t)c.bad_id);
	wire_put_str(r->out, c.why);
	return CKR_OK;
}
