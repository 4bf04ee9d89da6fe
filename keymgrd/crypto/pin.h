/*
 * pin.h - PIN hashing with Argon2id (libgcrypt's KDF).
 *
 * A stored PIN is the string "argon2id$m=KiB$t=passes$p=lanes$SALT$HASH"
 * (salt and hash in hex), so the cost can change without breaking old
 * hashes. Only these strings are stored; PINs themselves never are.
 */
#ifndef KM_PIN_H
#define KM_PIN_H

#include <stddef.h>
#include <stdint.h>

#define PIN_HASH_MAX 160

struct pin_cost {
	unsigned long mem_kib;
	unsigned long passes;
};

/* The default cost: 19 MiB, 2 passes (about 30 ms here). */
extern const struct pin_cost pin_cost_default;

/* Hashes pin with a new random salt into out (PIN_HASH_MAX bytes). */
int pin_hash(const uint8_t *pin, size_t len, const struct pin_cost *cost, char *out);
/* 0 when pin matches stored, CY_ERR_PERM when it does not, another error
 * when stored is malformed. The comparison is constant-time. */
int pin_verify(const char *stored, const uint8_t *pin, size_t len);
/* How many times pin_verify ran Argon2id (for the tests). */
extern unsigned long pin_verifications;

#endif
