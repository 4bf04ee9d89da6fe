/* pin.c - Argon2id PIN hashes (see pin.h). */
#include "config.h"

#include <gcrypt.h>
#include <stdio.h>
#include <string.h>

#include "cy_err.h"
#include "crypto/pin.h"
#include "wire.h"

#define SALT_LEN 16
#define HASH_LEN 32
/* Bounds on costs read back from the store, so a corrupted row cannot make
 * keymgrd allocate gigabytes. */
#define MAX_MEM_KIB (1024ul * 1024)
#define MAX_PASSES 64ul

const struct pin_cost pin_cost_default = { 19456, 2 };

static int
argon2id(const uint8_t *pin, size_t len, const uint8_t *salt, unsigned long mem,
	 unsigned long passes, uint8_t *out)
{
	unsigned long params[4] = { HASH_LEN, passes, mem, 1 };
	gcry_kdf_hd_t h;
	int r = CY_ERR_CRYPTO;
	if (gcry_kdf_open(&h, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, params, 4,
			  len ? pin : (const uint8_t *)"", len, salt, SALT_LEN,
			  NULL, 0, NULL, 0) != 0)
		return r;
	if (gcry_kdf_compute(h, NULL) == 0 && gcry_kdf_final(h, HASH_LEN, out) == 0)
		r = 0;
	gcry_kdf_close(h);
	return r;
}

static void
to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
from_hex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return CY_ERR_CORRUPT;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int
pin_hash(const uint8_t *pin, size_t len, const struct pin_cost *cost, char *out)
{
	uint8_t salt[SALT_LEN], hash[HASH_LEN];
	char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
	gcry_randomize(salt, SALT_LEN, GCRY_STRONG_RANDOM);
	int r = argon2id(pin, len, salt, cost->mem_kib, cost->passes, hash);
	if (r == 0) {
		to_hex(salt, SALT_LEN, salt_hex);
		to_hex(hash, HASH_LEN, hash_hex);
		snprintf(out, PIN_HASH_MAX, "argon2id$m=%lu$t=%lu$p=1$%s$%s",
			 cost->mem_kib, cost->passes, salt_hex, hash_hex);
	}
	wire_wipe(hash, sizeof(hash));
	return r;
}

unsigned long pin_verifications;

int
pin_verify(const char *stored, const uint8_t *pin, size_t len)
{
	unsigned long mem, passes;
	char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
	uint8_t salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	int end = 0;
	if (sscanf(stored, "argon2id$m=%lu$t=%lu$p=1$%32[0-9a-f]$%64[0-9a-f]%n",
		   &mem, &passes, salt_hex, hash_hex, &end) != 4 || stored[end] != '\0' ||
	    strlen(salt_hex) != 2 * SALT_LEN || strlen(hash_hex) != 2 * HASH_LEN ||
	    mem < 8 || mem > MAX_MEM_KIB || passes < 1 || passes > MAX_PASSES)
		return CY_ERR_CORRUPT;
	if (from_hex(salt_hex, SALT_LEN, salt) != 0 || from_hex(hash_hex, HASH_LEN, want) != 0)
		return CY_ERR_CORRUPT;
	/* libgcrypt's Argon2 refuses an empty passphrase; no stored PIN is
	 * empty (pin_hash needs one), so an empty one simply does not match. */
	if (len == 0)
		return CY_ERR_PERM;
	__atomic_add_fetch(&pin_verifications, 1, __ATOMIC_RELAXED);
	int r = argon2id(pin, len, salt, mem, passes, got);
	if (r == 0) {
		uint8_t diff = 0;
		for (size_t i = 0; i < HASH_LEN; i++)
			diff |= (uint8_t)(got[i] ^ want[i]);
		r = diff == 0 ? 0 : CY_ERR_PERM;
	}
	wire_wipe(got, sizeof(got));
	return r;
}
