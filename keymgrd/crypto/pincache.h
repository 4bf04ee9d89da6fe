/*
 * pincache.h - PINs that verified, remembered for a short while so that
 * the logins standard clients repeat (p11tool logs in once per object) do
 * not each pay Argon2id.
 *
 * Nothing here holds a PIN: an entry is an HMAC, under a random key made
 * at start-up, of the principal, the token, the user type, the stored PIN
 * hash (so a new PIN ends it) and the PIN, with an expiry time; key and
 * entries live in secure memory. Only a PIN that verified is put in; a
 * PIN that does not hit takes the full check and counts as a failure when
 * wrong. Callers hold ctx->lock.
 */
#ifndef KM_PINCACHE_H
#define KM_PINCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* How long a verified PIN is remembered. */
#define PIN_CACHE_TTL 300

struct pin_cache;

/* A new, empty cache; NULL when there is no (secure) memory. */
struct pin_cache *pin_cache_new(void);
void pin_cache_free(struct pin_cache *c);
/* Whether principal's pin for (token, so) with that stored hash verified
 * less than PIN_CACHE_TTL seconds before now. */
bool pin_cache_hit(struct pin_cache *c, const char *principal, int64_t token, bool so, const char *stored,
		   const uint8_t *pin, size_t len, time_t now);
/* Remembers that it verified (at now). */
void pin_cache_put(struct pin_cache *c, const char *principal, int64_t token, bool so, const char *stored,
		   const uint8_t *pin, size_t len, time_t now);

#endif
