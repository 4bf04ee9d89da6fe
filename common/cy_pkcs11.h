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
#ifndef CKM_HKDF_DERIVE
#define CKK_HKDF 0x42UL
#define CKM_HKDF_DERIVE 0x402aUL
#define CKM_HKDF_DATA 0x402bUL
#define CKM_HKDF_KEY_GEN 0x402cUL
#define CKF_HKDF_SALT_NULL 0x1UL
#define CKF_HKDF_SALT_DATA 0x2UL
#define CKF_HKDF_SALT_KEY 0x4UL
typedef struct CK_HKDF_PARAMS {
	CK_BBOOL bExtract;
	CK_BBOOL bExpand;
	CK_MECHANISM_TYPE prfHashMechanism;
	CK_ULONG ulSaltType;
	CK_BYTE_PTR pSalt;
	CK_ULONG ulSaltLen;
	CK_OBJECT_HANDLE hSaltKey;
	CK_BYTE_PTR pInfo;
	CK_ULONG ulInfoLen;
} CK_HKDF_PARAMS;
#endif

/* The 2.40 functions in the order of CK_FUNCTION_LIST. */
#define CY_2_40_FUNCTIONS(X) \
	X(C_Initialize) \
	X(C_Finalize) \
	X(C_GetInfo) \
	X(C_GetFunctionList) \
	X(C_GetSlotList) \
	X(C_GetSlotInfo) \
	X(C_GetTokenInfo) \
	X(C_GetMechanismList) \
	X(C_GetMechanismInfo) \
	X(C_InitToken) \
	X(C_InitPIN) \
	X(C_SetPIN) \
	X(C_OpenSession) \
	X(C_CloseSession) \
	X(C_CloseAllSessions) \
	X(C_GetSessionInfo) \
	X(C_GetOperationState) \
	X(C_SetOperationState) \
	X(C_Login) \
	X(C_Logout) \
	X(C_CreateObject) \
	X(C_CopyObject) \
	X(C_DestroyObject) \
	X(C_GetObjectSize) \
	X(C_GetAttributeValue) \
	X(C_SetAttributeValue) \
	X(C_FindObjectsInit) \
	X(C_FindObjects) \
	X(C_FindObjectsFinal) \
	X(C_EncryptInit) \
	X(C_Encrypt) \
	X(C_EncryptUpdate) \
	X(C_EncryptFinal) \
	X(C_DecryptInit) \
	X(C_Decrypt) \
	X(C_DecryptUpdate) \
	X(C_DecryptFinal) \
	X(C_DigestInit) \
	X(C_Digest) \
	X(C_DigestUpdate) \
	X(C_DigestKey) \
	X(C_DigestFinal) \
	X(C_SignInit) \
	X(C_Sign) \
	X(C_SignUpdate) \
	X(C_SignFinal) \
	X(C_SignRecoverInit) \
	X(C_SignRecover) \
	X(C_VerifyInit) \
	X(C_Verify) \
	X(C_VerifyUpdate) \
	X(C_VerifyFinal) \
	X(C_VerifyRecoverInit) \
	X(C_VerifyRecover) \
	X(C_DigestEncryptUpdate) \
	X(C_DecryptDigestUpdate) \
	X(C_SignEncryptUpdate) \
	X(C_DecryptVerifyUpdate) \
	X(C_GenerateKey) \
	X(C_GenerateKeyPair) \
	X(C_WrapKey) \
	X(C_UnwrapKey) \
	X(C_DeriveKey) \
	X(C_SeedRandom) \
	X(C_GenerateRandom) \
	X(C_GetFunctionStatus) \
	X(C_CancelFunction) \
	X(C_WaitForSlotEvent)

/* PKCS#11 3.0 interfaces (p11-kit 0.24's header is 2.40). */
#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#define CY_NEED_3_0_TYPES 1
#endif
#ifndef CKF_END_OF_MESSAGE
#define CKF_END_OF_MESSAGE 0x00000001UL
#endif
#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT 0x00000002UL
#define CKF_MESSAGE_DECRYPT 0x00000004UL
#define CKF_MESSAGE_SIGN 0x00000008UL
#define CKF_MESSAGE_VERIFY 0x00000010UL
#define CKF_MULTI_MESSAGE 0x00000020UL
#endif
#ifndef CKF_FIND_OBJECTS
#define CKF_FIND_OBJECTS 0x00000040UL
#endif

/* PKCS#11 3.0 section 2.12.5: the per-message parameter of AES-GCM. */
#ifndef CKG_NO_GENERATE
#define CKG_NO_GENERATE 0x0UL
#define CKG_GENERATE 0x1UL
#define CKG_GENERATE_COUNTER 0x2UL
#define CKG_GENERATE_RANDOM 0x3UL
typedef CK_ULONG CK_GENERATOR_FUNCTION;
typedef struct CK_GCM_MESSAGE_PARAMS {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_ULONG ulIvFixedBits;
	CK_GENERATOR_FUNCTION ivGenerator;
	CK_BYTE_PTR pTag;
	CK_ULONG ulTagBits;
} CK_GCM_MESSAGE_PARAMS;
#endif

/* PKCS#11 3.0 section 2.3.14; p11-kit's pkcs11.h (0.24) lacks it. */
typedef struct CY_EDDSA_PARAMS {
	CK_BBOOL phFlag;
	CK_ULONG ulContextDataLen;
	CK_BYTE_PTR pContextData;
} CK_EDDSA_PARAMS;

#ifdef CY_NEED_3_0_TYPES
typedef struct CK_INTERFACE {
	CK_CHAR *pInterfaceName;
	CK_VOID_PTR pFunctionList;
	CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;

/* The 3.0 functions, with the argument lists of the 3.0 specification. */
#define CY_3_0_FUNCTIONS(X) \
	X(C_GetInterfaceList, (CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)) \
	X(C_GetInterface, (CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, \
			   CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)) \
	X(C_LoginUser, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, \
			CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)) \
	X(C_SessionCancel, (CK_SESSION_HANDLE hSession, CK_FLAGS flags)) \
	CY_3_0_MESSAGE_FUNCTIONS(X)

/* The message-based functions of 3.0. */
#define CY_3_0_MESSAGE_FUNCTIONS(X) \
	X(C_MessageEncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
	X(C_EncryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
			     CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext, \
			     CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen)) \
	CY_3_0_MESSAGE_ENCRYPT_PARTS(X) \
	X(C_MessageEncryptFinal, (CK_SESSION_HANDLE hSession)) \
	X(C_MessageDecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
	X(C_DecryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
			     CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext, \
			     CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen)) \
	CY_3_0_MESSAGE_DECRYPT_PARTS(X) \
	X(C_MessageDecryptFinal, (CK_SESSION_HANDLE hSession)) \
	CY_3_0_MESSAGE_SIGN_FUNCTIONS(X)

/* The multi-part message forms (message.c). */
#define CY_3_0_MESSAGE_ENCRYPT_PARTS(X) \
	X(C_EncryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
				  CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)) \
	X(C_EncryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
				 CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, \
				 CK_BYTE_PTR pCiphertextPart, CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags))
#define CY_3_0_MESSAGE_DECRYPT_PARTS(X) \
	X(C_DecryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
				  CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)) \
	X(C_DecryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
				 CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, \
				 CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags))

/* Their sign and verify families (message.c). */
#define CY_3_0_MESSAGE_SIGN_FUNCTIONS(X) \
	X(C_MessageSignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
	X(C_SignMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
			  CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)) \
	X(C_SignMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)) \
	X(C_SignMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
			      CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)) \
	X(C_MessageSignFinal, (CK_SESSION_HANDLE hSession)) \
	X(C_MessageVerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
	X(C_VerifyMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
			    CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)) \
	X(C_VerifyMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)) \
	X(C_VerifyMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
				CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)) \
	X(C_MessageVerifyFinal, (CK_SESSION_HANDLE hSession))

#define CY_DECLARE(name, args) CK_RV name args;
CY_3_0_FUNCTIONS(CY_DECLARE)
#undef CY_DECLARE
#define CY_MEMBER(name, args) CK_RV (*name) args;
#define CY_MEMBER_2_40(name) CK_ ## name name;

/* CK_FUNCTION_LIST_3_0: the 2.40 list followed by the 3.0 functions. */
typedef struct CK_FUNCTION_LIST_3_0 {
	CK_VERSION version;
	CY_2_40_FUNCTIONS(CY_MEMBER_2_40)
	CY_3_0_FUNCTIONS(CY_MEMBER)
} CK_FUNCTION_LIST_3_0;
#undef CY_MEMBER
#undef CY_MEMBER_2_40
typedef CK_FUNCTION_LIST_3_0 *CK_FUNCTION_LIST_3_0_PTR;
#endif

#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN 0x1056UL
#endif
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x210bUL
#endif

/* SHA-3 mechanisms (PKCS#11 3.0). */
#ifndef CKM_SHA3_256
#define CKM_SHA3_256 0x2b0UL
#define CKM_SHA3_256_HMAC 0x2b1UL
#define CKM_SHA3_224 0x2b5UL
#define CKM_SHA3_224_HMAC 0x2b6UL
#define CKM_SHA3_384 0x2c0UL
#define CKM_SHA3_384_HMAC 0x2c1UL
#define CKM_SHA3_512 0x2d0UL
#define CKM_SHA3_512_HMAC 0x2d1UL
#endif

/* Vendor-defined attributes of coyeu. */
#define CKA_COYEU_KEY_STATE (CKA_VENDOR_DEFINED | 0x434f0001UL)
/* RFC 5280 CRLReason of a revoked key version. */
#define CKA_COYEU_REVOCATION_REASON (CKA_VENDOR_DEFINED | 0x434f0002UL)
/* The version number of a key version (1 for the first; absent means 1). */
#define CKA_COYEU_KEY_VERSION (CKA_VENDOR_DEFINED | 0x434f0003UL)
/* When the key version entered its state (seconds since 1970, UTC). */
#define CKA_COYEU_STATE_SINCE (CKA_VENDOR_DEFINED | 0x434f0004UL)

/* Values of CKA_COYEU_KEY_STATE: the life of a key version. */
enum coyeu_key_state {
	COYEU_KEY_PREACTIVE = 1,
	COYEU_KEY_ACTIVE = 2,
	COYEU_KEY_RETIRED = 3,   /* verify and decrypt only */
	COYEU_KEY_REVOKED = 4,   /* no use at all */
	COYEU_KEY_DESTROYED = 5, /* material wiped, metadata kept */
};

#endif
