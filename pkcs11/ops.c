/*
 * ops.c - sign, verify, encrypt and decrypt in coyeu-pkcs11.so.
 *
 * Every step is one request (OP_INIT, OP_RUN, OP_UPDATE, OP_FINAL) naming
 * the operation kind. For the two-call length convention the request says
 * how much room the caller has and whether it only asks for the length;
 * keymgrd computes the step once and keeps the output until a call with
 * room collects it, so asking first never changes the result.
 */
#include "config.h"

#include <string.h>

#include "mech.h"
#include "module.h"

static CK_RV
op_init(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (m == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	if (!fits_u32(key))
		return CKR_KEY_HANDLE_INVALID;
	bool kept;
	if ((rv = defer_init(h, kind, m, key, &kept)) != CKR_OK || kept)
		return rv;
	if ((rv = rpc_begin_session(&r, MSG_OP_INIT, h)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, kind);
	if ((rv = mech_param_encode(m, r.req)) != CKR_OK) {
		rpc_end(&r);
		return rv;
	}
	wire_put_u32(r.req, (uint32_t)key);
	rv = rpc_call(&r);
	rpc_end(&r);
	if (rv == CKR_OK)
		defer_set_state(h, kind, DEFER_LIVE);
	return rv;
}

/* What a step returns for an init kept here (defer.c) that keymgrd
 * refused after all: the code itself when a step may return it. */
static CK_RV
init_failed_as_step(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_ERROR: case CKR_DEVICE_MEMORY: case CKR_DEVICE_REMOVED: case CKR_FUNCTION_CANCELED:
	case CKR_FUNCTION_FAILED: case CKR_GENERAL_ERROR: case CKR_HOST_MEMORY: case CKR_SESSION_CLOSED:
	case CKR_SESSION_HANDLE_INVALID: case CKR_USER_NOT_LOGGED_IN: case CKR_TOKEN_NOT_PRESENT:
		return rv;
	default:
		return CKR_FUNCTION_FAILED;
	}
}

/* After a step of kind (msg) ended with rv: whether keymgrd still has
 * the operation going (defer.c follows it). */
static void
note_step(CK_SESSION_HANDLE h, uint32_t msg, enum proto_op kind, CK_RV rv, bool length_only)
{
	/* A link that broke may have left it going or not: keymgrd's own
	 * init will say. */
	bool live = rv == CKR_DEVICE_ERROR ||
		    (msg == MSG_OP_UPDATE ? rv == CKR_OK : rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && length_only));
	defer_set_state(h, kind, live ? DEFER_LIVE : DEFER_NONE);
}

/* Sends an init kept here on its own (before a step that cannot carry
 * it: one through the shared region). */
static CK_RV
send_kept_init(CK_SESSION_HANDLE h, const struct wire_buf *init)
{
	struct rpc r;
	CK_RV rv = rpc_begin_on(&r, MSG_OP_INIT, h);
	if (rv != CKR_OK)
		return rv;
	wire_put_raw(r.req, init->data + 4, init->size - 4);
	rv = rpc_call(&r);
	rpc_end(&r);
	return rv;
}

/* CKR_ARGUMENTS_BAD for a call of operation kind, which it ends. */
static CK_RV
bad_args(CK_SESSION_HANDLE h, enum proto_op kind)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (fits_u32(h))
		rpc_session_cancel(h, proto_op_info(kind)->flag);
	defer_set_state(h, kind, DEFER_NONE);
	return CKR_ARGUMENTS_BAD;
}

/*
 * Inputs of at least SHM_MIN bytes go through the connection's shared
 * region (client_shm) rather than the socket: the input at offset 0, the
 * output after it, room for the input plus SHM_SLACK (a tag, a padding
 * block, what earlier parts left buffered) unless the caller offers less.
 */
#define SHM_MIN (64u * 1024)
#define SHM_SLACK 4096u

/* Sends the step's request (r started with rpc_begin); in the shared region
 * when *shm is true and one can be had, else inline (*shm becomes false). */
static CK_RV
op_send(struct rpc *r, uint32_t msg, CK_SESSION_HANDLE h, enum proto_op kind, const CK_BYTE *in,
	CK_ULONG inlen, const CK_BYTE *sig, CK_ULONG siglen, CK_ULONG cap, bool length_only, bool *shm,
	size_t room, size_t *out_off, const struct wire_buf *init, CK_RV *init_rv)
{
	uint32_t cap32 = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	if (*shm) {
		size_t off = (inlen + 63) / 64 * 64;
		int e = client_shm(r->c, off + room);
		if (e < 0) {
			r->broken = true;
			return CKR_DEVICE_ERROR;
		}
		*shm = e == 0;
		if (*shm) {
			r->req = client_begin(r->c, MSG_OP_SHM);
			if (inlen)
				memcpy(r->c->shm, in, inlen);
			wire_put_u32(r->req, (uint32_t)h);
			wire_put_u32(r->req, kind);
			wire_put_u32(r->req, msg);
			wire_put_u64(r->req, 0);
			wire_put_u64(r->req, inlen);
			wire_put_bytes(r->req, sig, siglen);
			wire_put_u64(r->req, off);
			wire_put_u32(r->req, (uint32_t)room);
			wire_put_u8(r->req, length_only);
			*out_off = off;
			CK_RV rv = rpc_call(r);
			wire_wipe(r->c->shm, inlen);
			return rv;
		}
		r->req = client_begin(r->c, msg);
	}
	wire_put_u32(r->req, (uint32_t)h);
	wire_put_u32(r->req, kind);
	wire_put_bytes(r->req, in, inlen);
	wire_put_bytes(r->req, sig, siglen);
	wire_put_u32(r->req, cap32);
	wire_put_u8(r->req, length_only);
	if (init != NULL)
		return rpc_call_after(r, init, init_rv);
	return rpc_call(r);
}

/*
 * One step: in/inlen the input, sig/siglen a signature to verify, out and
 * *outlen the caller's output buffer (outlen NULL when the step has no
 * output). first, when not NULL, is an OP_INIT request sent with the step
 * (message.c); else an init kept by defer.c goes with it.
 */
CK_RV
ops_step_after(CK_SESSION_HANDLE h, const struct wire_buf *first, uint32_t msg, enum proto_op kind,
	       const CK_BYTE *in, CK_ULONG inlen, const CK_BYTE *sig, CK_ULONG siglen, CK_BYTE *out,
	       CK_ULONG *outlen)
{
	struct rpc r;
	uint32_t need = 0, n = 0;
	const uint8_t *p = NULL;
	size_t out_off = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	/* Any error but BUFFER_TOO_SMALL ends the operation: so do these,
	 * found before anything is sent (more than a request may carry). */
	CK_RV early = CKR_OK;
	if ((in == NULL && inlen) || (sig == NULL && siglen))
		early = CKR_ARGUMENTS_BAD;
	else if (inlen > WIRE_MAX_FRAME / 2 || siglen > WIRE_MAX_FRAME / 2)
		early = proto_op_info(kind)->base == OP_DECRYPT ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
	if (early != CKR_OK) {
		rpc_session_cancel(h, proto_op_info(kind)->flag);
		defer_set_state(h, kind, DEFER_NONE);
		return early;
	}
	bool length_only = outlen != NULL && out == NULL;
	CK_ULONG cap = outlen ? *outlen : 0;
	bool shm = inlen >= SHM_MIN;
	/* An init kept here goes with this step, or just before it. */
	struct wire_buf init;
	CK_RV init_rv = CKR_OK;
	bool kept;
	if (first == NULL) {
		kept = defer_take(h, kind, &init);
	} else {
		wire_init(&init, WIRE_MAX_FRAME);
		if (wire_put_raw(&init, first->data, first->size) != 0) {
			wire_free(&init);
			return CKR_HOST_MEMORY;
		}
		kept = true;
	}
	if (kept && shm) {
		init_rv = send_kept_init(h, &init);
		wire_free(&init);
		kept = false;
		if (init_rv != CKR_OK) {
			defer_set_state(h, kind, DEFER_NONE);
			return init_failed_as_step(init_rv);
		}
	}
	if ((rv = rpc_begin_on(&r, msg, h)) != CKR_OK) {
		if (kept) {
			wire_free(&init);
			defer_set_state(h, kind, DEFER_NONE);
		}
		return rv;
	}
	size_t room = length_only || outlen == NULL ? 0 : cap < inlen + SHM_SLACK ? cap : inlen + SHM_SLACK;
	rv = op_send(&r, msg, h, kind, in, inlen, sig, siglen, cap, length_only, &shm, room, &out_off,
		     kept ? &init : NULL, &init_rv);
	if (kept) {
		wire_free(&init);
		if (init_rv != CKR_OK) {
			rv = r.broken ? CKR_DEVICE_ERROR : init_failed_as_step(init_rv);
			goto out;
		}
	}
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		wire_get_u32(r.rep, &need);
		wire_get_bytes(r.rep, &p, &n);
		if (rpc_check(&r) != CKR_OK)
			goto out;
	}
	if (shm && rv == CKR_BUFFER_TOO_SMALL && !length_only && outlen != NULL && need <= cap) {
		/* The output is larger than the region's room but the caller has
		 * enough: collect it (keymgrd kept it) through a larger region. */
		rv = op_send(&r, msg, h, kind, NULL, 0, NULL, 0, cap, false, &shm, need, &out_off, NULL, NULL);
		if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
			wire_get_u32(r.rep, &need);
			wire_get_bytes(r.rep, &p, &n);
			if (rpc_check(&r) != CKR_OK)
				goto out;
		}
	}
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		goto out;
	if (shm && n == 0 && rv == CKR_OK && !length_only && outlen != NULL) {
		/* The output is in the region. */
		n = need;
		p = n <= r.c->shm_size - out_off ? r.c->shm + out_off : NULL;
	}
	if (outlen == NULL) {
		/* A step without output (verify, sign update). */
	} else if (rv == CKR_OK && !length_only) {
		if (n != need || n > cap || (n && p == NULL)) {
			r.broken = true;
			rv = CKR_DEVICE_ERROR;
		} else {
			if (n)
				memcpy(out, p, n);
			*outlen = n;
		}
	} else {
		*outlen = need;
	}
	if (shm && p != NULL && n)
		wire_wipe((uint8_t *)p, n);
out:
	if (r.broken)
		rv = CKR_DEVICE_ERROR;
	rpc_end(&r);
	note_step(h, msg, kind, rv, length_only);
	return rv;
}

static CK_RV
op_step(CK_SESSION_HANDLE h, uint32_t msg, enum proto_op kind, const CK_BYTE *in, CK_ULONG inlen,
	const CK_BYTE *sig, CK_ULONG siglen, CK_BYTE *out, CK_ULONG *outlen)
{
	return ops_step_after(h, NULL, msg, kind, in, inlen, sig, siglen, out, outlen);
}

/* ---- sign ---- */

CK_RV
C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_SIGN, pMechanism, hKey);
}

CK_RV
C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
       CK_ULONG_PTR pulSignatureLen)
{
	if (pulSignatureLen == NULL)
		return bad_args(hSession, OP_SIGN);
	return op_step(hSession, MSG_OP_RUN, OP_SIGN, pData, ulDataLen, NULL, 0, pSignature, pulSignatureLen);
}

CK_RV
C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_step(hSession, MSG_OP_UPDATE, OP_SIGN, pPart, ulPartLen, NULL, 0, NULL, NULL);
}

CK_RV
C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (pulSignatureLen == NULL)
		return bad_args(hSession, OP_SIGN);
	return op_step(hSession, MSG_OP_FINAL, OP_SIGN, NULL, 0, NULL, 0, pSignature, pulSignatureLen);
}

/* ---- verify ---- */

CK_RV
C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_VERIFY, pMechanism, hKey);
}

CK_RV
C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
	 CK_ULONG ulSignatureLen)
{
	return op_step(hSession, MSG_OP_RUN, OP_VERIFY, pData, ulDataLen, pSignature, ulSignatureLen,
		       NULL, NULL);
}

CK_RV
C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_step(hSession, MSG_OP_UPDATE, OP_VERIFY, pPart, ulPartLen, NULL, 0, NULL, NULL);
}

CK_RV
C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return op_step(hSession, MSG_OP_FINAL, OP_VERIFY, NULL, 0, pSignature, ulSignatureLen, NULL, NULL);
}

/* ---- encrypt and decrypt ---- */

CK_RV
C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_ENCRYPT, pMechanism, hKey);
}

CK_RV
C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,
	  CK_ULONG_PTR pulEncryptedDataLen)
{
	if (pulEncryptedDataLen == NULL)
		return bad_args(hSession, OP_ENCRYPT);
	return op_step(hSession, MSG_OP_RUN, OP_ENCRYPT, pData, ulDataLen, NULL, 0, pEncryptedData,
		       pulEncryptedDataLen);
}

CK_RV
C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
		CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	if (pulEncryptedPartLen == NULL)
		return bad_args(hSession, OP_ENCRYPT);
	return op_step(hSession, MSG_OP_UPDATE, OP_ENCRYPT, pPart, ulPartLen, NULL, 0, pEncryptedPart,
		       pulEncryptedPartLen);
}

CK_RV
C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen)
{
	if (pulLastEncryptedPartLen == NULL)
		return bad_args(hSession, OP_ENCRYPT);
	return op_step(hSession, MSG_OP_FINAL, OP_ENCRYPT, NULL, 0, NULL, 0, pLastEncryptedPart,
		       pulLastEncryptedPartLen);
}

CK_RV
C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_DECRYPT, pMechanism, hKey);
}

CK_RV
C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
	  CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	if (pulDataLen == NULL)
		return bad_args(hSession, OP_DECRYPT);
	return op_step(hSession, MSG_OP_RUN, OP_DECRYPT, pEncryptedData, ulEncryptedDataLen, NULL, 0,
		       pData, pulDataLen);
}

CK_RV
C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
		CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	if (pulPartLen == NULL)
		return bad_args(hSession, OP_DECRYPT);
	return op_step(hSession, MSG_OP_UPDATE, OP_DECRYPT, pEncryptedPart, ulEncryptedPartLen, NULL, 0,
		       pPart, pulPartLen);
}

CK_RV
C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
	if (pulLastPartLen == NULL)
		return bad_args(hSession, OP_DECRYPT);
	return op_step(hSession, MSG_OP_FINAL, OP_DECRYPT, NULL, 0, NULL, 0, pLastPart, pulLastPartLen);
}


/* ---- message recovery (raw RSA and PKCS #1 v1.5) ---- */

CK_RV
C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_SIGN_RECOVER, pMechanism, hKey);
}

CK_RV
C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
	      CK_ULONG_PTR pulSignatureLen)
{
	if (pulSignatureLen == NULL)
		return bad_args(hSession, OP_SIGN_RECOVER);
	return op_step(hSession, MSG_OP_RUN, OP_SIGN_RECOVER, pData, ulDataLen, NULL, 0, pSignature,
		       pulSignatureLen);
}

CK_RV
C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(hSession, OP_VERIFY_RECOVER, pMechanism, hKey);
}

CK_RV
C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
		CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	if (pulDataLen == NULL)
		return bad_args(hSession, OP_VERIFY_RECOVER);
	return op_step(hSession, MSG_OP_RUN, OP_VERIFY_RECOVER, pSignature, ulSignatureLen, NULL, 0, pData,
		       pulDataLen);
}

/* ---- dual-function operations (2.40 section 5.12) ----
 *
 * Each is the two operations of the session one after the other, the
 * cipher first: a length query or CKR_BUFFER_TOO_SMALL then leaves both as
 * they were. A digest (computed here) is checked before anything is sent;
 * when the sign or verify part fails after the cipher step, the cipher
 * operation is ended too, so neither goes on with half a part.
 */

CK_RV
C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
		      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK || (rv = digest_can_add(hSession)) != CKR_OK)
		return rv;
	rv = C_EncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
	if (rv == CKR_OK && pEncryptedPart != NULL)
		rv = digest_add(hSession, pPart, ulPartLen);
	return rv;
}

CK_RV
C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
		      CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK || (rv = digest_can_add(hSession)) != CKR_OK)
		return rv;
	rv = C_DecryptUpdate(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
	if (rv == CKR_OK && pPart != NULL)
		rv = digest_add(hSession, pPart, *pulPartLen);
	return rv;
}

/* The sign or verify part (kind) of a dual function, over data. */
static CK_RV
second_part(CK_SESSION_HANDLE h, enum proto_op kind, enum proto_op cipher, const CK_BYTE *data, CK_ULONG len)
{
	CK_RV rv = op_step(h, MSG_OP_UPDATE, kind, data, len, NULL, 0, NULL, NULL);
	if (rv != CKR_OK)
		rpc_session_cancel(h, proto_op_info(cipher)->flag);
	return rv;
}

CK_RV
C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
		    CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	CK_RV rv = C_EncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
	if (rv == CKR_OK && pEncryptedPart != NULL)
		rv = second_part(hSession, OP_SIGN, OP_ENCRYPT, pPart, ulPartLen);
	return rv;
}

CK_RV
C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
		      CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	CK_RV rv = C_DecryptUpdate(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
	if (rv == CKR_OK && pPart != NULL)
		rv = second_part(hSession, OP_VERIFY, OP_DECRYPT, pPart, *pulPartLen);
	return rv;
}
