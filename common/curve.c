/* curve.c - the curve table (see curve.h). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "curve.h"

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };

static const struct curve curves[] = {
	{ "P-256", "prime256v1", "NIST P-256", oid_p256, sizeof(oid_p256), 256, 32 },
	{ "P-384", "secp384r1", "NIST P-384", oid_p384, sizeof(oid_p384), 384, 48 },
	{ "P-521", "secp521r1", "NIST P-521", oid_p521, sizeof(oid_p521), 521, 66 },
};

const struct curve *
curve_by_params(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (len == curves[i].oid_len && memcmp(p, curves[i].oid, len) == 0)
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
