/*
 * cy_pkcs11.h - the PKCS#11 header coyeu compiles against.
 *
 * p11-kit's pkcs11.h (2.40) is the base; the few 3.0 definitions it lacks
 * are added here, guarded, so a newer header takes precedence.
 */
#ifndef CY_PKCS11_H
#define CY_PKCS11_H

#include <p11-kit/pkcs11.h>

#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x40UL
#endif
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY 0x41UL
#endif
#ifndef CKA_UNIQUE_ID
#define CKA_UNIQUE_ID 0x4UL
#endif

/* Vendor-defined attributes of coyeu. */
#define CKA_COYEU_KEY_STATE (CKA_VENDOR_DEFINED | 0x434f0001UL)

#endif
