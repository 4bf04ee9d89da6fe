/* cy_err.c - descriptions for the project-wide error codes. */
#include "config.h"
#include "cy_err.h"

const char *
cy_strerror(int err)
{
	switch (err) {
	case CY_OK: return "success";
	case CY_ERR_INTERNAL: return "internal error";
	case CY_ERR_ALLOC: return "out of memory";
	case CY_ERR_TRUNCATED: return "message truncated";
	case CY_ERR_TOO_LARGE: return "length over the maximum";
	case CY_ERR_BAD_FORMAT: return "malformed message";
	case CY_ERR_TRAILING: return "trailing bytes after message";
	case CY_ERR_EMBEDDED_NUL: return "string holds a NUL byte";
	case CY_ERR_IO: return "I/O error";
	case CY_ERR_EOF: return "connection closed by peer";
	case CY_ERR_CONNECT: return "cannot reach keymgrd";
	case CY_ERR_VERSION: return "protocol version mismatch";
	case CY_ERR_CRYPTO: return "cryptographic operation failed";
	case CY_ERR_STORE: return "store error";
	case CY_ERR_NOT_FOUND: return "not found";
	case CY_ERR_EXISTS: return "already exists";
	case CY_ERR_INVALID_ARG: return "invalid argument";
	case CY_ERR_CORRUPT: return "sealed data failed authentication";
	case CY_ERR_PERM: return "permission denied";
	case CY_ERR_CONFIG: return "configuration error";
	}
	return "unknown error";
}
