/* pincache.c - the short-lived cache of verified PINs (see pincache.h). */
#include "config.h"

#include <string.h>
#include <gcrypt.h>

#include "crypto/pincache.h"
#include "wire.h"

#define PIN_CACHE_SLOTS 256

struct pin_cache {
	uint8_t key[32];
	struct {
		uint8_t tag[32];
		time_t expires;
	} e[PIN_CACHE_SLOTS];
};

struct pin_cache *
pin_cache_new(void)
{
	struct pin_cache *c = gcry_calloc_secure(1, sizeof(*c));
	if (c != NULL)
		gcry_randomize(c->key, sizeof(c->key), GCRY_STRONG_RANDOM);
	return c;
}

void
pin_cache_free(struct pin_cache *c)
{
	if (c == NULL)
		return;
	wire_wipe(c, sizeof(*c));
	gcry_free(c);
}

static int
tag_of(const struct pin_cache *c, const char *principal, int64_t token, bool so, const char *stored,
       const uint8_t *pin, size_t len, uint8_t out[32])
{
	gcry_mac_hd_t h;
	uint8_t fixed[9];
	size_t n = 32;
	wire_store_u64(fixed, (uint64_t)token);
	fixed[8] = so;
	if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL) != 0)
		return -1;
	/* Each variable-length part ends with a NUL (none of them holds one;
	 * the PIN, last, has its length fixed by the rest). */
	int bad = gcry_mac_setkey(h, c->key, sizeof(c->key)) || gcry_mac_write(h, principal, strlen(principal) + 1) ||
		  gcry_mac_write(h, fixed, sizeof(fixed)) || gcry_mac_write(h, stored, strlen(stored) + 1) ||
		  gcry_mac_write(h, pin, len) || gcry_mac_read(h, out, &n);
	gcry_mac_close(h);
	return bad ? -1 : 0;
}

/* Constant-time comparison of two tags. */
static bool
same(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;
	for (int i = 0; i < 32; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

bool
pin_cache_hit(struct pin_cache *c, const char *principal, int64_t token, bool so, const char *stored,
	      const uint8_t *pin, size_t len, time_t now)
{
	uint8_t t[32];
	bool hit = false;
	if (c == NULL || tag_of(c, principal, token, so, stored, pin, len, t) != 0)
		return false;
	for (int i = 0; i < PIN_CACHE_SLOTS; i++)
		hit |= c->e[i].expires > now && same(c->e[i].tag, t);
	wire_wipe(t, sizeof(t));
	return hit;
}

void
pin_cache_put(struct pin_cache *c, const char *principal, int64_t token, bool so, const char *stored,
	      const uint8_t *pin, size_t len, time_t now)
{
	uint8_t t[32];
	if (c == NULL || tag_of(c, principal, token, so, stored, pin, len, t) != 0)
		return;
	/* The same entry again, else the one that expires first. */
	int at = 0;
	for (int i = 0; i < PIN_CACHE_SLOTS; i++) {
		if (same(c->e[i].tag, t)) {
			at = i;
			break;
		}
		if (c->e[i].expires < c->e[at].expires)
			at = i;
	}
	memcpy(c->e[at].tag, t, sizeof(t));
	c->e[at].expires = now + PIN_CACHE_TTL;
	wire_wipe(t, sizeof(t));
}
