/*
 * curve.h - the elliptic curves coyeu knows, by name and by CKA_EC_PARAMS.
 *
 * A curve may be named in CKA_EC_PARAMS by its DER OBJECT IDENTIFIER or,
 * as PKCS#11 3.0 allows, by a DER PrintableString of its name; every
 * accepted encoding is listed, the first one being what coyeu writes.
 */
#ifndef CY_CURVE_H
#define CY_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"

struct curve_der {
	const uint8_t *p;
	size_t len;
};

struct curve {
	const char *name;      /* "P-256" */
	const char *alias;     /* "prime256v1" */
	const char *gcry_name; /* "NIST P-256" */
	CK_KEY_TYPE key_type;  /* CKK_EC, CKK_EC_EDWARDS or CKK_EC_MONTGOMERY */
	struct curve_der der[3]; /* accepted CKA_EC_PARAMS, canonical first */
	unsigned bits;
	size_t field_bytes;    /* coordinate / key size in bytes */
};

/* The curve whose CKA_EC_PARAMS encoding is p/len, or NULL. */
const struct curve *curve_by_params(const uint8_t *p, size_t len);
/* The curve named name (either spelling, case-insensitive), or NULL. */
const struct curve *curve_by_name(const char *name);

#endif
