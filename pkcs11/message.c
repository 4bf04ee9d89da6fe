/*
 * message.c - PKCS#11 3.0 message-based operations in coyeu-pkcs11.so:
 * encryption and decryption with AES-GCM, signing and verifying with any
 * signature mechanism.
 *
 * C_MessageEncryptInit/C_MessageDecryptInit name a key and CKM_AES_GCM
 * (no parameter); each C_EncryptMessage/C_DecryptMessage is then one
 * message with its own CK_GCM_MESSAGE_PARAMS: its IV (generated here when
 * ivGenerator asks), its tag, and its associated data. C_MessageSignInit/
 * C_MessageVerifyInit name a key and a signature mechanism with its
 * parameter (PSS's, EdDSA's); their messages take none.
 *
 * keymgrd checks the key at the init (an OP_INIT of the message kind,
 * cancelled at once: one round trip, none for signing when defer.c's
 * summary of the key predicts the yes), and computes each message as an
 * init and a one-shot step of that kind sent together (one round trip),
 * in a slot of its own so a C_EncryptInit (C_SignInit) operation of the
 * session goes on beside it.
 *
 * What is kept here per session and kind: the key, the counter of
 * CKG_GENERATE_COUNTER, a signing init's request (each message repeats
 * it), and a message in parts under way. GCM lengths are known (the
 * ciphertext as long as the plaintext, the tag apart), so the two-call
 * convention of a whole message is answered without asking keymgrd; a
 * signature's is keymgrd's, which keeps a signature computed for a call
 * that had no room until a call with room collects it.
 */
#include "config.h"

#include <gcrypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mech.h"
#include "module.h"

/* PKCS#11 3.0 bounds a GCM IV at 256 bytes. */
#define IV_MAX 256

struct message_op {
	CK_SESSION_HANDLE session;
	enum proto_op kind; /* OP_MESSAGE_ENCRYPT ... OP_MESSAGE_VERIFY */
	CK_OBJECT_HANDLE key;
	uint64_t counter; /* the next CKG_GENERATE_COUNTER value */
	struct wire_buf tmpl; /* signing: the OP_INIT each message sends */
	/* Signing: the step (MSG_OP_RUN or MSG_OP_FINAL) whose signature
	 * keymgrd keeps for a call with room; 0 when none. */
	uint32_t pending;
	/* A message in parts (Begin, then Next until CKF_END_OF_MESSAGE). */
	bool in_message;
	bool init_kept;         /* its OP_INIT (init) not yet sent: it goes with the first part */
	struct wire_buf init;
	CK_ULONG tag_bits;
	uint64_t in_total, out_total; /* bytes given and returned so far */
	struct message_op *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct message_op *ops;

/* The operation of (h, kind), or NULL. Under lock. */
static struct message_op *
find(CK_SESSION_HANDLE h, enum proto_op kind)
{
	for (struct message_op *o = ops; o != NULL; o = o->next)
		if (o->session == h && o->kind == kind)
			return o;
	return NULL;
}

/* Ends the operations of h (every session: h 0) whose flag is in flags. */
static void
forget(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	pthread_mutex_lock(&lock);
	for (struct message_op **pp = &ops; *pp != NULL;) {
		struct message_op *o = *pp;
		if ((h == 0 || o->session == h) && (flags & proto_op_info(o->kind)->flag)) {
			*pp = o->next;
			wire_free(&o->init);
			wire_free(&o->tmpl);
			free(o);
		} else {
			pp = &o->next;
		}
	}
	pthread_mutex_unlock(&lock);
}

void
message_forget(CK_SESSION_HANDLE h)
{
	forget(h, CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY);
}

void
message_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	if (h != 0)
		forget(h, flags);
}

void
message_child_reset(void)
{
	pthread_mutex_init(&lock, NULL);
	ops = NULL; /* the parent's entries stay the parent's */
}

/* Why (h, kind) has no operation: h is no session (which comes first), or none. */
static CK_RV
not_initialized(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO info;
	CK_RV rv = rpc_session_info(h, &info);
	return rv != CKR_OK ? rv : CKR_OPERATION_NOT_INITIALIZED;
}

/* What is kept of the operation (h, kind), copied into *now (its
 * requests left out): CKR_OK, or why there is none. */
static CK_RV
state_of(CK_SESSION_HANDLE h, enum proto_op kind, struct message_op *now)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o != NULL) {
		*now = *o;
		memset(&now->init, 0, sizeof(now->init));
		memset(&now->tmpl, 0, sizeof(now->tmpl));
	}
	pthread_mutex_unlock(&lock);
	return o != NULL ? CKR_OK : not_initialized(h);
}

/* The OP_INIT request of kind on session h: mechanism m, key. */
static CK_RV
init_request(struct wire_buf *b, CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m,
	     CK_OBJECT_HANDLE key)
{
	wire_init(b, WIRE_MAX_FRAME);
	proto_begin_request(b, MSG_OP_INIT);
	wire_put_u32(b, (uint32_t)h);
	wire_put_u32(b, kind);
	CK_RV rv = mech_param_encode(m, b);
	if (rv == CKR_OK && (wire_put_u32(b, (uint32_t)key) != 0 || wire_error(b) != 0))
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK)
		wire_free(b);
	return rv;
}

/* keymgrd's verdict on init (of kind, on session h): sent with a
 * SESSION_CANCEL that ends it at once, in one round trip. */
static CK_RV
check_init(CK_SESSION_HANDLE h, enum proto_op kind, const struct wire_buf *init)
{
	struct rpc r;
	CK_RV rv = rpc_begin_on(&r, MSG_SESSION_CANCEL, h);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)h);
	wire_put_u32(r.req, (uint32_t)proto_op_info(kind)->flag);
	CK_RV init_rv = CKR_OK;
	rv = rpc_call_after(&r, init, &init_rv);
	if (r.broken)
		rv = CKR_DEVICE_ERROR;
	else if (init_rv != CKR_OK)
		rv = init_rv;
	rpc_end(&r);
	return rv;
}

/*
 * Opens the operation of kind with mechanism m (whose row must carry the
 * kind's flag) and key. keymgrd checks them with probe's init, which is
 * kept as the template of every message when keep is set (m's own
 * parameter then); else m may carry no parameter, each message having
 * its own.
 */
static CK_RV
message_init(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key,
	     const CK_MECHANISM *probe, bool keep)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (m == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(h))
		return CKR_SESSION_HANDLE_INVALID;
	if (!fits_u32(key))
		return CKR_KEY_HANDLE_INVALID;
	pthread_mutex_lock(&lock);
	bool active = find(h, kind) != NULL;
	pthread_mutex_unlock(&lock);
	if (active)
		return CKR_OPERATION_ACTIVE;
	const struct mech_row *row = mech_find(m->mechanism);
	if (row == NULL || !(row->flags & proto_op_info(kind)->flag)) {
		CK_SESSION_INFO info; /* a bad session comes first */
		rv = rpc_session_info(h, &info);
		return rv != CKR_OK ? rv : CKR_MECHANISM_INVALID;
	}
	if (!keep && (m->pParameter != NULL || m->ulParameterLen != 0))
		return CKR_MECHANISM_PARAM_INVALID;
	struct wire_buf init;
	if ((rv = init_request(&init, h, kind, probe, key)) != CKR_OK)
		return rv;
	/* When what is known of the key predicts keymgrd's yes (defer.c), the
	 * first message's init is the check (a refusal then comes from that
	 * message, as for a kept C_SignInit). */
	if (!(keep && defer_predicts(h, kind, probe, key)) && (rv = check_init(h, kind, &init)) != CKR_OK) {
		wire_free(&init);
		return rv;
	}
	struct message_op *o = calloc(1, sizeof(*o));
	if (o == NULL) {
		wire_free(&init);
		return CKR_HOST_MEMORY;
	}
	*o = (struct message_op){ .session = h, .kind = kind, .key = key };
	if (keep)
		o->tmpl = init;
	else
		wire_free(&init);
	pthread_mutex_lock(&lock);
	if (find(h, kind) != NULL) { /* another thread's init came first */
		wire_free(&o->tmpl);
		free(o);
		rv = CKR_OPERATION_ACTIVE;
	} else {
		o->next = ops;
		ops = o;
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

/* C_MessageEncryptInit/C_MessageDecryptInit: keymgrd checks the key with
 * a GCM init of a message's shape, then drops it. */
static CK_RV
gcm_open(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	CK_BYTE iv[12] = { 0 };
	CK_GCM_PARAMS g = { .iv_ptr = iv, .iv_len = sizeof(iv), .iv_bits = 96, .tag_bits = 128 };
	CK_MECHANISM probe = { CKM_AES_GCM, &g, sizeof(g) };
	return message_init(h, kind, m, key, &probe, false);
}

static CK_RV
message_final(CK_SESSION_HANDLE h, enum proto_op kind)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	/* A message in parts that keymgrd has going, or a signature it keeps. */
	if ((now.in_message && !now.init_kept) || now.pending != 0)
		rpc_session_cancel(h, proto_op_info(kind)->flag);
	forget(h, proto_op_info(kind)->flag);
	return CKR_OK;
}

/*
 * The IV of one message into iv (the caller's, copied): its first
 * ulIvFixedBits kept, the rest a counter or random as ivGenerator says.
 * The counter is taken under lock, so no two messages of the operation
 * share an IV; CKR_MECHANISM_PARAM_INVALID when it has run out (or no bit
 * is left to generate).
 */
static CK_RV
make_iv(CK_SESSION_HANDLE h, const CK_GCM_MESSAGE_PARAMS *p, CK_BYTE *iv)
{
	size_t n = p->ulIvLen, bits = n * 8;
	memcpy(iv, p->pIv, n);
	if (p->ivGenerator == CKG_NO_GENERATE)
		return CKR_OK;
	if (p->ulIvFixedBits >= bits)
		return CKR_MECHANISM_PARAM_INVALID;
	size_t free_bits = bits - p->ulIvFixedBits;
	/* CKG_GENERATE: random when that leaves at least 64 bits to chance,
	 * a counter (unique within the operation) when fewer. */
	bool counter = p->ivGenerator == CKG_GENERATE_COUNTER ||
		       (p->ivGenerator == CKG_GENERATE && free_bits < 64);
	CK_BYTE gen[IV_MAX];
	memset(gen, 0, n);
	if (counter) {
		pthread_mutex_lock(&lock);
		struct message_op *o = find(h, OP_MESSAGE_ENCRYPT);
		uint64_t c = o != NULL ? o->counter : 0;
		bool spent = o == NULL || (free_bits < 64 && c >> free_bits != 0) || c == UINT64_MAX;
		if (!spent)
			o->counter = c + 1;
		pthread_mutex_unlock(&lock);
		if (spent)
			return CKR_MECHANISM_PARAM_INVALID;
		for (size_t i = 0; i < 8 && i < n; i++)
			gen[n - 1 - i] = (CK_BYTE)(c >> (8 * i));
	} else {
		gcry_randomize(gen, n, GCRY_STRONG_RANDOM);
	}
	/* Bit b (from the most significant of iv[0]) is fixed below ulIvFixedBits. */
	for (size_t b = p->ulIvFixedBits; b < bits; b++) {
		CK_BYTE mask = (CK_BYTE)(0x80u >> (b % 8));
		iv[b / 8] = (CK_BYTE)((iv[b / 8] & ~mask) | (gen[b / 8] & mask));
	}
	return CKR_OK;
}

/* The OP_INIT of one message of kind (its IV into iv: generated when
 * encrypting and asked, else the parameter's). */
static CK_RV
gcm_init(CK_SESSION_HANDLE h, enum proto_op kind, CK_OBJECT_HANDLE key, const CK_GCM_MESSAGE_PARAMS *p,
	 const CK_BYTE *aad, CK_ULONG aadlen, CK_BYTE *iv, struct wire_buf *init)
{
	if (kind == OP_MESSAGE_ENCRYPT) {
		CK_RV rv = make_iv(h, p, iv);
		if (rv != CKR_OK)
			return rv;
	} else {
		memcpy(iv, p->pIv, p->ulIvLen);
	}
	CK_GCM_PARAMS g = { .iv_ptr = iv, .iv_len = p->ulIvLen, .iv_bits = p->ulIvLen * 8,
			    .aad_ptr = (CK_BYTE_PTR)aad, .aad_len = aadlen, .tag_bits = p->ulTagBits };
	CK_MECHANISM m = { CKM_AES_GCM, &g, sizeof(g) };
	return init_request(init, h, kind, &m, key);
}

/* The per-message parameter: CKR_ARGUMENTS_BAD for a missing one, else
 * CKR_MECHANISM_PARAM_INVALID for one that is not a GCM message's. */
static CK_RV
check_param(enum proto_op kind, const void *param, CK_ULONG len)
{
	const CK_GCM_MESSAGE_PARAMS *p = param;
	if (p == NULL)
		return CKR_ARGUMENTS_BAD;
	if (len != sizeof(*p) || p->pIv == NULL || p->ulIvLen == 0 || p->ulIvLen > IV_MAX || p->pTag == NULL ||
	    p->ulTagBits == 0 || p->ulTagBits % 8 != 0 || p->ulTagBits > 128)
		return CKR_MECHANISM_PARAM_INVALID;
	if (kind == OP_MESSAGE_ENCRYPT && p->ivGenerator != CKG_NO_GENERATE && p->ivGenerator != CKG_GENERATE &&
	    p->ivGenerator != CKG_GENERATE_COUNTER && p->ivGenerator != CKG_GENERATE_RANDOM)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

/*
 * One message of kind: in (plaintext or ciphertext without its tag) into
 * out, whose length is always inlen. Encrypting fills the parameter's
 * tag, and its IV when one was generated; decrypting reads the tag there.
 */
static CK_RV
one_message(CK_SESSION_HANDLE h, enum proto_op kind, void *param, CK_ULONG plen, const CK_BYTE *aad,
	    CK_ULONG aadlen, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (now.in_message)
		return CKR_OPERATION_ACTIVE;
	CK_OBJECT_HANDLE key = now.key;
	if (outlen == NULL || (in == NULL && inlen) || (aad == NULL && aadlen))
		return CKR_ARGUMENTS_BAD;
	if ((rv = check_param(kind, param, plen)) != CKR_OK)
		return rv;
	CK_GCM_MESSAGE_PARAMS *p = param;
	size_t tag = p->ulTagBits / 8;
	if (inlen > WIRE_MAX_FRAME / 2 || aadlen > WIRE_MAX_FRAME / 4)
		return kind == OP_MESSAGE_DECRYPT ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
	if (out == NULL) {
		*outlen = inlen;
		return CKR_OK;
	}
	if (*outlen < inlen) {
		*outlen = inlen;
		return CKR_BUFFER_TOO_SMALL;
	}
	CK_BYTE iv[IV_MAX];
	struct wire_buf init;
	if ((rv = gcm_init(h, kind, key, p, aad, aadlen, iv, &init)) != CKR_OK)
		return rv;
	/* keymgrd's GCM has the tag after the ciphertext, in and out. */
	CK_BYTE *buf = malloc(inlen + tag);
	if (buf == NULL) {
		wire_free(&init);
		return CKR_HOST_MEMORY;
	}
	CK_ULONG n = inlen + tag;
	if (kind == OP_MESSAGE_ENCRYPT) {
		rv = ops_step_after(h, &init, MSG_OP_RUN, kind, in, inlen, NULL, 0, buf, &n);
		if (rv == CKR_OK && n != inlen + tag)
			rv = CKR_DEVICE_ERROR;
		if (rv == CKR_OK) {
			memcpy(out, buf, inlen);
			memcpy(p->pTag, buf + inlen, tag);
			memcpy(p->pIv, iv, p->ulIvLen);
		}
	} else {
		if (inlen)
			memcpy(buf, in, inlen);
		memcpy(buf + inlen, p->pTag, tag);
		n = *outlen;
		rv = ops_step_after(h, &init, MSG_OP_RUN, kind, buf, inlen + tag, NULL, 0, out, &n);
		if (rv == CKR_OK && n != inlen) {
			wire_wipe(out, n);
			rv = CKR_DEVICE_ERROR;
		}
	}
	free(buf);
	wire_free(&init);
	if (rv == CKR_OK)
		*outlen = inlen;
	if (rv == CKR_BUFFER_TOO_SMALL) {
		/* Cannot be (the room was given): leave no step behind. */
		rpc_session_cancel(h, proto_op_info(kind)->flag);
		rv = CKR_DEVICE_ERROR;
	}
	return rv;
}

CK_RV
C_MessageEncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return gcm_open(hSession, OP_MESSAGE_ENCRYPT, pMechanism, hKey);
}

CK_RV
C_EncryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		 CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext,
		 CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen)
{
	return one_message(hSession, OP_MESSAGE_ENCRYPT, pParameter, ulParameterLen, pAssociatedData,
			   ulAssociatedDataLen, pPlaintext, ulPlaintextLen, pCiphertext, pulCiphertextLen);
}

CK_RV
C_MessageEncryptFinal(CK_SESSION_HANDLE hSession)
{
	return message_final(hSession, OP_MESSAGE_ENCRYPT);
}

CK_RV
C_MessageDecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return gcm_open(hSession, OP_MESSAGE_DECRYPT, pMechanism, hKey);
}

CK_RV
C_DecryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		 CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext,
		 CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen)
{
	return one_message(hSession, OP_MESSAGE_DECRYPT, pParameter, ulParameterLen, pAssociatedData,
			   ulAssociatedDataLen, pCiphertext, ulCiphertextLen, pPlaintext, pulPlaintextLen);
}

CK_RV
C_MessageDecryptFinal(CK_SESSION_HANDLE hSession)
{
	return message_final(hSession, OP_MESSAGE_DECRYPT);
}

/* ---- messages in parts ---- */

/*
 * Begin keeps the message's OP_INIT here (its IV generated now and given
 * back, as for a one-shot message); the first Next sends it with its part.
 * A part goes to keymgrd as an update of the message kind, under keymgrd's
 * own length convention. The last part (CKF_END_OF_MESSAGE) is an update
 * and a final: its length (the whole message's output, less what earlier
 * parts returned) is known here, so the two-call convention is answered
 * without asking. Any error but CKR_BUFFER_TOO_SMALL ends the message; the
 * operation goes on for the next one.
 */
static CK_RV
message_begin(CK_SESSION_HANDLE h, enum proto_op kind, void *param, CK_ULONG plen, const CK_BYTE *aad,
	      CK_ULONG aadlen)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (now.in_message)
		return CKR_OPERATION_ACTIVE;
	CK_OBJECT_HANDLE key = now.key;
	if (aad == NULL && aadlen)
		return CKR_ARGUMENTS_BAD;
	if ((rv = check_param(kind, param, plen)) != CKR_OK)
		return rv;
	if (aadlen > WIRE_MAX_FRAME / 4)
		return CKR_DATA_LEN_RANGE;
	CK_GCM_MESSAGE_PARAMS *p = param;
	CK_BYTE iv[IV_MAX];
	struct wire_buf init;
	if ((rv = gcm_init(h, kind, key, p, aad, aadlen, iv, &init)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o == NULL || o->in_message) {
		rv = o == NULL ? CKR_OPERATION_NOT_INITIALIZED : CKR_OPERATION_ACTIVE;
		wire_free(&init);
	} else {
		o->in_message = o->init_kept = true;
		o->init = init;
		o->tag_bits = p->ulTagBits;
		o->in_total = o->out_total = 0;
	}
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK && kind == OP_MESSAGE_ENCRYPT)
		memcpy(p->pIv, iv, p->ulIvLen);
	return rv;
}

/* The message in parts of (h, kind) ends (here, and in keymgrd when sent). */
static void
end_message(CK_SESSION_HANDLE h, enum proto_op kind, bool sent)
{
	if (sent)
		rpc_session_cancel(h, proto_op_info(kind)->flag);
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o != NULL) {
		o->in_message = o->init_kept = false;
		o->pending = 0;
		wire_free(&o->init);
	}
	pthread_mutex_unlock(&lock);
}

/* The init of the message in parts of (h, kind) when it has not been
 * sent yet, into *init (the caller frees it): whether there was one. */
static bool
take_init(CK_SESSION_HANDLE h, enum proto_op kind, struct wire_buf *init)
{
	bool kept = false;
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o != NULL && o->in_message && o->init_kept) {
		*init = o->init;
		memset(&o->init, 0, sizeof(o->init));
		o->init_kept = false;
		kept = true;
	}
	pthread_mutex_unlock(&lock);
	return kept;
}

static CK_RV
message_next(CK_SESSION_HANDLE h, enum proto_op kind, void *param, CK_ULONG plen, const CK_BYTE *in,
	     CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen, CK_FLAGS flags)
{
	struct message_op now, *o;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (!now.in_message)
		return CKR_OPERATION_NOT_INITIALIZED;
	uint64_t in_total = now.in_total, out_total = now.out_total;
	CK_ULONG tag_bits = now.tag_bits;
	if (outlen == NULL || (in == NULL && inlen) || (flags & ~CKF_END_OF_MESSAGE))
		rv = CKR_ARGUMENTS_BAD;
	else if ((rv = check_param(kind, param, plen)) == CKR_OK &&
		 ((CK_GCM_MESSAGE_PARAMS *)param)->ulTagBits != tag_bits)
		rv = CKR_MECHANISM_PARAM_INVALID;
	if (rv != CKR_OK) {
		end_message(h, kind, !now.init_kept);
		return rv;
	}
	CK_GCM_MESSAGE_PARAMS *p = param;
	if (inlen > WIRE_MAX_FRAME / 2 || in_total + inlen > WIRE_MAX_FRAME / 2)
		return kind == OP_MESSAGE_DECRYPT ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
	bool last = flags & CKF_END_OF_MESSAGE;
	size_t tag = tag_bits / 8;
	CK_ULONG need = (CK_ULONG)(in_total + inlen - out_total);
	if (last && out == NULL) {
		*outlen = need;
		return CKR_OK;
	}
	if (last && *outlen < need) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	/* The kept init goes with this part. */
	struct wire_buf init = { 0 };
	bool kept = take_init(h, kind, &init);
	CK_BYTE *buf = NULL, *fin = NULL;
	const CK_BYTE *part = in;
	CK_ULONG partlen = inlen, n = *outlen, n2 = 0;
	if (last && kind == OP_MESSAGE_DECRYPT) {
		/* keymgrd's GCM reads the tag after the ciphertext. */
		if ((buf = malloc(inlen + tag)) == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		if (inlen)
			memcpy(buf, in, inlen);
		memcpy(buf + inlen, p->pTag, tag);
		part = buf;
		partlen = inlen + tag;
	}
	rv = ops_step_after(h, kept ? &init : NULL, MSG_OP_UPDATE, kind, part, partlen, NULL, 0, out, &n);
	if (rv != CKR_OK || (!last && out == NULL))
		goto out;
	if (!last) {
		pthread_mutex_lock(&lock);
		if ((o = find(h, kind)) != NULL) {
			o->in_total += inlen;
			o->out_total += n;
		}
		pthread_mutex_unlock(&lock);
		*outlen = n;
		goto out;
	}
	/* The final: what is left of the output, and the tag when encrypting. */
	CK_ULONG room = need - n + (kind == OP_MESSAGE_ENCRYPT ? tag : 0);
	n2 = room;
	if (n > need || (fin = malloc(room ? room : 1)) == NULL) {
		rv = n > need ? CKR_DEVICE_ERROR : CKR_HOST_MEMORY;
		goto out;
	}
	rv = ops_step_after(h, NULL, MSG_OP_FINAL, kind, NULL, 0, NULL, 0, fin, &n2);
	if (rv == CKR_OK && n2 != room)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		size_t body = kind == OP_MESSAGE_ENCRYPT ? n2 - tag : n2;
		if (body)
			memcpy(out + n, fin, body);
		if (kind == OP_MESSAGE_ENCRYPT)
			memcpy(p->pTag, fin + body, tag);
		*outlen = need;
	}
	wire_wipe(fin, room);
out:
	free(buf);
	free(fin);
	wire_free(&init);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		end_message(h, kind, true);
	else if (rv == CKR_OK && last)
		end_message(h, kind, false);
	return rv;
}

CK_RV
C_EncryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		      CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)
{
	return message_begin(hSession, OP_MESSAGE_ENCRYPT, pParameter, ulParameterLen, pAssociatedData,
			     ulAssociatedDataLen);
}

CK_RV
C_EncryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		     CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart,
		     CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags)
{
	return message_next(hSession, OP_MESSAGE_ENCRYPT, pParameter, ulParameterLen, pPlaintextPart,
			    ulPlaintextPartLen, pCiphertextPart, pulCiphertextPartLen, flags);
}

CK_RV
C_DecryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		      CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)
{
	return message_begin(hSession, OP_MESSAGE_DECRYPT, pParameter, ulParameterLen, pAssociatedData,
			     ulAssociatedDataLen);
}

CK_RV
C_DecryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		     CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart,
		     CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags)
{
	return message_next(hSession, OP_MESSAGE_DECRYPT, pParameter, ulParameterLen, pCiphertextPart,
			    ulCiphertextPartLen, pPlaintextPart, pulPlaintextPartLen, flags);
}

/* ---- signing and verifying messages ---- */

/*
 * Each message sends the init kept from C_MessageSignInit (a copy of its
 * request) with its step: a whole message is one round trip, as is a
 * message in parts of one part; a longer one sends the init with its
 * first part and ends with a final. When a call that has no room (or too
 * little) leaves a signature with keymgrd, the step is noted as pending:
 * the next call collects it without sending the data again, as C_Sign's
 * two calls do, and anything else meanwhile is CKR_OPERATION_ACTIVE.
 */

/* A message's parameter: signature mechanisms define none. */
static CK_RV
sign_param(const void *param, CK_ULONG len)
{
	if (param == NULL && len == 0)
		return CKR_OK;
	return param == NULL ? CKR_ARGUMENTS_BAD : CKR_MECHANISM_PARAM_INVALID;
}

/* A copy of the init request kept for (h, kind). */
static CK_RV
copy_template(CK_SESSION_HANDLE h, enum proto_op kind, struct wire_buf *b)
{
	CK_RV rv = CKR_OPERATION_NOT_INITIALIZED;
	wire_init(b, WIRE_MAX_FRAME);
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o != NULL)
		rv = wire_put_raw(b, o->tmpl.data, o->tmpl.size) == 0 ? CKR_OK : CKR_HOST_MEMORY;
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK)
		wire_free(b);
	return rv;
}

static void
set_pending(CK_SESSION_HANDLE h, enum proto_op kind, uint32_t step)
{
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o != NULL)
		o->pending = step;
	pthread_mutex_unlock(&lock);
}

/*
 * One step (msg) of a signing or verifying message: init, when not NULL,
 * sent with it. Signing writes the signature to sig under the two-call
 * convention; verifying checks sig/siglen. Notes a signature left with
 * keymgrd as pending.
 */
static CK_RV
sign_step(CK_SESSION_HANDLE h, enum proto_op kind, uint32_t msg, const struct wire_buf *init, const CK_BYTE *in,
	  CK_ULONG inlen, CK_BYTE *sig, CK_ULONG siglen, CK_ULONG *psiglen)
{
	CK_RV rv;
	if (kind == OP_MESSAGE_SIGN)
		rv = ops_step_after(h, init, msg, kind, in, inlen, NULL, 0, msg == MSG_OP_UPDATE ? NULL : sig,
				    msg == MSG_OP_UPDATE ? NULL : psiglen);
	else
		rv = ops_step_after(h, init, msg, kind, in, inlen, sig, siglen, NULL, NULL);
	bool kept = kind == OP_MESSAGE_SIGN && msg != MSG_OP_UPDATE &&
		    (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && sig == NULL));
	set_pending(h, kind, kept ? msg : 0);
	return rv;
}

/* The checks every signing or verifying call makes of its arguments:
 * output for a signature (psiglen), a signature to verify (sig), the data. */
static CK_RV
sign_args(enum proto_op kind, const void *param, CK_ULONG plen, const CK_BYTE *in, CK_ULONG inlen,
	  const CK_BYTE *sig, CK_ULONG *psiglen, bool last)
{
	if ((in == NULL && inlen) || (last && kind == OP_MESSAGE_SIGN && psiglen == NULL) ||
	    (last && kind == OP_MESSAGE_VERIFY && sig == NULL))
		return CKR_ARGUMENTS_BAD;
	return sign_param(param, plen);
}

static CK_RV
sign_message(CK_SESSION_HANDLE h, enum proto_op kind, const void *param, CK_ULONG plen, const CK_BYTE *in,
	     CK_ULONG inlen, CK_BYTE *sig, CK_ULONG siglen, CK_ULONG *psiglen)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (now.in_message || (now.pending != 0 && now.pending != MSG_OP_RUN))
		return CKR_OPERATION_ACTIVE;
	if ((rv = sign_args(kind, param, plen, in, inlen, sig, psiglen, true)) != CKR_OK)
		return rv;
	if (now.pending != 0) /* the signature keymgrd keeps for this message */
		return sign_step(h, kind, MSG_OP_RUN, NULL, NULL, 0, sig, siglen, psiglen);
	struct wire_buf init;
	if ((rv = copy_template(h, kind, &init)) != CKR_OK)
		return rv;
	rv = sign_step(h, kind, MSG_OP_RUN, &init, in, inlen, sig, siglen, psiglen);
	wire_free(&init);
	return rv;
}

static CK_RV
sign_begin(CK_SESSION_HANDLE h, enum proto_op kind, const void *param, CK_ULONG plen)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (now.in_message || now.pending != 0)
		return CKR_OPERATION_ACTIVE;
	if ((rv = sign_param(param, plen)) != CKR_OK)
		return rv;
	struct wire_buf init;
	if ((rv = copy_template(h, kind, &init)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	struct message_op *o = find(h, kind);
	if (o == NULL || o->in_message || o->pending != 0) {
		rv = o == NULL ? CKR_OPERATION_NOT_INITIALIZED : CKR_OPERATION_ACTIVE;
		wire_free(&init);
	} else {
		o->in_message = o->init_kept = true;
		o->init = init;
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

/*
 * A part of a message begun by sign_begin; the last one (a signature
 * asked for, or one given) ends it: when no part went before, as one
 * whole message; else as a final after this part. Any error but
 * CKR_BUFFER_TOO_SMALL ends the message, not the operation.
 */
static CK_RV
sign_next(CK_SESSION_HANDLE h, enum proto_op kind, const void *param, CK_ULONG plen, const CK_BYTE *in,
	  CK_ULONG inlen, CK_BYTE *sig, CK_ULONG siglen, CK_ULONG *psiglen)
{
	struct message_op now;
	CK_RV rv = state_of(h, kind, &now);
	if (rv != CKR_OK)
		return rv;
	if (!now.in_message)
		return CKR_OPERATION_NOT_INITIALIZED;
	bool last = kind == OP_MESSAGE_SIGN ? psiglen != NULL : sig != NULL;
	if (!last && now.pending != 0)
		return CKR_OPERATION_ACTIVE;
	if ((rv = sign_args(kind, param, plen, in, inlen, sig, psiglen, last)) != CKR_OK) {
		end_message(h, kind, !now.init_kept);
		return rv;
	}
	struct wire_buf init = { 0 };
	bool kept = now.pending == 0 && take_init(h, kind, &init);
	if (now.pending != 0) /* the signature keymgrd keeps for this message */
		rv = sign_step(h, kind, now.pending, NULL, NULL, 0, sig, siglen, psiglen);
	else if (last && kept)
		rv = sign_step(h, kind, MSG_OP_RUN, &init, in, inlen, sig, siglen, psiglen);
	else if (!last || inlen)
		rv = sign_step(h, kind, MSG_OP_UPDATE, kept ? &init : NULL, in, inlen, NULL, 0, NULL);
	if (last && !kept && now.pending == 0 && rv == CKR_OK)
		rv = sign_step(h, kind, MSG_OP_FINAL, NULL, NULL, 0, sig, siglen, psiglen);
	wire_free(&init);
	bool going = last ? rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && kind == OP_MESSAGE_SIGN && sig == NULL)
			  : rv == CKR_OK;
	if (!going)
		end_message(h, kind, rv != CKR_OK);
	return rv;
}

CK_RV
C_MessageSignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return message_init(hSession, OP_MESSAGE_SIGN, pMechanism, hKey, pMechanism, true);
}

CK_RV
C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
	      CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return sign_message(hSession, OP_MESSAGE_SIGN, pParameter, ulParameterLen, pData, ulDataLen, pSignature, 0,
			    pulSignatureLen);
}

CK_RV
C_SignMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)
{
	return sign_begin(hSession, OP_MESSAGE_SIGN, pParameter, ulParameterLen);
}

CK_RV
C_SignMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
		  CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return sign_next(hSession, OP_MESSAGE_SIGN, pParameter, ulParameterLen, pData, ulDataLen, pSignature, 0,
			 pulSignatureLen);
}

CK_RV
C_MessageSignFinal(CK_SESSION_HANDLE hSession)
{
	return message_final(hSession, OP_MESSAGE_SIGN);
}

CK_RV
C_MessageVerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return message_init(hSession, OP_MESSAGE_VERIFY, pMechanism, hKey, pMechanism, true);
}

CK_RV
C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
		CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return sign_message(hSession, OP_MESSAGE_VERIFY, pParameter, ulParameterLen, pData, ulDataLen, pSignature,
			    ulSignatureLen, NULL);
}

CK_RV
C_VerifyMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)
{
	return sign_begin(hSession, OP_MESSAGE_VERIFY, pParameter, ulParameterLen);
}

CK_RV
C_VerifyMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		    CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return sign_next(hSession, OP_MESSAGE_VERIFY, pParameter, ulParameterLen, pData, ulDataLen, pSignature,
			 ulSignatureLen, NULL);
}

CK_RV
C_MessageVerifyFinal(CK_SESSION_HANDLE hSession)
{
	return message_final(hSession, OP_MESSAGE_VERIFY);
}
