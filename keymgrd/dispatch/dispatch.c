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

#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/access.h"
#include "model/audit.h"
#include "model/ca.h"
#include "model/logins.h"
#include "model/session.h"

/*
 * What a request needs before its handler runs, checked here in PKCS#11's
 * order of precedence: the session (CKR_SESSION_HANDLE_INVALID) before
 * the login state (CKR_USER_NOT_LOGGED_IN) before the session's mode
 * (CKR_SESSION_READ_ONLY), all before anything the handler checks. The
 * roles (model/access.h) come after the session, before the login state.
 */
enum {
	RQ_SESSION = 1 << 0, /* the first field is the caller's session: r->s */
	RQ_USER    = 1 << 1, /* ... where the user is logged in */
	RQ_SO      = 1 << 2, /* ... where the SO is logged in */
	RQ_RW      = 1 << 3, /* ... which is a R/W session */
	RQ_ADMIN   = 1 << 4, /* only for an administrator (CKR_ACTION_PROHIBITED) */
	RQ_READER  = 1 << 5, /* only for an administrator or an auditor */
	RQ_AUDITED = 1 << 6, /* leaves an audit entry, failures included */
	RQ_MAKES_1 = 1 << 7, /* the first reply field is a new object's handle */
	RQ_MAKES_2 = 1 << 8, /* the first two reply fields are new objects' handles */
	/* Allowed while the user logged in with a PIN that must be changed
	 * (elsewhere CKR_PIN_EXPIRED until C_SetPIN). */
	RQ_EXPIRED_OK = 1 << 9,
};

struct dispatch_row {
	handler_fn run;
	unsigned flags;
};

#define S RQ_SESSION
#define A RQ_AUDITED
#define X RQ_EXPIRED_OK
static const struct dispatch_row table[MSG_COUNT] = {
	[MSG_HELLO] = { process_hello, 0 },
	[MSG_SLOT_LIST] = { process_slot_list, 0 },
	[MSG_SLOT_INFO] = { process_slot_info, 0 },
	[MSG_TOKEN_INFO] = { process_token_info, 0 },
	[MSG_MECH_LIST] = { process_mech_list, 0 },
	[MSG_MECH_INFO] = { process_mech_info, 0 },
	[MSG_INIT_TOKEN] = { process_init_token, RQ_ADMIN | A },
	[MSG_INIT_PIN] = { process_init_pin, S | RQ_SO | RQ_RW | A },
	[MSG_SET_PIN] = { process_set_pin, S | RQ_RW | A | X },
	[MSG_OPEN_SESSION] = { process_open_session, 0 },
	[MSG_CLOSE_SESSION] = { process_close_session, S | X },
	[MSG_CLOSE_ALL] = { process_close_all, 0 },
	[MSG_CLOSE_SESSIONS] = { process_close_sessions, 0 },
	[MSG_SESSION_INFO] = { process_session_info, S | X },
	[MSG_LOGIN] = { process_login, S | A | X },
	[MSG_LOGOUT] = { process_logout, S | A | X },
	[MSG_CREATE_OBJECT] = { process_create_object, S | A | RQ_MAKES_1 },
	[MSG_COPY_OBJECT] = { process_copy_object, S | A | RQ_MAKES_1 },
	[MSG_DESTROY_OBJECT] = { process_destroy_object, S | A },
	[MSG_OBJECT_SIZE] = { process_object_size, S },
	[MSG_GET_ATTRS] = { process_get_attrs, S },
	[MSG_SET_ATTRS] = { process_set_attrs, S | A },
	[MSG_FIND_INIT] = { process_find_init, S },
	[MSG_FIND] = { process_find, S },
	[MSG_FIND_FINAL] = { process_find_final, S },
	[MSG_GENERATE_KEY] = { process_generate_key, S | A | RQ_MAKES_1 },
	[MSG_GENERATE_KEY_PAIR] = { process_generate_key_pair, S | A | RQ_MAKES_2 },
	[MSG_OP_INIT] = { process_op_init, S },
	[MSG_OP_RUN] = { process_op_run, S },
	[MSG_OP_UPDATE] = { process_op_update, S },
	[MSG_OP_FINAL] = { process_op_final, S },
	[MSG_OP_SHM] = { process_op_shm, S },
	[MSG_SHM_ATTACH] = { process_shm_attach, 0 },
	[MSG_SESSION_CANCEL] = { process_session_cancel, S | X },
	[MSG_WRAP_KEY] = { process_wrap_key, S | A },
	[MSG_UNWRAP_KEY] = { process_unwrap_key, S | A | RQ_MAKES_1 },
	[MSG_DERIVE_KEY] = { process_derive_key, S | A | RQ_MAKES_1 },
	[MSG_UNLOCK] = { process_unlock, A },
	[MSG_LOCK] = { process_lock, A },
	[MSG_AUDIT_LIST] = { process_audit_list, RQ_READER },
	[MSG_AUDIT_VERIFY] = { process_audit_verify, RQ_READER },
	/* Key management is the administrator's, on any token it sees; what
	 * signs with a CA's key also needs that token's user. */
	[MSG_KEY_STATE] = { process_key_state, S | RQ_ADMIN | RQ_RW | A },
	[MSG_CERT_IMPORT] = { process_cert_import, S | RQ_ADMIN | RQ_RW | A },
	[MSG_INVENTORY] = { process_inventory, 0 },
	[MSG_INVENTORY_PAGE] = { process_inventory, 0 },
	[MSG_KEY_ROTATE] = { process_key_rotate, S | RQ_ADMIN | RQ_RW },
	[MSG_ROTATE_DUE] = { process_rotate_due, S | RQ_READER },
	[MSG_CERT_ISSUE] = { process_cert_issue, S | RQ_ADMIN | RQ_USER | RQ_RW | A },
	[MSG_CERT_REVOKE] = { process_cert_revoke, S | RQ_ADMIN | RQ_USER | RQ_RW | A },
	[MSG_BACKUP] = { process_backup, RQ_ADMIN | A },
	[MSG_BACKUP_READ] = { process_backup_read, RQ_ADMIN },
	[MSG_STATUS] = { process_status, RQ_READER },
	[MSG_CRL_GENERATE] = { process_crl_generate, S | RQ_ADMIN | RQ_USER | RQ_RW | A },
	[MSG_KEY_CSR] = { process_key_csr, S | RQ_ADMIN | RQ_RW | A },
	[MSG_CA_INIT] = { process_ca_init, S | RQ_ADMIN | RQ_USER | RQ_RW | A },
	/* Moving a unit token's key to its holder takes that token's PIN. */
	[MSG_KEY_MOVE] = { process_key_move, S | RQ_ADMIN | RQ_USER | RQ_RW | A },
	[MSG_ACCOUNT_LOGIN] = { process_account_login, A },
	[MSG_ACCOUNT_ADD] = { process_account_add, RQ_ADMIN | A },
	[MSG_ACCOUNT_REMOVE] = { process_account_remove, RQ_ADMIN | A },
	[MSG_ACCOUNT_LIST] = { process_account_list, RQ_READER },
	[MSG_HOLDER_ADD] = { process_holder_add, RQ_ADMIN | A },
	[MSG_HOLDER_LIST] = { process_holder_list, RQ_READER },
	[MSG_HOLDER_RESET_PIN] = { process_holder_reset_pin, RQ_ADMIN | A },
	[MSG_RESET_SO_PIN] = { process_reset_so_pin, RQ_ADMIN | A },
	[MSG_TOKEN_DELETE] = { process_token_delete, RQ_ADMIN | A },
	[MSG_CRL_CURRENT] = { process_crl_current, S },
	[MSG_ACCESS_SET] = { process_access_set, RQ_ADMIN | A },
	[MSG_ACCESS_LIST] = { process_access_list, RQ_READER },
};
#undef S
#undef A
#undef X

/* The checks a row's flags ask for (see the enum); r->s is set on CKR_OK. */
static CK_RV
admit_locked(struct req *r, unsigned flags)
{
	struct km_session *s = NULL;
	if (flags & RQ_SESSION) {
		s = req_session(r, get_u32(r));
		/* A session on a token its rules no longer grant is gone. */
		if (s == NULL || !access_sees_locked(r->ctx, s->app, s->token_id))
			return CKR_SESSION_HANDLE_INVALID;
	}
	enum km_role role = r->peer->app ? access_role_locked(r->ctx, r->peer->app) : KM_ROLE_NONE;
	if ((flags & RQ_ADMIN) && role != KM_ROLE_ADMIN)
		return CKR_ACTION_PROHIBITED;
	if ((flags & RQ_READER) && role == KM_ROLE_NONE)
		return CKR_ACTION_PROHIBITED;
	if (s == NULL)
		return CKR_OK;
	if (!(flags & RQ_EXPIRED_OK) && session_user_in(s)) {
		const struct km_token *t = token_find_locked(r->ctx, s->token_id);
		if (t != NULL && t->st.user_pin_expired)
			return CKR_PIN_EXPIRED;
	}
	if ((flags & RQ_USER) && !session_user_in(s))
		return CKR_USER_NOT_LOGGED_IN;
	if ((flags & RQ_SO) && session_login_of(s->app, s->token_id) != CKU_SO)
		return CKR_USER_NOT_LOGGED_IN;
	if ((flags & RQ_RW) && !(s->flags & CKF_RW_SESSION))
		return CKR_SESSION_READ_ONLY;
	r->s = s;
	return CKR_OK;
}

/* Records the request's outcome; new objects are named by the handles at
 * the start of the reply fields. */
static int
audit_request_locked(struct req *r, const struct proto_msg *m, unsigned flags, CK_RV rv)
{
	char obj[sizeof(r->audit_obj)];
	snprintf(obj, sizeof(obj), "%s", r->audit_obj);
	if (rv == CKR_OK && (flags & RQ_MAKES_2) && r->out->size >= 8)
		snprintf(obj, sizeof(obj), "objects %u %u", wire_load_u32(r->out->data),
			 wire_load_u32(r->out->data + 4));
	else if (rv == CKR_OK && (flags & RQ_MAKES_1) && r->out->size >= 4)
		snprintf(obj, sizeof(obj), "object %u", wire_load_u32(r->out->data));
	struct audit_actor by = access_actor_locked(r->ctx, r->peer->app, &r->peer->who);
	return audit_locked(r->ctx, &by, r->audit_token, r->audit_session, m->name, obj, rv);
}

/* The entry of a request that its change's transaction writes. */
struct pending_entry {
	struct req *r;
	const struct proto_msg *m;
	unsigned flags;
};

static int
write_pending(void *arg)
{
	struct pending_entry *p = arg;
	return audit_request_locked(p->r, p->m, p->flags, CKR_OK);
}

static int dispatch_multi(struct km_ctx *ctx, struct km_peer *peer, struct wire_buf *req, struct wire_buf *rep);

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
	if (type == MSG_MULTI) {
		int e = proto_check_sig(req, m->req_sig);
		return e != 0 ? e : dispatch_multi(ctx, peer, req, rep);
	}
	if (type == MSG_BYE && peer->app != NULL) {
		/* No answer: the application ends, its connection with it. */
		pthread_mutex_lock(&ctx->lock);
		peer->app->bye = true;
		pthread_mutex_unlock(&ctx->lock);
		return CY_ERR_EOF;
	}
	if (m == NULL || table[type].run == NULL) {
		log_debug("peer %s: unknown request type %u", peer->who.name, type);
		return proto_begin_reply(rep, type, CKR_FUNCTION_NOT_SUPPORTED);
	}
	int e = proto_check_sig(req, m->req_sig);
	if (e != 0) {
		log_warn("peer %s: malformed %s request: %s", peer->who.name, m->name, cy_strerror(e));
		return e;
	}
	if (type != MSG_HELLO && peer->app == NULL) {
		log_warn("peer %s: %s before hello", peer->who.name, m->name);
		return CY_ERR_BAD_FORMAT;
	}

	log_debug("peer %s: %s", peer->who.name, m->name);
	const struct dispatch_row *row = &table[type];
	struct req r = { .ctx = ctx, .peer = peer, .in = req, .out = &fields, .audit_token = -1 };
	wire_init(&fields, WIRE_MAX_FRAME - 16);
	pthread_mutex_lock(&ctx->lock);
	/* Another keymgrd on the store may have changed a token (a PIN, a
	 * count, a new holder): seen from this request on. When the store
	 * cannot say, the tokens as read before serve; what needs the store
	 * fails on its own. */
	store_request_scope(ctx->st, true);
	if (token_refresh_locked(ctx) != 0)
		log_debug("the tokens could not be read again from the store");
	CK_RV rv = admit_locked(&r, row->flags);
	if (rv == CKR_ACTION_PROHIBITED)
		log_info("%s pid %d: %s refused: it needs the %s role", peer->who.name, (int)peer->who.pid, m->name,
			 (row->flags & RQ_ADMIN) ? "administrator" : "administrator or auditor");
	/* A request refused before its handler ran (no such session, no
	 * login, no role) changed nothing and tried no secret: it is logged,
	 * not audited, so no client can fill the trail with refusals. */
	bool ran = rv == CKR_OK;
	/* A change commits with its audit entry (the code that makes it
	 * calls audit_commit_locked); what commits none is audited after.
	 * Logins are undone below instead; the entries of new objects name
	 * handles that are known only once the reply is written. */
	struct pending_entry pe = { &r, m, row->flags };
	struct audit_pending pending = { write_pending, &pe, false };
	bool in_txn = (row->flags & RQ_AUDITED) && !(row->flags & (RQ_MAKES_1 | RQ_MAKES_2)) &&
		      type != MSG_LOGIN && type != MSG_ACCOUNT_LOGIN;
	if (ran) {
		audit_pending_set(in_txn ? &pending : NULL);
		rv = row->run(&r);
		audit_pending_set(NULL);
	}
	if ((row->flags & RQ_AUDITED) && ran && !r.no_audit && !pending.done &&
	    audit_request_locked(&r, m, row->flags, rv) != 0 && rv == CKR_OK &&
	    (type == MSG_LOGIN || type == MSG_ACCOUNT_LOGIN)) {
		/* A login that cannot be on record does not happen: neither a
		 * token login nor the role an account's passphrase gave (a
		 * holder token's SO logs in with one). */
		struct km_app *app = peer->app;
		bool by_account = type == MSG_ACCOUNT_LOGIN ||
				  (session_login_of(app, r.s->token_id) == CKU_SO &&
				   access_is_holder(token_find_locked(ctx, r.s->token_id)));
		if (type == MSG_LOGIN)
			session_logout_app(ctx, app, r.s->token_id);
		if (by_account) {
			app->role = KM_ROLE_NONE;
			app->account[0] = '\0';
			access_forget_locked(ctx);
		}
		log_err("%s pid %d: %s undone: the audit trail cannot be written", peer->who.name, (int)peer->who.pid,
			m->name);
		rv = CKR_DEVICE_ERROR;
	}
	ctx->stats.requests[type]++;
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		ctx->stats.errors[type]++;
	store_request_scope(ctx->st, false);
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

/* Ends application a: its sessions (at most max_sessions, each closed in
 * constant time), its logins, a itself. */
static void
app_end_locked(struct km_ctx *ctx, struct km_app *a)
{
	while (a->sessions)
		session_close_idle_locked(ctx, a->sessions);
	for (struct km_app **pp = &ctx->apps; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	access_app_free(a);
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
		if (a->remote && !a->bye && ctx->policy.session_grace > 0) {
			/* A link that dropped: its sessions wait for it; of one
			 * principal's, KM_GONE_PER_PRINCIPAL at most (the one
			 * gone longest ends), so new ids cannot pile them up. */
			a->gone_until = dispatch_now_ms() + ctx->policy.session_grace * 1000;
			log_info("%s: links dropped; its sessions wait %lld s for it", a->principal,
				 (long long)ctx->policy.session_grace);
			struct km_app *oldest = NULL;
			unsigned gone = 0;
			for (struct km_app *x = ctx->apps; x; x = x->next) {
				if (x->conns != 0 || x->gone_until == 0 || strcmp(x->principal, a->principal) != 0)
					continue;
				gone++;
				if (oldest == NULL || x->gone_until < oldest->gone_until)
					oldest = x;
			}
			if (gone > KM_GONE_PER_PRINCIPAL) {
				log_info("%s: more than %u applications wait for their links: the oldest ends", a->principal,
					 KM_GONE_PER_PRINCIPAL);
				app_end_locked(ctx, oldest);
			}
		} else {
			app_end_locked(ctx, a);
		}
	}
	pthread_mutex_unlock(&ctx->lock);
}

int64_t
dispatch_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void
dispatch_sweep(struct km_ctx *ctx)
{
	int64_t now = dispatch_now_ms();
	pthread_mutex_lock(&ctx->lock);
	for (struct km_app *a = ctx->apps, *next; a; a = next) {
		next = a->next;
		if (a->conns == 0 && a->gone_until != 0 && a->gone_until <= now) {
			log_info("%s: did not come back: its sessions end", a->principal);
			app_end_locked(ctx, a);
		}
	}
	logins_touch_locked(ctx);
	ca_publish_locked(ctx);
	pthread_mutex_unlock(&ctx->lock);
}

/*
 * MULTI: requests run one after the other, as if each came alone, until
 * one fails (a reply other than CKR_OK or CKR_BUFFER_TOO_SMALL): its
 * reply is the last. So a module sends an init and its first step in one
 * round trip, and the step is not run when the init fails. A request the
 * batch cannot carry (another batch; one passing a descriptor) closes the
 * connection like any malformed request.
 */
static int
dispatch_multi(struct km_ctx *ctx, struct km_peer *peer, struct wire_buf *req, struct wire_buf *rep)
{
	uint32_t n = 0;
	wire_get_u32(req, &n);
	if (n == 0 || n > PROTO_MAX_MULTI) {
		log_warn("peer %s: a batch of %u requests", peer->who.name, n);
		return CY_ERR_BAD_FORMAT;
	}
	proto_begin_reply(rep, MSG_MULTI, CKR_OK);
	size_t count_at = rep->size;
	wire_put_u32(rep, 0);
	uint32_t done = 0;
	int e = 0;
	while (done < n && e == 0) {
		const uint8_t *p = NULL;
		uint32_t len = 0, sub_type = 0;
		wire_get_bytes(req, &p, &len);
		struct wire_buf sub, sub_rep;
		wire_init_view(&sub, p, len);
		if (len < 4 || (sub_type = wire_load_u32(p)) == MSG_MULTI || sub_type == MSG_SHM_ATTACH ||
		    sub_type == MSG_OP_SHM) {
			log_warn("peer %s: request %u cannot be in a batch", peer->who.name, sub_type);
			return CY_ERR_BAD_FORMAT;
		}
		wire_init(&sub_rep, WIRE_MAX_FRAME - 16);
		if ((e = dispatch_request(ctx, peer, &sub, &sub_rep)) == 0) {
			uint32_t rv = sub_rep.size >= 8 ? wire_load_u32(sub_rep.data + 4) : CKR_GENERAL_ERROR;
			e = wire_put_bytes(rep, sub_rep.data, sub_rep.size);
			done++;
			if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
				n = done;
		}
		wire_free(&sub_rep);
	}
	if (e == 0)
		e = wire_poke_u32(rep, count_at, done);
	return e != 0 ? e : wire_error(rep);
}
