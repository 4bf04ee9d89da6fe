/*
 * keycache.c - private keys kept parsed between operations.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

/*
 * Private keys kept parsed between operations. Building a key's
 * S-expression (and, for EdDSA, deriving its public point) costs more than
 * some signatures, so it is done once per key material. An entry is found
 * by the SHA-256 of the material it was built from: a key that changed or
 * was destroyed can never meet a stale entry. Entries hold the canonical
 * S-expression in libgcrypt secure memory; each operation parses its own
 * copy, so an entry evicted meanwhile hurts no one.
 */
#define KEY_CACHE_SIZE 256

static struct {
	uint8_t tag[32];
	char *canon; /* secure memory */
	size_t len;
	uint64_t used;
} key_cache[KEY_CACHE_SIZE];
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t key_cache_clock;

/* The tag of private key o: SHA-256 over its type and every attribute
 * the key S-expression is built from. */
static int
key_tag(const struct km_object *o, uint8_t tag[32])
{
	static const CK_ATTRIBUTE_TYPE pub[] = { CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS };
	gcry_md_hd_t h;
	if (gcry_md_open(&h, GCRY_MD_SHA256, GCRY_MD_FLAG_SECURE) != 0)
		return -1;
	uint8_t kt[8];
	wire_store_u64(kt, o->key_type);
	gcry_md_write(h, kt, sizeof(kt));
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
		const struct attr *a = al_find(&o->pub, pub[i]);
		uint8_t hdr[8];
		wire_store_u32(hdr, (uint32_t)pub[i]);
		wire_store_u32(hdr + 4, a ? a->len : 0xffffffffu);
		gcry_md_write(h, hdr, sizeof(hdr));
		if (a)
			gcry_md_write(h, a->val, a->len);
	}
	for (size_t i = 0; i < o->sec.n; i++) {
		uint8_t hdr[8];
		wire_store_u32(hdr, (uint32_t)o->sec.v[i].type);
		wire_store_u32(hdr + 4, o->sec.v[i].len);
		gcry_md_write(h, hdr, sizeof(hdr));
		gcry_md_write(h, o->sec.v[i].val, o->sec.v[i].len);
	}
	memcpy(tag, gcry_md_read(h, GCRY_MD_SHA256), 32);
	gcry_md_close(h);
	return 0;
}

/* The private key S-expression of o (and its curve for EC keys), from the
 * cache or built and added to it. */
CK_RV
cr_private_key(const struct km_object *o, gcry_sexp_t *out, const struct curve **cv)
{
	uint8_t tag[32];
	CK_RV rv;
	bool tagged = key_tag(o, tag) == 0;
	if (cv != NULL && (*cv = cr_key_curve(cr_key_attr(o, CKA_EC_PARAMS))) == NULL)
		return CKR_KEY_HANDLE_INVALID;
	if (tagged) {
		gcry_error_t ge = 1;
		pthread_mutex_lock(&key_cache_lock);
		for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
			if (key_cache[i].canon && memcmp(key_cache[i].tag, tag, 32) == 0) {
				key_cache[i].used = ++key_cache_clock;
				ge = gcry_sexp_new(out, key_cache[i].canon, key_cache[i].len, 1);
				break;
			}
		}
		pthread_mutex_unlock(&key_cache_lock);
		if (ge == 0)
			return CKR_OK;
	}
	const struct curve *c;
	rv = o->key_type == CKK_RSA ? cr_rsa_private(o, out) : cr_key_ec(o, true, out, &c);
	if (rv != CKR_OK || !tagged)
		return rv;
	size_t len = gcry_sexp_sprint(*out, GCRYSEXP_FMT_CANON, NULL, 0);
	char *canon = len ? gcry_malloc_secure(len) : NULL;
	if (canon == NULL || gcry_sexp_sprint(*out, GCRYSEXP_FMT_CANON, canon, len) == 0) {
		gcry_free(canon);
		return CKR_OK; /* works, just not cached */
	}
	pthread_mutex_lock(&key_cache_lock);
	size_t victim = 0;
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		if (key_cache[i].canon == NULL) {
			victim = i;
			break;
		}
		if (key_cache[i].used < key_cache[victim].used)
			victim = i;
	}
	if (key_cache[victim].canon) {
		wire_wipe(key_cache[victim].canon, key_cache[victim].len);
		gcry_free(key_cache[victim].canon);
	}
	memcpy(key_cache[victim].tag, tag, 32);
	key_cache[victim].canon = canon;
	key_cache[victim].len = len;
	key_cache[victim].used = ++key_cache_clock;
	pthread_mutex_unlock(&key_cache_lock);
	return CKR_OK;
}

void
crypto_forget_keys(void)
{
	pthread_mutex_lock(&key_cache_lock);
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		if (key_cache[i].canon) {
			wire_wipe(key_cache[i].canon, key_cache[i].len);
			gcry_free(key_cache[i].canon);
		}
		memset(&key_cache[i], 0, sizeof(key_cache[i]));
	}
	pthread_mutex_unlock(&key_cache_lock);
}

