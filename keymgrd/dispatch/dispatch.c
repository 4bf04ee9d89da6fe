/*
 * dispatch.c - the request table and dispatch_request.
 *
 * dispatch_request() checks a request against its signature in the message
 * table (so a handler's reads cannot fail), takes the state lock, calls the
 * handler, and builds exactly one reply: the handler's CK_RV and, when that
 * is CKR_OK or CKR_BUFFER_TOO_SMALL, the fields it wrote. Handlers run with
 * the lock held; the slow ones drop it around the crypto after marking the
 * session busy (see ctx.h). The handlers live in h_*.c, one file per
 * family of requests.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/audit.h"
#include "model/session.h"


/* Requests that change state or prove who someone is: each leaves an
 * audit entry, failures included. */
static bool
audited(uint32_t type)
{
	switch (type) {
	case MSG_INIT_TOKEN: case MSG_INIT_PIN: case MSG_SET_PIN: case MSG_LOGIN: case MSG_LOGOUT:
	case MSG_CREATE_OBJECT: case MSG_COPY_OBJECT: case MSG_DESTROY_OBJECT: case MSG_SET_ATTRS:
	case MSG_GENERATE_KEY: case MSG_GENERATE_KEY_PAIR: case MSG_WRAP_KEY: case MSG_UNWRAP_KEY:
	case MSG_DERIVE_KEY: case MSG_UNLOCK: case MSG_LOCK: case MSG_KEY_STATE: case MSG_CERT_IMPORT:
	case MSG_CERT_ISSUE: case MSG_CRL_GENERATE: case MSG_CA_INIT:
		return true;
	}
	return false;
}


/* Records request type's outcome; new objects are named by the handles
 * at the start of the reply fields. */
static void
audit_request_locked(struct req *r, const struct proto_msg *m, CK_RV rv)
{
	static const uint32_t makers[] = { MSG_CREATE_OBJECT, MSG_COPY_OBJECT, MSG_GENERATE_KEY,
					   MSG_UNWRAP_KEY, MSG_DERIVE_KEY, MSG_GENERATE_KEY_PAIR };
	char obj[sizeof(r->audit_obj)];
	snprintf(obj, sizeof(obj), "%s", r->audit_obj);
	for (size_t i = 0; rv == CKR_OK && i < sizeof(makers) / sizeof(makers[0]); i++) {
		if (m->type != makers[i] || r->out->size < 4)
			continue;
		uint32_t h = wire_load_u32(r->out->data);
		if (m->type == MSG_GENERATE_KEY_PAIR && r->out->size >= 8)
			snprintf(obj, sizeof(obj), "objects %u %u", h, wire_load_u32(r->out->data + 4));
		else
			snprintf(obj, sizeof(obj), "object %u", h);
	}
	audit_locked(r->ctx, r->peer->uid, r->audit_token, r->audit_session, m->name, obj, rv);
}

/* ---- the table ---- */


static const handler_fn handlers[MSG_COUNT] = {
	[MSG_HELLO] = process_hello,
	[MSG_SLOT_LIST] = process_slot_list,
	[MSG_SLOT_INFO] = process_slot_info,
	[MSG_TOKEN_INFO] = process_token_info,
	[MSG_MECH_LIST] = process_mech_list,
	[MSG_MECH_INFO] = process_mech_info,
	[MSG_INIT_TOKEN] = process_init_token,
	[MSG_INIT_PIN] = process_init_pin,
	[MSG_SET_PIN] = process_set_pin,
	[MSG_OPEN_SESSION] = process_open_session,
	[MSG_CLOSE_SESSION] = process_close_session,
	[MSG_CLOSE_ALL] = process_close_all,
	[MSG_SESSION_INFO] = process_session_info,
	[MSG_LOGIN] = process_login,
	[MSG_LOGOUT] = process_logout,
	[MSG_CREATE_OBJECT] = process_create_object,
	[MSG_COPY_OBJECT] = process_copy_object,
	[MSG_DESTROY_OBJECT] = process_destroy_object,
	[MSG_OBJECT_SIZE] = process_object_size,
	[MSG_GET_ATTRS] = process_get_attrs,
	[MSG_SET_ATTRS] = process_set_attrs,
	[MSG_FIND_INIT] = process_find_init,
	[MSG_FIND] = process_find,
	[MSG_FIND_FINAL] = process_find_final,
	[MSG_GENERATE_KEY] = process_generate_key,
	[MSG_GENERATE_KEY_PAIR] = process_generate_key_pair,
	[MSG_OP_INIT] = process_op_init,
	[MSG_OP_RUN] = process_op_run,
	[MSG_OP_UPDATE] = process_op_update,
	[MSG_OP_FINAL] = process_op_final,
	[MSG_OP_SHM] = process_op_shm,
	[MSG_SHM_ATTACH] = process_shm_attach,
	[MSG_SESSION_CANCEL] = process_session_cancel,
	[MSG_WRAP_KEY] = process_wrap_key,
	[MSG_UNWRAP_KEY] = process_unwrap_key,
	[MSG_DERIVE_KEY] = process_derive_key,
	[MSG_UNLOCK] = process_unlock,
	[MSG_LOCK] = process_lock,
	[MSG_AUDIT_LIST] = process_audit_list,
	[MSG_AUDIT_VERIFY] = process_audit_verify,
	[MSG_KEY_STATE] = process_key_state,
	[MSG_CERT_IMPORT] = process_cert_import,
	[MSG_INVENTORY] = process_inventory,
	[MSG_KEY_ROTATE] = process_key_rotate,
	[MSG_ROTATE_DUE] = process_rotate_due,
	[MSG_CERT_ISSUE] = process_cert_issue,
	[MSG_CRL_GENERATE] = process_crl_generate,
	[MSG_KEY_CSR] = process_key_csr,
	[MSG_CA_INIT] = process_ca_init,
};

int
dispatch_request(struct km_ctx *ctx, struct km_peer *peer, struct wire_buf *req,
		 struct wire_buf *rep)
{
	uint32_t type;
	struct wire_buf fields;
	if (wire_get_u32(req, &type) != 0)
		return CY_ERR_TRUNCATED;
	const struct proto_msg *m = proto_msg(type);
	wire_reset(rep);
	if (m == NULL || handlers[type] == NULL) {
		log_debug("peer pid %d: unknown request type %u", (int)peer->pid, type);
		return proto_begin_reply(rep, type, CKR_FUNCTION_NOT_SUPPORTED);
	}
	int e = proto_check_sig(req, m->req_sig);
	if (e != 0) {
		log_warn("peer pid %d: malformed %s request: %s", (int)peer->pid, m->name, cy_strerror(e));
		return e;
	}
	if (type != MSG_HELLO && peer->app == NULL) {
		log_warn("peer pid %d: %s before hello", (int)peer->pid, m->name);
		return CY_ERR_BAD_FORMAT;
	}
	struct req r = { ctx, peer, req, &fields, -1, 0, "" };
	wire_init(&fields, WIRE_MAX_FRAME - 16);
	pthread_mutex_lock(&ctx->lock);
	CK_RV rv = handlers[type](&r);
	if (audited(type))
		audit_request_locked(&r, m, rv);
	pthread_mutex_unlock(&ctx->lock);
	bool with_fields = rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL;
	if (with_fields && (wire_error(&fields) != 0 || proto_check_sig(&fields, m->rep_sig) != 0)) {
		log_err("%s: reply does not fit its signature", m->name);
		rv = CKR_GENERAL_ERROR;
		with_fields = false;
	}
	proto_begin_reply(rep, type, (uint32_t)rv);
	if (with_fields)
		wire_put_raw(rep, fields.data, fields.size);
	wire_free(&fields);
	return wire_error(rep);
}

void
dispatch_peer_gone(struct km_ctx *ctx, struct km_peer *peer)
{
	struct km_app *a = peer->app;
	dispatch_shm_release(peer);
	if (a == NULL)
		return;
	pthread_mutex_lock(&ctx->lock);
	peer->app = NULL;
	if (--a->conns == 0) {
		for (;;) {
			struct km_session *s;
			for (s = ctx->sessions; s; s = s->next)
				if (s->app == a)
					break;
			if (s == NULL)
				break;
			session_close_idle_locked(ctx, s);
		}
		while (a->logins) {
			struct km_login *l = a->logins;
			a->logins = l->next;
			free(l);
		}
		for (struct km_app **pp = &ctx->apps; *pp; pp = &(*pp)->next) {
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		}
		free(a);
	}
	pthread_mutex_unlock(&ctx->lock);
}
