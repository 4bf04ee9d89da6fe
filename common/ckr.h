/*
 * ckr.h - names of PKCS#11 return values, for messages and logs.
 */
#ifndef CY_CKR_H
#define CY_CKR_H

#include "cy_pkcs11.h"

/* "CKR_PIN_INCORRECT" for a known value, else "CKR_0x..." in a static
 * buffer of the calling thread. */
const char *ckr_name(CK_RV rv);

#endif
