/*
 * module_fixture.h - the fixture of the check_module* suites (see
 * module_fixture.c): a fresh daemon and a freshly loaded module per test
 * (Check forks per test).
 */
#ifndef MODULE_FIXTURE_H
#define MODULE_FIXTURE_H

#include <stdbool.h>

#include "cy_pkcs11.h"
#include "testutil.h"

extern struct tu_daemon *d;
extern void *lib;
extern CK_FUNCTION_LIST_PTR f;
extern CK_SLOT_ID slot;
extern const char *SO, *USER;
extern CK_BBOOL yes, no;

/* setup: daemon and module; setup_init: and C_Initialize; teardown. */
void load_module(void);
void setup(void);
void setup_init(void);
void teardown(void);
CK_SESSION_HANDLE new_token_session(bool login);
/* The module's PKCS#11 3.0 function list (C_GetInterface's default). */
CK_FUNCTION_LIST_3_0_PTR list_3_0(void);
void gen_rsa(CK_SESSION_HANDLE h, CK_ULONG bits, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
void sign_verify(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE type, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv, const CK_BYTE *data, CK_ULONG len, bool multipart);
void unhex(const char *h, CK_BYTE *out);
CK_OBJECT_HANDLE secret_key(CK_SESSION_HANDLE h, CK_KEY_TYPE kt, const char *hexval);

#endif
