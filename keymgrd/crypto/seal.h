/*
 * seal.h - keys at rest.
 *
 * A 32-byte master key lives in a 0600 key file. It seals each token's
 * 32-byte data key; a data key seals the secret attributes of that token's
 * objects. Sealing is AES-256-GCM with a fresh 96-bit nonce and the owner's
 * identity (token or object id) bound as associated data, so a sealed blob
 * moved to another row fails to open. Keys are held in libgcrypt secure
 * memory; free them with seal_key_free.
 *
 * Sealed blob: u8 version (1) | 12-byte nonce | ciphertext | 16-byte tag.
 */
#ifndef KM_SEAL_H
#define KM_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SEAL_KEY_LEN 32
#define SEAL_OVERHEAD (1 + 12 + 16)

/* Reads the master key at path, or creates it (0600) when absent;
 * *created tells which. A key file readable by group or others, or of the
 * wrong size, is refused with CY_ERR_PERM / CY_ERR_CORRUPT. */
int seal_master_key(const char *path, uint8_t **key, bool *created);
/* Reads the master key from a file that must exist (a systemd credential,
 * keymgrd.conf master_key): no one but its owner (and an ACL's group bits
 * for reading) may access it. */
int seal_read_master_key(const char *path, uint8_t **key);
/* A new random key in secure memory. */
int seal_new_key(uint8_t **key);
void seal_key_free(uint8_t *key);

/* Seals pt under key with ad; *out is malloc'd (SEAL_OVERHEAD + ptlen bytes). */
int seal_data(const uint8_t *key, const void *ad, size_t adlen,
	      const uint8_t *pt, size_t ptlen, uint8_t **out, size_t *outlen);
/* Opens a sealed blob; *pt is in secure memory (free with seal_key_free).
 * CY_ERR_CORRUPT when the tag, the version or the associated data differ. */
int unseal_data(const uint8_t *key, const void *ad, size_t adlen,
		const uint8_t *in, size_t inlen, uint8_t **pt, size_t *ptlen);

#endif
