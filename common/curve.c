/* curve.c - the curve table (see curve.h). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "curve.h"

#define DER(a) { a, sizeof(a) }

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t str_p256[] = { 0x13, 0x0a, 'p', 'r', 'i', 'm', 'e', '2', '5', '6', 'v', '1' };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t str_p384[] = { 0x13, 0x09, 's', 'e', 'c', 'p', '3', '8', '4', 'r', '1' };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t str_p521[] = { 0x13, 0x09, 's', 'e', 'c', 'p', '5', '2', '1', 'r', '1' };
/* id-Ed25519 (RFC 8410), the older GnuPG OID OpenSC uses, and the
 * PrintableString of PKCS#11 3.0. */
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t oid_ed25519_gnu[] = { 0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };
static const uint8_t str_ed25519[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };
static const uint8_t oid_x25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };
static const uint8_t oid_x25519_gnu[] = { 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01 };
static const uint8_t str_x25519[] = { 0x13, 0x0a, 'c', 'u', 'r', 'v', 'e', '2', '5', '5', '1', '9' };

/* RFC 5639: brainpoolP256r1, P384r1 and P512r1 (1.3.36.3.3.2.8.1.1.7/11/13). */
static const uint8_t oid_bp256[] = { 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07 };
static const uint8_t str_bp256[] = { 0x13, 0x0f, 'b', 'r', 'a', 'i', 'n', 'p', 'o', 'o', 'l', 'P', '2', '5', '6', 'r', '1' };
static const uint8_t oid_bp384[] = { 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b };
static const uint8_t str_bp384[] = { 0x13, 0x0f, 'b', 'r', 'a', 'i', 'n', 'p', 'o', 'o', 'l', 'P', '3', '8', '4', 'r', '1' };
static const uint8_t oid_bp512[] = { 0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d };
static const uint8_t str_bp512[] = { 0x13, 0x0f, 'b', 'r', 'a', 'i', 'n', 'p', 'o', 'o', 'l', 'P', '5', '1', '2', 'r', '1' };

static const uint8_t oid_ed448[] = { 0x06, 0x03, 0x2b, 0x65, 0x71 };
static const uint8_t str_ed448[] = { 0x13, 0x0a, 'e', 'd', 'w', 'a', 'r', 'd', 's', '4', '4', '8' };
static const uint8_t oid_x448[] = { 0x06, 0x03, 0x2b, 0x65, 0x6f };
static const uint8_t str_x448[] = { 0x13, 0x08, 'c', 'u', 'r', 'v', 'e', '4', '4', '8' };

static const struct curve curves[] = {
	{ "P-256", "prime256v1", "NIST P-256", CKK_EC, { DER(oid_p256), DER(str_p256) }, 256, 32 },
	{ "P-384", "secp384r1", "NIST P-384", CKK_EC, { DER(oid_p384), DER(str_p384) }, 384, 48 },
	{ "P-521", "secp521r1", "NIST P-521", CKK_EC, { DER(oid_p521), DER(str_p521) }, 521, 66 },
	{ "brainpoolP256r1", "bp256", "brainpoolP256r1", CKK_EC, { DER(oid_bp256), DER(str_bp256) }, 256, 32 },
	{ "brainpoolP384r1", "bp384", "brainpoolP384r1", CKK_EC, { DER(oid_bp384), DER(str_bp384) }, 384, 48 },
	{ "brainpoolP512r1", "bp512", "brainpoolP512r1", CKK_EC, { DER(oid_bp512), DER(str_bp512) }, 512, 64 },
	{ "Ed25519", "edwards25519", "Ed25519", CKK_EC_EDWARDS,
	  { DER(oid_ed25519), DER(oid_ed25519_gnu), DER(str_ed25519) }, 255, 32 },
	{ "X25519", "curve25519", "Curve25519", CKK_EC_MONTGOMERY,
	  { DER(oid_x25519), DER(oid_x25519_gnu), DER(str_x25519) }, 255, 32 },
	{ "Ed448", "edwards448", "Ed448", CKK_EC_EDWARDS, { DER(oid_ed448), DER(str_ed448) }, 448, 57 },
	{ "X448", "curve448", "X448", CKK_EC_MONTGOMERY, { DER(oid_x448), DER(str_x448) }, 448, 56 },
};

const struct curve *
curve_by_params(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		for (size_t j = 0; j < 3 && curves[i].der[j].p; j++)
			if (len == curves[i].der[j].len && memcmp(p, curves[i].der[j].p, len) == 0)
				return &curves[i];
	return NULL;
}

const struct curve *
curve_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcasecmp(name, curves[i].name) == 0 || strcasecmp(name, curves[i].alias) == 0)
			return &curves[i];
	return NULL;
}
