/*
 * curve.h - the elliptic curves coyeu knows, by name and by CKA_EC_PARAMS.
 */
#ifndef CY_CURVE_H
#define CY_CURVE_H

#include <stddef.h>
#include <stdint.h>

struct curve {
	const char *name;      /* "P-256" */
	const char *alias;     /* "prime256v1" */
	const char *gcry_name; /* "NIST P-256" */
	const uint8_t *oid; size_t oid_len; /* DER OBJECT IDENTIFIER, tag included */
	unsigned bits;
	size_t field_bytes;
};

/* The curve whose DER OID is p/len, or NULL. */
const struct curve *curve_by_params(const uint8_t *p, size_t len);
/* The curve named name (either spelling, case-insensitive), or NULL. */
const struct curve *curve_by_name(const char *name);

#endif
