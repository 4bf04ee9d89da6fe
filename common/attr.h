/*
 * attr.h - the attribute descriptor table.
 *
 * One table describes every attribute coyeu knows: how its value travels on
 * the wire (kind) and, per object class and key type, the rules of the
 * PKCS#11 attribute tables (required or forbidden on create/generate/unwrap,
 * sensitive, modifiable). The module uses only the kind; the daemon's object
 * code applies the rules.
 *
 * Wire form of a value: BOOL is one byte 0/1; ULONG is a big-endian u64;
 * MECHS is a list of big-endian u32 mechanism types; BYTES (dates, DER,
 * strings, big integers) is the bytes as they are; TEMPLATE (an attribute
 * array such as CKA_WRAP_TEMPLATE) is a u32 count, then per attribute its
 * u32 type and its value in wire form with a u32 length before it.
 */
#ifndef CY_ATTR_H
#define CY_ATTR_H

#include <stdint.h>
#include <stdbool.h>
#include "cy_pkcs11.h"

enum attr_kind {
	AK_BYTES = 0,
	AK_BOOL,
	AK_ULONG,
	AK_MECHS,
	AK_TEMPLATE, /* CKA_*_TEMPLATE: u32 count, then per attribute u32 type + u32 length + value */
};

/* Rule flags; the numbers are the footnotes of the PKCS#11 2.40 table 10. */
enum attr_flag {
	AF_REQ_CREATE = 1u << 0,   /* 1: must be given to C_CreateObject */
	AF_NO_CREATE = 1u << 1,    /* 2: must not be given to C_CreateObject */
	AF_REQ_GEN = 1u << 2,      /* 3: must be given when generated */
	AF_NO_GEN = 1u << 3,       /* 4: must not be given when generated */
	AF_NO_UNWRAP = 1u << 4,    /* 6: must not be given when unwrapped */
	AF_SENSITIVE = 1u << 5,    /* 7: hidden when sensitive or unextractable */
	AF_MODIFIABLE = 1u << 6,   /* 8: may change after creation */
	AF_SO_TRUE = 1u << 7,      /* 10: only the SO may set it to true */
	AF_ONLY_TRUE = 1u << 8,    /* 11: once true, read-only */
	AF_ONLY_FALSE = 1u << 9,   /* 12: once false, read-only */
	AF_COPY_CHANGE = 1u << 10, /* may change in C_CopyObject */
};

/* Object classes a rule applies to. */
enum attr_class {
	ACL_DATA = 1u << 0,
	ACL_CERT = 1u << 1,
	ACL_PUB = 1u << 2,
	ACL_PRIV = 1u << 3,
	ACL_SECRET = 1u << 4,
	ACL_KEY = ACL_PUB | ACL_PRIV | ACL_SECRET,
	ACL_ALL = 0x1f,
};

struct attr_desc {
	CK_ATTRIBUTE_TYPE type;
	const char *name;
	enum attr_kind kind;
	uint32_t classes;      /* enum attr_class mask */
	CK_KEY_TYPE key_type;  /* (CK_KEY_TYPE)-1: any key type */
	uint32_t flags;        /* enum attr_flag mask */
};

#define ATTR_ANY_KEY ((CK_KEY_TYPE)-1)

/* How type's value travels; AK_BYTES for types the table does not know. */
enum attr_kind attr_kind(CK_ATTRIBUTE_TYPE type);
/* A printable name for logs ("CKA_LABEL"), or NULL when unknown. */
const char *attr_name(CK_ATTRIBUTE_TYPE type);
/* The class bit for a CKO_ value, or 0 for classes coyeu does not hold. */
uint32_t attr_class_bit(CK_OBJECT_CLASS cls);
/* The rule for type on an object of class cls and key type kt, or NULL
 * when type does not belong on such an object. */
const struct attr_desc *attr_rule(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_ATTRIBUTE_TYPE type);
/* Iterates the rules: returns the i-th entry, NULL past the end. */
const struct attr_desc *attr_rule_at(unsigned i);

/*
 * Appends template t[0..n) as an 'A' field (see proto.h): each value in
 * wire form, checked against its kind (a CK_BBOOL is one byte, a
 * CK_ULONG is sizeof(CK_ULONG)); with values false, types only. CKR_OK,
 * CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_TYPE_INVALID / _VALUE_INVALID,
 * CKR_TEMPLATE_INCONSISTENT (too many) or CKR_DATA_LEN_RANGE (b is full).
 * The one template encoder: the module and the CLI both use it.
 */
struct wire_buf;
CK_RV attr_put_template(struct wire_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, bool values);

#endif
