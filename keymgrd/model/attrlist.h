/*
 * attrlist.h - attribute lists (model/attrlist.c): what objects and
 * templates are made of. Values are in wire form (see attr.h).
 */
#ifndef KM_ATTRLIST_H
#define KM_ATTRLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"
#include "wire.h"

struct attr {
	CK_ATTRIBUTE_TYPE type;
	uint32_t len;
	uint8_t *val;
};

struct attrlist {
	struct attr *v;
	size_t n, cap;
	bool secure; /* values allocated in secure memory */
};

void al_init(struct attrlist *l, bool secure);
void al_free(struct attrlist *l);
const struct attr *al_find(const struct attrlist *l, CK_ATTRIBUTE_TYPE type);
/* Sets (replacing) type to len bytes at val. */
int al_set(struct attrlist *l, CK_ATTRIBUTE_TYPE type, const void *val, size_t len);
int al_set_bool(struct attrlist *l, CK_ATTRIBUTE_TYPE type, bool v);
int al_set_ulong(struct attrlist *l, CK_ATTRIBUTE_TYPE type, uint64_t v);
void al_remove(struct attrlist *l, CK_ATTRIBUTE_TYPE type);
/* The boolean value of type, or dflt when absent or malformed. */
bool al_bool(const struct attrlist *l, CK_ATTRIBUTE_TYPE type, bool dflt);
/* 0 and *v, or CY_ERR_NOT_FOUND / CY_ERR_BAD_FORMAT. */
int al_ulong(const struct attrlist *l, CK_ATTRIBUTE_TYPE type, uint64_t *v);
/* Serialised form (u32 count, then u32 type + bytes value) for the store. */
int al_encode(const struct attrlist *l, struct wire_buf *b);
int al_decode(const uint8_t *p, size_t n, struct attrlist *l);
/* Reads a template ('A' in a message) into l; CKR_OK or a CK_RV
 * (CKR_ATTRIBUTE_VALUE_INVALID for a value of the wrong shape). */
CK_RV al_read_template(struct wire_buf *b, struct attrlist *l);

#endif
