/*
 * defer.c - inits the module answers itself, sent with their first step.
 *
 * Over a link where a round trip costs 100-600 ms, C_SignInit then C_Sign
 * as two requests doubles the cost of a signature. keymgrd sums up each
 * key a find returns (its class, type, and which operations it could
 * start: proto.h PROTO_SUMMARY_OPS); when the key of a C_SignInit or
 * C_VerifyInit is summed up here, the mechanism is one this module knows
 * to take that key with no parameter, and no operation of that kind is
 * known to be live in the session, the init is kept and answered CKR_OK,
 * and the first step sends both (one MULTI: keymgrd runs the step only if
 * the init passes). Everything else goes to keymgrd as before, so every
 * code an init can return still comes from the init itself; what keymgrd
 * refuses although the summary said yes (the key was revoked meanwhile)
 * comes from the step as CKR_FUNCTION_FAILED, or as the code itself when
 * it is one the step may return.
 *
 * Summaries are kept for keymgrd's cache_ms (HELLO), per session and
 * object; they go when the object is changed or destroyed through this
 * module, when the session closes, and at any logout.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mech.h"
#include "module.h"

#define DEFER_KEYS 256
#define DEFER_SESSIONS 64

struct key_entry {
	CK_SESSION_HANDLE session; /* 0: free */
	uint32_t obj, cls, kt, ops;
	int64_t until; /* ms, monotonic */
};

/* Per session: what the module knows of its sign and verify operations. */
struct op_entry {
	CK_SESSION_HANDLE session; /* 0: free */
	enum defer_state state[2]; /* OP_SIGN, OP_VERIFY */
	struct wire_buf init[2];   /* the kept OP_INIT request, in DEFER_PENDING */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct key_entry keys[DEFER_KEYS];
static struct op_entry sessions[DEFER_SESSIONS];
static size_t next_victim;

static int
slot_of(enum proto_op kind)
{
	return kind == OP_SIGN ? 0 : kind == OP_VERIFY ? 1 : -1;
}

void
defer_note_key(CK_SESSION_HANDLE h, uint32_t obj, uint32_t cls, uint32_t kt, uint32_t ops, uint32_t valid_ms)
{
	if (h == 0 || valid_ms == 0)
		return;
	pthread_mutex_lock(&lock);
	struct key_entry *e = NULL;
	for (size_t i = 0; i < DEFER_KEYS && e == NULL; i++)
		if (keys[i].session == h && keys[i].obj == obj)
			e = &keys[i];
	for (size_t i = 0; i < DEFER_KEYS && e == NULL; i++)
		if (keys[i].session == 0)
			e = &keys[i];
	if (e == NULL) {
		e = &keys[next_victim];
		next_victim = (next_victim + 1) % DEFER_KEYS;
	}
	*e = (struct key_entry){ h, obj, cls, kt, ops, mod_now_ms() + valid_ms };
	pthread_mutex_unlock(&lock);
}

void
defer_forget_object(CK_OBJECT_HANDLE obj)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DEFER_KEYS; i++)
		if (keys[i].obj == obj)
			keys[i].session = 0;
	pthread_mutex_unlock(&lock);
}

static void
clear_op(struct op_entry *o)
{
	for (int k = 0; k < 2; k++)
		wire_free(&o->init[k]);
	memset(o, 0, sizeof(*o));
}

void
defer_forget_session(CK_SESSION_HANDLE h)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DEFER_KEYS; i++)
		if (keys[i].session == h)
			keys[i].session = 0;
	for (size_t i = 0; i < DEFER_SESSIONS; i++)
		if (sessions[i].session == h)
			clear_op(&sessions[i]);
	pthread_mutex_unlock(&lock);
}

void
defer_forget_keys(void)
{
	pthread_mutex_lock(&lock);
	memset(keys, 0, sizeof(keys));
	pthread_mutex_unlock(&lock);
}

void
defer_forget_all(void)
{
	pthread_mutex_lock(&lock);
	memset(keys, 0, sizeof(keys));
	for (size_t i = 0; i < DEFER_SESSIONS; i++)
		clear_op(&sessions[i]);
	pthread_mutex_unlock(&lock);
}

void
defer_child_reset(void)
{
	pthread_mutex_init(&lock, NULL);
	memset(keys, 0, sizeof(keys));
	for (size_t i = 0; i < DEFER_SESSIONS; i++)
		memset(&sessions[i], 0, sizeof(sessions[i])); /* the parent's buffers stay the parent's */
}

/* The entry of session h (made when make), or NULL. Under lock. */
static struct op_entry *
op_of(CK_SESSION_HANDLE h, bool make)
{
	struct op_entry *free_one = NULL;
	for (size_t i = 0; i < DEFER_SESSIONS; i++) {
		if (sessions[i].session == h)
			return &sessions[i];
		if (sessions[i].session == 0 && free_one == NULL)
			free_one = &sessions[i];
	}
	if (make && free_one != NULL)
		free_one->session = h;
	return make ? free_one : NULL;
}

enum defer_state
defer_state(CK_SESSION_HANDLE h, enum proto_op kind)
{
	int k = slot_of(kind);
	if (k < 0)
		return DEFER_UNKNOWN;
	pthread_mutex_lock(&lock);
	struct op_entry *o = op_of(h, false);
	enum defer_state st = o ? o->state[k] : DEFER_NONE;
	pthread_mutex_unlock(&lock);
	return st;
}

void
defer_set_state(CK_SESSION_HANDLE h, enum proto_op kind, enum defer_state st)
{
	int k = slot_of(kind);
	if (k < 0)
		return;
	pthread_mutex_lock(&lock);
	struct op_entry *o = op_of(h, st != DEFER_NONE);
	if (o != NULL) {
		if (o->state[k] == DEFER_PENDING)
			wire_free(&o->init[k]);
		o->state[k] = st;
		if (o->state[0] == DEFER_NONE && o->state[1] == DEFER_NONE)
			clear_op(o);
	}
	pthread_mutex_unlock(&lock);
}

/* Whether key (in session h) takes mechanism m for kind, by what this
 * module knows: a summary that is still good, a parameterless mechanism
 * of the key's type with kind's flag. A message kind (message.c) is
 * judged as the operation it computes. Under lock. */
static bool
predicts_ok(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	const struct mech_row *row = mech_find(m->mechanism);
	if (row == NULL || row->param != MP_NONE || m->ulParameterLen != 0 ||
	    !(row->flags & proto_op_info(kind)->flag))
		return false;
	kind = (enum proto_op)proto_op_info(kind)->base;
	int64_t now = mod_now_ms();
	for (size_t i = 0; i < DEFER_KEYS; i++) {
		const struct key_entry *e = &keys[i];
		if (e->session != h || e->obj != key || e->until <= now)
			continue;
		bool symmetric = mech_secret_kt(row->kt);
		CK_OBJECT_CLASS want = symmetric ? CKO_SECRET_KEY : kind == OP_SIGN ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
		return e->cls == want && e->kt == row->kt && (e->ops & PROTO_SUMMARY_OPS(kind));
	}
	return false;
}

bool
defer_predicts(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	pthread_mutex_lock(&lock);
	bool ok = predicts_ok(h, kind, m, key);
	pthread_mutex_unlock(&lock);
	return ok;
}

CK_RV
defer_init(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key, bool *kept)
{
	int k = slot_of(kind);
	*kept = false;
	if (k < 0)
		return CKR_OK;
	pthread_mutex_lock(&lock);
	struct op_entry *o = op_of(h, false);
	CK_RV rv = CKR_OK;
	if (o != NULL && o->state[k] == DEFER_PENDING) {
		rv = CKR_OPERATION_ACTIVE; /* C_SignInit twice */
	} else if ((o == NULL || o->state[k] == DEFER_NONE) && predicts_ok(h, kind, m, key) &&
		   (o = op_of(h, true)) != NULL) {
		struct wire_buf *b = &o->init[k];
		wire_init(b, 4096);
		proto_begin_request(b, MSG_OP_INIT);
		wire_put_u32(b, (uint32_t)h);
		wire_put_u32(b, kind);
		if (mech_param_encode(m, b) == CKR_OK && wire_put_u32(b, (uint32_t)key) == 0) {
			o->state[k] = DEFER_PENDING;
			*kept = true;
		} else {
			wire_free(b);
		}
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

bool
defer_take(CK_SESSION_HANDLE h, enum proto_op kind, struct wire_buf *out)
{
	int k = slot_of(kind);
	bool taken = false;
	if (k < 0)
		return false;
	pthread_mutex_lock(&lock);
	struct op_entry *o = op_of(h, false);
	if (o != NULL && o->state[k] == DEFER_PENDING) {
		*out = o->init[k];
		memset(&o->init[k], 0, sizeof(o->init[k]));
		o->state[k] = DEFER_LIVE; /* once sent; the step's result says more */
		taken = true;
	}
	pthread_mutex_unlock(&lock);
	return taken;
}

bool
defer_plain_private_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	bool plain = false;
	int64_t now = mod_now_ms();
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DEFER_KEYS && !plain; i++)
		plain = keys[i].session == h && keys[i].obj == obj && keys[i].until > now &&
			keys[i].cls == CKO_PRIVATE_KEY && keys[i].ops != 0;
	pthread_mutex_unlock(&lock);
	return plain;
}
