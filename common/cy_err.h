/*
 * cy_err.h - the one error enumeration used by every coyeu component.
 *
 * Internal functions return 0 (CY_OK) or one of these negative values.
 * Conversion to CK_RV happens only at the PKCS#11 boundary.
 */
#ifndef CY_ERR_H
#define CY_ERR_H

enum cy_err {
	CY_OK = 0,
	CY_ERR_INTERNAL = -1,
	CY_ERR_ALLOC = -2,
	CY_ERR_TRUNCATED = -3,    /* a read ran past the end of a message */
	CY_ERR_TOO_LARGE = -4,    /* a length over the buffer's maximum */
	CY_ERR_BAD_FORMAT = -5,   /* a message that does not match its signature */
	CY_ERR_TRAILING = -6,     /* bytes left after the last field */
	CY_ERR_EMBEDDED_NUL = -7, /* a string field that holds a NUL */
	CY_ERR_IO = -8,
	CY_ERR_EOF = -9,          /* the peer closed the connection */
	CY_ERR_CONNECT = -10,     /* the daemon could not be reached */
	CY_ERR_VERSION = -11,     /* protocol versions do not match */
	CY_ERR_CRYPTO = -12,
	CY_ERR_STORE = -13,
	CY_ERR_NOT_FOUND = -14,
	CY_ERR_EXISTS = -15,
	CY_ERR_INVALID_ARG = -16,
	CY_ERR_CORRUPT = -17,     /* sealed data failed authentication */
	CY_ERR_PERM = -18,
	CY_ERR_CONFIG = -19,
};

/* Returns a static, human-readable description of err. */
const char *cy_strerror(int err);

#endif
