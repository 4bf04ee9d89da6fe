/*
 * request.h - what a request handler sees, and the handlers themselves.
 *
 * A handler runs with ctx->lock held on a request that dispatch_request
 * has already checked against its signature, so the get_* readers below
 * cannot fail. It decodes its fields, calls the model, writes its reply
 * fields into r->out and returns the CK_RV of the reply. It sees the peer
 * only through struct km_peer, never a socket or a store statement.
 */
#ifndef KM_REQUEST_H
#define KM_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "attr.h"
#include "ctx.h"
#include "model/audit.h"
#include "wire.h"

struct req {
	struct km_ctx *ctx;
	struct km_peer *peer;
	struct wire_buf *in;
	struct wire_buf *out; /* reply fields */
	/* The caller's session, for requests whose table row says they act
	 * in one (checked and found before the handler runs). */
	struct km_session *s;
	/* What the audit entry of this request names (see audit.h). */
	int64_t audit_token;
	uint32_t audit_session;
	char audit_obj[256];
	/* Set by a handler when the request changed nothing and tested no
	 * secret (a LOCK with nothing to lock, a login on a locked PIN): no
	 * audit entry, so a client cannot fill the trail (docs/security.md). */
	bool no_audit;
};

/* Reads that the signature check has already proven safe. */
static inline uint32_t
get_u32(struct req *r)
{
	uint32_t v = 0;
	wire_get_u32(r->in, &v);
	return v;
}

static inline uint64_t
get_u64(struct req *r)
{
	uint64_t v = 0;
	wire_get_u64(r->in, &v);
	return v;
}

static inline bool
get_bool(struct req *r)
{
	bool v = false;
	wire_get_bool(r->in, &v);
	return v;
}

/* A string field into buf of size len: false (buf "") when it is longer. */
static inline bool
get_str(struct req *r, char *buf, size_t len)
{
	if (wire_get_str_into(r->in, buf, len) == 0)
		return true;
	buf[0] = '\0';
	return false;
}

static inline const uint8_t *
get_bytes(struct req *r, uint32_t *n)
{
	const uint8_t *p = NULL;
	*n = 0;
	wire_get_bytes(r->in, &p, n);
	return p;
}

/* ---- request helpers (dispatch/request.c) ---- */

/* A change of one store statement (its result e, inside a transaction
 * begun by the caller) committed with the request's audit entry, or
 * rolled back: 0 or an error. */
int req_commit(struct req *r, int e);

/* The caller's session h, waiting until no other worker is using it
 * (NULL when it has none); the audit entry names it. */
struct km_session *req_session(struct req *r, uint32_t h);
/* handle_object_locked / handle_key_locked, naming the object in the
 * audit entry. */
CK_RV req_object(struct req *r, struct km_session *s, uint32_t h, bool with_secrets, struct km_object **out,
		 bool *owned);
CK_RV req_key(struct req *r, struct km_session *s, uint32_t h, struct km_object **out, bool *owned);
/* Reads an 'A' field into l (freed on failure). */
CK_RV req_template(struct req *r, struct attrlist *l);
/* Gives into the CKA_ID of the session's token key whose public part
 * has keyhash (a public key first, else a private key alone, as other
 * tools write them), so the certificate of that key pairs with it. 1
 * when found, 0 when the token has no such key, -1 on error. */
int req_cert_key_id(struct req *r, struct km_session *s, const uint8_t *keyhash, struct attrlist *into);
/* token_verify_pin for session s's token, with s kept (busy) meanwhile. */
CK_RV req_verify_pin(struct req *r, struct km_session *s, CK_USER_TYPE who, const uint8_t *pin, uint32_t n);

/* Whether the caller sees slot (access_slot_ok_locked). */
bool req_slot_ok(struct req *r, uint32_t slot);
/* The caller, for an audit entry. */
struct audit_actor req_actor(struct req *r);

/* Unmaps the peer's shared region (dispatch/h_crypto.c). */
void dispatch_shm_release(struct km_peer *p);

/* ---- the handlers, one per request type (dispatch/h_*.c) ---- */
typedef CK_RV (*handler_fn)(struct req *r);

/* h_token.c */
CK_RV process_hello(struct req *r);
CK_RV process_slot_list(struct req *r);
CK_RV process_slot_info(struct req *r);
CK_RV process_token_info(struct req *r);
CK_RV process_mech_list(struct req *r);
CK_RV process_mech_info(struct req *r);
CK_RV process_init_token(struct req *r);
CK_RV process_init_pin(struct req *r);
CK_RV process_set_pin(struct req *r);
CK_RV process_token_delete(struct req *r);
/* h_session.c */
CK_RV process_open_session(struct req *r);
CK_RV process_close_session(struct req *r);
CK_RV process_close_all(struct req *r);
CK_RV process_close_sessions(struct req *r);
/* A LOGIN reply's fields: the objects of session r->s's token (the few of
 * a holder token, when a search would run now), or word that they do not
 * follow (h_object.c). */
CK_RV find_view(struct req *r);
CK_RV process_session_info(struct req *r);
CK_RV process_login(struct req *r);
CK_RV process_logout(struct req *r);
CK_RV process_unlock(struct req *r);
CK_RV process_lock(struct req *r);
/* h_object.c */
CK_RV process_create_object(struct req *r);
CK_RV process_copy_object(struct req *r);
CK_RV process_destroy_object(struct req *r);
CK_RV process_object_size(struct req *r);
CK_RV process_get_attrs(struct req *r);
CK_RV process_set_attrs(struct req *r);
CK_RV process_find_init(struct req *r);
CK_RV process_find(struct req *r);
CK_RV process_find_final(struct req *r);
/* h_crypto.c */
CK_RV process_generate_key(struct req *r);
CK_RV process_generate_key_pair(struct req *r);
CK_RV process_op_init(struct req *r);
CK_RV process_op_run(struct req *r);
CK_RV process_op_update(struct req *r);
CK_RV process_op_final(struct req *r);
CK_RV process_op_shm(struct req *r);
CK_RV process_shm_attach(struct req *r);
CK_RV process_session_cancel(struct req *r);
/* h_wrap.c */
CK_RV process_wrap_key(struct req *r);
CK_RV process_unwrap_key(struct req *r);
CK_RV process_derive_key(struct req *r);
/* h_lifecycle.c */
CK_RV process_key_state(struct req *r);
CK_RV process_key_rotate(struct req *r);
CK_RV process_rotate_due(struct req *r);
/* h_pki.c */
CK_RV process_cert_import(struct req *r);
CK_RV process_inventory(struct req *r);
CK_RV process_cert_issue(struct req *r);
CK_RV process_cert_revoke(struct req *r);
CK_RV process_crl_generate(struct req *r);
CK_RV process_crl_current(struct req *r);
CK_RV process_key_csr(struct req *r);
CK_RV process_ca_init(struct req *r);
/* h_audit.c */
CK_RV process_audit_list(struct req *r);
CK_RV process_audit_verify(struct req *r);
/* h_service.c */
CK_RV process_backup(struct req *r);
CK_RV process_backup_read(struct req *r);
CK_RV process_status(struct req *r);
/* h_people.c */
CK_RV process_account_login(struct req *r);
CK_RV process_account_add(struct req *r);
CK_RV process_account_remove(struct req *r);
CK_RV process_account_list(struct req *r);
CK_RV process_holder_add(struct req *r);
CK_RV process_holder_list(struct req *r);
CK_RV process_holder_reset_pin(struct req *r);
CK_RV process_access_set(struct req *r);
CK_RV process_access_list(struct req *r);
CK_RV process_key_move(struct req *r);
CK_RV process_reset_so_pin(struct req *r);

#endif
