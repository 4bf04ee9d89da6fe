/*
 * h_crypto.c - key generation, cryptographic operations and the shared region.
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
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "crypto/crypto.h"
#include "mech.h"
#include "model/lifecycle.h"

/* Reads an 'M' field; only parameterless mechanisms generate keys. */
static CK_RV
read_keygen_mech(struct req *r, bool pair, CK_MECHANISM_TYPE *mech, CK_KEY_TYPE *kt)
{
	uint32_t n;
	*mech = get_u32(r);
	(void)get_bytes(r, &n);
	if (!crypto_keygen_mech(*mech, pair, kt))
		return CKR_MECHANISM_INVALID;
	return n ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
}

CK_RV
process_generate_key(struct req *r)
{
	struct km_session *s = r->s;
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE kt;
	struct attrlist tmpl;
	struct km_object *o = NULL;
	CK_RV mrv = read_keygen_mech(r, false, &mech, &kt);
	CK_RV rv = req_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	rv = mrv;
	if (rv != CKR_OK || (rv = obj_template_agrees(&tmpl, CKO_SECRET_KEY, kt)) != CKR_OK)
		goto out;
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, CKO_SECRET_KEY, kt, OM_GENERATE, is_so, &o)) != CKR_OK ||
	    (rv = handle_may_write_obj(s, o)) != CKR_OK)
		goto out;
	if ((rv = crypto_generate_key(mech, o)) != CKR_OK)
		goto out;
	if ((rv = handle_add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, o->handle);
	handle_drop_added(&o, 1);
	o = NULL;
out:
	obj_free(o);
	al_free(&tmpl);
	return rv;
}

CK_RV
process_generate_key_pair(struct req *r)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = r->s;
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE kt;
	struct attrlist pt, vt;
	struct km_object *objs[2] = { NULL, NULL };
	CK_RV mrv = read_keygen_mech(r, true, &mech, &kt);
	CK_RV rv = req_template(r, &pt);
	if (rv != CKR_OK)
		return rv;
	if ((rv = req_template(r, &vt)) != CKR_OK) {
		al_free(&pt);
		return rv;
	}
	rv = mrv;
	if (rv != CKR_OK || (rv = obj_template_agrees(&pt, CKO_PUBLIC_KEY, kt)) != CKR_OK ||
	    (rv = obj_template_agrees(&vt, CKO_PRIVATE_KEY, kt)) != CKR_OK)
		goto out;
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&pt, CKO_PUBLIC_KEY, kt, OM_GENERATE, is_so, &objs[0])) != CKR_OK ||
	    (rv = obj_build(&vt, CKO_PRIVATE_KEY, kt, OM_GENERATE, is_so, &objs[1])) != CKR_OK ||
	    (rv = handle_may_write_obj(s, objs[0])) != CKR_OK || (rv = handle_may_write_obj(s, objs[1])) != CKR_OK)
		goto out;
	/* RSA-4096 takes seconds: generate without the lock. */
	s->busy = true;
	pthread_mutex_unlock(&ctx->lock);
	rv = crypto_generate_key_pair(mech, objs[0], objs[1]);
	pthread_mutex_lock(&ctx->lock);
	session_release(ctx, s);
	if (rv != CKR_OK)
		goto out;
	if ((rv = handle_add_objects_locked(ctx, s, objs, 2)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, objs[0]->handle);
	wire_put_u32(r->out, objs[1]->handle);
	handle_drop_added(objs, 2);
	objs[0] = objs[1] = NULL;
out:
	obj_free(objs[0]);
	obj_free(objs[1]);
	al_free(&pt);
	al_free(&vt);
	return rv;
}

CK_RV
process_op_init(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t kind = get_u32(r), mech = get_u32(r), plen;
	const uint8_t *param = get_bytes(r, &plen);
	uint32_t h = get_u32(r);
	struct mech_param mp;
	struct km_object *key;
	bool owned;
	if (kind < OP_SIGN || kind > OP_MAX)
		return CKR_ARGUMENTS_BAD;
	if (s->op[kind] != NULL)
		return CKR_OPERATION_ACTIVE;
	if (mech_param_decode(mech, param, plen, &mp) != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	CK_RV rv = req_key(r, s, h, &key, &owned);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return CKR_KEY_HANDLE_INVALID;
	if (rv != CKR_OK)
		return rv;
	bool always = key->cls == CKO_PRIVATE_KEY && al_bool(&key->pub, CKA_ALWAYS_AUTHENTICATE, false);
	rv = lifecycle_allows(key, (enum proto_op)proto_op_info(kind)->base);
	if (rv == CKR_OK)
		rv = crypto_op_init(kind, mech, &mp, key, &s->op[kind]);
	/* A message kind is initialised again for every message, which leaves
	 * no place for the login each use of such a key asks. */
	if (rv == CKR_OK && always && proto_op_info(kind)->base != kind) {
		session_end_op(s, kind);
		rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	if (rv == CKR_OK)
		s->need_auth[kind] = always;
	handle_put(key, owned);
	return rv;
}

/*
 * OP_RUN, OP_UPDATE, OP_FINAL. The step is computed once; its output waits
 * in the session's stash until a call has room for it, so asking for the
 * length first (length_only, or too small a capacity) does not redo it.
 * shm_out: where the output goes in the peer's shared region (OP_SHM), or
 * NULL to put it in the reply.
 */
static CK_RV
op_step(struct req *r, uint32_t kind, uint32_t phase, const uint8_t *in, size_t inlen,
	const uint8_t *sig, size_t siglen, uint32_t cap, bool length_only, uint8_t *shm_out)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = r->s;
	if (kind < OP_SIGN || kind > OP_MAX)
		return CKR_ARGUMENTS_BAD;
	if (s->op[kind] == NULL)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (s->need_auth[kind])
		return CKR_USER_NOT_LOGGED_IN;
	/* A one-shot call "cannot be used to terminate a multi-part
	 * operation"; nor may a part follow a one-shot call whose result
	 * waits to be collected. The operation goes on either way. */
	if ((phase == MSG_OP_RUN && s->multipart[kind]) ||
	    (phase != MSG_OP_RUN && s->stash_kind == kind && s->stash_phase == MSG_OP_RUN))
		return CKR_OPERATION_ACTIVE;
	bool ends = phase != MSG_OP_UPDATE;
	if (s->stash_kind != kind || s->stash_phase != phase) {
		uint8_t *out = NULL;
		size_t outlen = 0;
		struct km_op *op = s->op[kind];
		session_clear_stash(s);
		s->busy = true;
		pthread_mutex_unlock(&ctx->lock);
		CK_RV rv;
		/* An encryption whose output fits the shared region goes there. */
		if (shm_out != NULL && !length_only && proto_op_info(kind)->base == OP_ENCRYPT)
			crypto_op_output_to(op, shm_out, cap);
		if (phase == MSG_OP_RUN)
			rv = crypto_op_run(op, in, inlen, sig, siglen, &out, &outlen);
		else if (phase == MSG_OP_UPDATE)
			rv = crypto_op_update(op, in, inlen, &out, &outlen);
		else
			rv = crypto_op_final(op, sig, siglen, &out, &outlen);
		crypto_op_output_to(op, NULL, 0);
		pthread_mutex_lock(&ctx->lock);
		session_release(ctx, s);
		if (rv == CKR_OK && phase == MSG_OP_UPDATE)
			s->multipart[kind] = true;
		if (rv == CKR_OK && out != NULL && out == shm_out) {
			/* Delivered in place: nothing to keep. */
			wire_put_u32(r->out, (uint32_t)outlen);
			wire_put_bytes(r->out, NULL, 0);
			if (ends)
				session_end_op(s, kind);
			return CKR_OK;
		}
		if (rv != CKR_OK || proto_op_info(kind)->base == OP_VERIFY) {
			if (out != shm_out)
				free(out);
			if (rv != CKR_OK || ends)
				session_end_op(s, kind);
			if (rv == CKR_OK) {
				wire_put_u32(r->out, 0);
				wire_put_bytes(r->out, NULL, 0);
			}
			return rv;
		}
		s->stash = out;
		s->stash_len = outlen;
		s->stash_kind = kind;
		s->stash_phase = phase;
	}
	if (s->stash_len > UINT32_MAX)
		return CKR_DEVICE_ERROR;
	wire_put_u32(r->out, (uint32_t)s->stash_len);
	if (length_only) {
		wire_put_bytes(r->out, NULL, 0);
		return CKR_OK;
	}
	if (cap < s->stash_len) {
		wire_put_bytes(r->out, NULL, 0);
		return CKR_BUFFER_TOO_SMALL;
	}
	if (shm_out != NULL) {
		if (s->stash_len)
			memcpy(shm_out, s->stash, s->stash_len);
		wire_put_bytes(r->out, NULL, 0);
	} else {
		wire_put_bytes(r->out, s->stash, s->stash_len);
	}
	session_clear_stash(s);
	if (ends)
		session_end_op(s, kind);
	return CKR_OK;
}

static CK_RV
process_op_step(struct req *r, uint32_t phase)
{
	uint32_t kind = get_u32(r), inlen, siglen;
	const uint8_t *in = get_bytes(r, &inlen);
	const uint8_t *sig = get_bytes(r, &siglen);
	uint32_t cap = get_u32(r);
	bool length_only = get_bool(r);
	return op_step(r, kind, phase, in, inlen, sig, siglen, cap, length_only, NULL);
}

CK_RV
process_op_run(struct req *r)
{
	return process_op_step(r, MSG_OP_RUN);
}

CK_RV
process_op_update(struct req *r)
{
	return process_op_step(r, MSG_OP_UPDATE);
}

CK_RV
process_op_final(struct req *r)
{
	return process_op_step(r, MSG_OP_FINAL);
}

/* A step whose input and output are in the peer's shared region. */
CK_RV
process_op_shm(struct req *r)
{
	uint32_t kind = get_u32(r), phase = get_u32(r), siglen;
	uint64_t in_off = get_u64(r), inlen = get_u64(r);
	const uint8_t *sig = get_bytes(r, &siglen);
	uint64_t out_off = get_u64(r);
	uint32_t cap = get_u32(r);
	bool length_only = get_bool(r);
	const struct km_peer *p = r->peer;
	if (phase != MSG_OP_RUN && phase != MSG_OP_UPDATE && phase != MSG_OP_FINAL)
		return CKR_ARGUMENTS_BAD;
	if (p->shm == NULL || in_off > p->shm_size || inlen > p->shm_size - in_off ||
	    out_off > p->shm_size || cap > p->shm_size - out_off)
		return CKR_ARGUMENTS_BAD;
	return op_step(r, kind, phase, p->shm + in_off, (size_t)inlen, sig, siglen, cap, length_only,
		       p->shm + out_off);
}

/* Unmaps the peer's shared region. */
void
dispatch_shm_release(struct km_peer *p)
{
	if (p->shm != NULL)
		munmap(p->shm, p->shm_size);
	p->shm = NULL;
	p->shm_size = 0;
}

/* Largest shared region a peer may attach. */
#define SHM_MAX (2 * (uint64_t)WIRE_MAX_FRAME)

/*
 * SHM_ATTACH: maps the memfd that came with the request. It must be sealed
 * against shrinking: a region that shrank under keymgrd would fault on the
 * next access and kill the daemon (SIGBUS). Any other file is refused.
 */
CK_RV
process_shm_attach(struct req *r)
{
	uint64_t size = get_u64(r);
	struct km_peer *p = r->peer;
	int fd = p->pending_fd;
	struct stat st;
	CK_RV rv = CKR_ARGUMENTS_BAD;
	p->pending_fd = -1;
	/* A transport that cannot pass descriptors (TLS) has no shared
	 * region: the module then sends large buffers in the frames. */
	if (!(p->caps & TRANSPORT_PASS_FDS))
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (fd < 0)
		return CKR_ARGUMENTS_BAD;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    size == 0 || size > SHM_MAX || (uint64_t)st.st_size != size) {
		log_warn("peer %s: shared region refused (not a memfd sealed against shrinking, "
			 "or not of the size announced)", p->who.name);
		goto out;
	}
	void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rv = CKR_DEVICE_MEMORY;
		goto out;
	}
	dispatch_shm_release(p);
	p->shm = m;
	p->shm_size = (size_t)size;
	rv = CKR_OK;
out:
	close(fd);
	return rv;
}

/* C_SessionCancel: ends the operations named by CKF_ flags. */
CK_RV
process_session_cancel(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t flags = get_u32(r);
	for (uint32_t k = OP_SIGN; k <= OP_MAX; k++)
		if (flags & proto_op_info(k)->flag)
			session_end_op(s, (enum proto_op)k);
	if (flags & CKF_FIND_OBJECTS)
		session_end_find(s);
	return CKR_OK;
}
