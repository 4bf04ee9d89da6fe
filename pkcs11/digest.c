/*
 * digest.c - C_Digest* and C_GenerateRandom, computed inside the module.
 *
 * Hashing needs no key, so it costs no round trip; the session is checked
 * with keymgrd once, at C_DigestInit. libgcrypt belongs to the host
 * application as much as to us: we only call gcry_check_version when
 * nobody has initialised it, and never finish or reconfigure it.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "mech.h"
#include "module.h"

struct digest {
	CK_SESSION_HANDLE session;
	gcry_md_hd_t md;
	int algo;
	bool parts;   /* C_DigestUpdate/C_DigestKey ran: C_Digest may not end it */
	bool oneshot; /* C_Digest asked for the length: no part may follow */
	/* What was digested so far, for C_GetOperationState (libgcrypt cannot
	 * export a hash's inner state): up to STATE_MAX bytes; past that, or
	 * after C_DigestKey (a key's value), the state cannot be saved. */
	uint8_t *replay;
	size_t nreplay;
	bool unsaveable;
	struct digest *next;
};

#define STATE_MAX (64 * 1024)
/* A saved state: "coyeu-digest\0" v1, then u32 algo, u8 parts, u8 oneshot,
 * u32 length and the data, big-endian. */
static const uint8_t state_magic[16] = "coyeu-digest\0v1";

static pthread_mutex_t digest_lock = PTHREAD_MUTEX_INITIALIZER;
static struct digest *digests;

bool
digest_init_lib(void)
{
	if (gcry_control(GCRYCTL_ANY_INITIALIZATION_P))
		return true;
	return gcry_check_version(NULL) != NULL;
}

/* Unlinks and returns the digest of session h, or NULL. */
static struct digest *
take(CK_SESSION_HANDLE h)
{
	struct digest *d = NULL;
	pthread_mutex_lock(&digest_lock);
	for (struct digest **pp = &digests; *pp; pp = &(*pp)->next) {
		if ((*pp)->session == h) {
			d = *pp;
			*pp = d->next;
			break;
		}
	}
	pthread_mutex_unlock(&digest_lock);
	return d;
}

static void
put_back(struct digest *d)
{
	pthread_mutex_lock(&digest_lock);
	d->next = digests;
	digests = d;
	pthread_mutex_unlock(&digest_lock);
}

/* From now on d's state cannot be saved: what was kept goes. */
static void
drop_replay(struct digest *d)
{
	if (d->replay)
		explicit_bzero(d->replay, d->nreplay);
	free(d->replay);
	d->replay = NULL;
	d->nreplay = 0;
	d->unsaveable = true;
}

static void
digest_free(struct digest *d)
{
	if (d) {
		gcry_md_close(d->md);
		drop_replay(d);
		free(d);
	}
}

void
digest_forget(CK_SESSION_HANDLE h)
{
	digest_free(take(h));
}

void
digest_forget_all(void)
{
	pthread_mutex_lock(&digest_lock);
	struct digest *d = digests;
	digests = NULL;
	pthread_mutex_unlock(&digest_lock);
	while (d) {
		struct digest *next = d->next;
		digest_free(d);
		d = next;
	}
}

void
digest_child_reset(void)
{
	pthread_mutex_init(&digest_lock, NULL);
	digest_forget_all();
}

/* Asks keymgrd whether h is one of our sessions. */
static CK_RV
check_session(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO info;
	return rpc_session_info(h, &info);
}

/* Why there is no digest of h to continue: h is no session of ours
 * (CKR_SESSION_HANDLE_INVALID, which PKCS#11 puts first), or none was
 * started (CKR_OPERATION_NOT_INITIALIZED). */
static CK_RV
no_digest(CK_SESSION_HANDLE h)
{
	CK_RV rv = check_session(h);
	return rv != CKR_OK ? rv : CKR_OPERATION_NOT_INITIALIZED;
}

CK_RV
C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pMechanism == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = check_session(hSession)) != CKR_OK)
		return rv;
	int algo = mech_md_algo(pMechanism->mechanism);
	if (algo == 0)
		return CKR_MECHANISM_INVALID;
	if (pMechanism->ulParameterLen != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	struct digest *d = take(hSession);
	if (d != NULL) {
		put_back(d);
		return CKR_OPERATION_ACTIVE;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return CKR_HOST_MEMORY;
	if (gcry_md_open(&d->md, algo, 0) != 0) {
		free(d);
		return CKR_DEVICE_ERROR;
	}
	d->session = hSession;
	d->algo = algo;
	put_back(d);
	return CKR_OK;
}

/* Feeds data to d, keeping it for a saved state while that is possible. */
static void
feed(struct digest *d, const void *p, size_t n)
{
	gcry_md_write(d->md, p, n);
	if (d->unsaveable || n == 0)
		return;
	uint8_t *nr = d->nreplay + n <= STATE_MAX ? realloc(d->replay, d->nreplay + n) : NULL;
	if (nr == NULL) {
		drop_replay(d);
		return;
	}
	memcpy(nr + d->nreplay, p, n);
	d->replay = nr;
	d->nreplay += n;
}

/* Delivers the digest of d under the two-call convention; returns whether
 * the operation is over. */
static CK_RV
deliver(struct digest *d, CK_BYTE_PTR out, CK_ULONG_PTR outlen, bool *done)
{
	CK_ULONG n = gcry_md_get_algo_dlen(d->algo);
	*done = false;
	if (out == NULL) {
		*outlen = n;
		return CKR_OK;
	}
	if (*outlen < n) {
		*outlen = n;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(out, gcry_md_read(d->md, d->algo), n);
	*outlen = n;
	*done = true;
	return CKR_OK;
}

CK_RV
C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
	 CK_ULONG_PTR pulDigestLen)
{
	CK_RV rv = mod_ready();
	bool done;
	if (rv != CKR_OK)
		return rv;
	struct digest *d = take(hSession);
	if (d == NULL)
		return no_digest(hSession);
	if (pulDigestLen == NULL || (pData == NULL && ulDataLen)) {
		digest_free(d);
		return CKR_ARGUMENTS_BAD;
	}
	if (d->parts) {
		/* A one-shot call cannot end a multi-part digest; it goes on. */
		put_back(d);
		return CKR_OPERATION_ACTIVE;
	}
	if (pDigest != NULL && *pulDigestLen >= gcry_md_get_algo_dlen(d->algo))
		feed(d, pData, ulDataLen);
	rv = deliver(d, pDigest, pulDigestLen, &done);
	d->oneshot = true;
	if (done)
		digest_free(d);
	else
		put_back(d);
	return rv;
}

CK_RV
digest_add(CK_SESSION_HANDLE hSession, const CK_BYTE *pPart, CK_ULONG ulPartLen)
{
	struct digest *d = take(hSession);
	if (d == NULL)
		return no_digest(hSession);
	if (pPart == NULL && ulPartLen) {
		digest_free(d);
		return CKR_ARGUMENTS_BAD;
	}
	if (d->oneshot) {
		put_back(d);
		return CKR_OPERATION_ACTIVE;
	}
	feed(d, pPart, ulPartLen);
	d->parts = true;
	put_back(d);
	return CKR_OK;
}

CK_RV
digest_can_add(CK_SESSION_HANDLE hSession)
{
	struct digest *d = take(hSession);
	if (d == NULL)
		return no_digest(hSession);
	CK_RV rv = d->oneshot ? CKR_OPERATION_ACTIVE : CKR_OK;
	put_back(d);
	return rv;
}

CK_RV
C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : digest_add(hSession, pPart, ulPartLen);
}

/*
 * C_DigestKey digests a secret key's value here, in the application, so
 * it works only for keys whose value may leave keymgrd (not sensitive,
 * extractable); for the others it is CKR_KEY_INDIGESTIBLE, which the
 * standard allows for keys a token "simply can't digest".
 */
CK_RV
C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	struct digest *d = take(hSession);
	if (d == NULL)
		return no_digest(hSession);
	if (d->oneshot) {
		put_back(d);
		return CKR_OPERATION_ACTIVE;
	}
	CK_OBJECT_CLASS cls = 0;
	CK_ATTRIBUTE c = { CKA_CLASS, &cls, sizeof(cls) };
	CK_ATTRIBUTE v = { CKA_VALUE, NULL, 0 };
	if ((rv = objects_get_attrs(hSession, hKey, &c, 1)) != CKR_OK) {
		rv = rv == CKR_OBJECT_HANDLE_INVALID ? CKR_KEY_HANDLE_INVALID : rv;
	} else if (cls != CKO_SECRET_KEY) {
		rv = CKR_KEY_INDIGESTIBLE;
	} else if ((rv = objects_get_attrs(hSession, hKey, &v, 1)) == CKR_ATTRIBUTE_SENSITIVE) {
		rv = CKR_KEY_INDIGESTIBLE;
	} else if (rv == CKR_OK && (v.pValue = malloc(v.ulValueLen ? v.ulValueLen : 1)) == NULL) {
		rv = CKR_HOST_MEMORY;
	} else if (rv == CKR_OK && (rv = objects_get_attrs(hSession, hKey, &v, 1)) == CKR_OK) {
		gcry_md_write(d->md, v.pValue, v.ulValueLen);
		drop_replay(d); /* a key's value is never put into a saved state */
	}
	if (v.pValue) {
		explicit_bzero(v.pValue, v.ulValueLen);
		free(v.pValue);
	}
	/* An error ends the digest, as for the other digest functions. */
	d->parts = true;
	if (rv == CKR_OK)
		put_back(d);
	else
		digest_free(d);
	return rv;
}

CK_RV
C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	CK_RV rv = mod_ready();
	bool done;
	if (rv != CKR_OK)
		return rv;
	struct digest *d = take(hSession);
	if (d == NULL)
		return no_digest(hSession);
	if (pulDigestLen == NULL) {
		digest_free(d);
		return CKR_ARGUMENTS_BAD;
	}
	if (d->oneshot) {
		/* C_Digest asked for the length: only C_Digest may end it. */
		put_back(d);
		return CKR_OPERATION_ACTIVE;
	}
	rv = deliver(d, pDigest, pulDigestLen, &done);
	if (done)
		digest_free(d);
	else
		put_back(d);
	return rv;
}

/* The seed is mixed into libgcrypt's pool in this process, the one
 * C_GenerateRandom draws from; it never replaces the pool's entropy. */
CK_RV
C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pSeed == NULL && ulSeedLen != 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = check_session(hSession)) != CKR_OK)
		return rv;
	if (ulSeedLen != 0 && gcry_random_add_bytes(pSeed, ulSeedLen, -1) != 0)
		return CKR_FUNCTION_FAILED;
	return CKR_OK;
}

CK_RV
C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (RandomData == NULL && ulRandomLen)
		return CKR_ARGUMENTS_BAD;
	if ((rv = check_session(hSession)) != CKR_OK)
		return rv;
	if (ulRandomLen)
		gcry_randomize(RandomData, ulRandomLen, GCRY_STRONG_RANDOM);
	return CKR_OK;
}

/* ---- C_GetOperationState / C_SetOperationState (the digest's) ---- */

CK_RV
digest_get_state(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
	struct digest *d = take(h);
	if (d == NULL)
		return no_digest(h);
	CK_RV rv = CKR_OK;
	CK_ULONG need = sizeof(state_magic) + 10 + d->nreplay;
	if (d->unsaveable) {
		rv = CKR_STATE_UNSAVEABLE;
	} else if (out == NULL) {
		*len = need;
	} else if (*len < need) {
		*len = need;
		rv = CKR_BUFFER_TOO_SMALL;
	} else {
		uint8_t *p = out;
		memcpy(p, state_magic, sizeof(state_magic));
		p += sizeof(state_magic);
		wire_store_u32(p, (uint32_t)d->algo);
		p[4] = d->parts;
		p[5] = d->oneshot;
		wire_store_u32(p + 6, (uint32_t)d->nreplay);
		if (d->nreplay)
			memcpy(p + 10, d->replay, d->nreplay);
		*len = need;
	}
	put_back(d);
	return rv;
}

CK_RV
digest_set_state(CK_SESSION_HANDLE h, const CK_BYTE *state, CK_ULONG len)
{
	CK_RV rv = check_session(h);
	if (rv != CKR_OK)
		return rv;
	if (len < sizeof(state_magic) + 10 || memcmp(state, state_magic, sizeof(state_magic)) != 0)
		return CKR_SAVED_STATE_INVALID;
	const uint8_t *p = state + sizeof(state_magic);
	uint32_t algo = wire_load_u32(p), n = wire_load_u32(p + 6);
	if (n > STATE_MAX || len != sizeof(state_magic) + 10 + (CK_ULONG)n || p[4] > 1 || p[5] > 1 ||
	    gcry_md_test_algo((int)algo) != 0 || gcry_md_get_algo_dlen((int)algo) == 0)
		return CKR_SAVED_STATE_INVALID;
	struct digest *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return CKR_HOST_MEMORY;
	if (gcry_md_open(&d->md, (int)algo, 0) != 0) {
		free(d);
		return CKR_SAVED_STATE_INVALID;
	}
	d->session = h;
	d->algo = (int)algo;
	feed(d, p + 10, n);
	d->parts = p[4];
	d->oneshot = p[5];
	/* The saved digest replaces the session's own, if it had one. */
	digest_free(take(h));
	put_back(d);
	return CKR_OK;
}
