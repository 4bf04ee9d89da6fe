/*
 * view.c - searches: each C_FindObjectsInit one request at most, and none
 * after a login to a remote keymgrd.
 *
 * FIND_INIT's answer carries the first PROTO_FIND_FIRST handles, and a
 * search they end is over in keymgrd; C_FindObjects hands them out from
 * here and asks for more only when keymgrd has more, C_FindObjectsFinal
 * sends nothing when there is nothing to end. Every code of
 * C_FindObjectsInit is still keymgrd's own.
 *
 * A LOGIN answer lists a holder token's objects (the few keymgrd would
 * find for an empty template: handle, class, type, CKA_ID, CKA_LABEL,
 * CKA_TOKEN, CKA_PRIVATE), good for a moment it names. When keymgrd is
 * remote (lazy.c knows the session's slot) and a search's template holds
 * only those attributes, the module matches it against that list itself:
 * the search after a login costs no round trip. The list goes at any
 * change to objects made through this module, at logout, and when a
 * session closes (its session objects go with it); what another
 * application creates in that moment is not in it, as it would not be in
 * a search that had run a moment earlier.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "module.h"

#define VIEW_SLOTS 16

struct view_obj {
	uint32_t h, cls, type, ops, flags;
	uint8_t id[256], label[256];
	uint32_t id_len, label_len;
};

struct view {
	CK_SLOT_ID slot;
	int64_t until; /* 0: free */
	struct view_obj *objs;
	size_t n;
};

/* A search under way in a session. */
struct search {
	CK_SESSION_HANDLE h;
	uint32_t *found;
	size_t n, pos;
	bool in_keymgrd; /* keymgrd has more: FIND, then FIND_FINAL */
	struct search *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct view views[VIEW_SLOTS];
static struct search *searches;

static void
view_clear(struct view *v)
{
	free(v->objs);
	memset(v, 0, sizeof(*v));
}

void
view_forget(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < VIEW_SLOTS; i++)
		view_clear(&views[i]);
	pthread_mutex_unlock(&lock);
}

void
view_take(CK_SLOT_ID slot, struct wire_buf *b)
{
	uint32_t ms = 0, n = 0;
	if (wire_get_u32(b, &ms) != 0 || wire_get_u32(b, &n) != 0 || ms == 0 || n == 0 || n > PROTO_VIEW_MAX)
		return;
	struct view_obj *o = calloc(n, sizeof(*o));
	if (o == NULL)
		return;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p;
		wire_get_u32(b, &o[i].h);
		wire_get_u32(b, &o[i].cls);
		wire_get_u32(b, &o[i].type);
		wire_get_u32(b, &o[i].ops);
		wire_get_u32(b, &o[i].flags);
		/* A value too long to keep is never matched here (keymgrd is asked). */
		if (wire_get_bytes(b, &p, &o[i].id_len) == 0 && o[i].id_len <= sizeof(o[i].id))
			memcpy(o[i].id, p, o[i].id_len);
		else
			o[i].id_len = UINT32_MAX;
		if (wire_get_bytes(b, &p, &o[i].label_len) == 0 && o[i].label_len <= sizeof(o[i].label))
			memcpy(o[i].label, p, o[i].label_len);
		else
			o[i].label_len = UINT32_MAX;
	}
	if (wire_error(b) != 0) {
		free(o);
		return;
	}
	pthread_mutex_lock(&lock);
	struct view *v = NULL;
	for (size_t i = 0; i < VIEW_SLOTS && v == NULL; i++)
		if (views[i].until != 0 && views[i].slot == slot)
			v = &views[i];
	for (size_t i = 0; i < VIEW_SLOTS && v == NULL; i++)
		if (views[i].until == 0)
			v = &views[i];
	if (v == NULL)
		v = &views[0];
	view_clear(v);
	*v = (struct view){ slot, mod_now_ms() + ms, o, n };
	pthread_mutex_unlock(&lock);
}

/* CK_ULONG value of t, when it is one. */
static bool
ulong_of(const CK_ATTRIBUTE *t, uint32_t *v)
{
	if (t->pValue == NULL || t->ulValueLen != sizeof(CK_ULONG) || *(const CK_ULONG *)t->pValue > UINT32_MAX)
		return false;
	*v = (uint32_t)*(const CK_ULONG *)t->pValue;
	return true;
}

/* Whether the list can tell if o matches template t (then *match says),
 * attribute by attribute as keymgrd compares them. */
static bool
matches(const struct view_obj *o, const CK_ATTRIBUTE *t, CK_ULONG n, bool *match)
{
	*match = true;
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = &t[i];
		uint32_t v = 0;
		bool is = false;
		switch (a->type) {
		case CKA_CLASS:
			if (!ulong_of(a, &v))
				return false;
			is = o->cls == v;
			break;
		case CKA_KEY_TYPE:
		case CKA_CERTIFICATE_TYPE: {
			bool key = o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_SECRET_KEY;
			if (!ulong_of(a, &v))
				return false;
			bool has = (o->flags & VIEW_HAS_TYPE) && (a->type == CKA_KEY_TYPE ? key : o->cls == CKO_CERTIFICATE);
			is = has && o->type == v;
			break;
		}
		case CKA_TOKEN:
		case CKA_PRIVATE: {
			if (a->pValue == NULL || a->ulValueLen != 1 || *(const CK_BBOOL *)a->pValue > 1)
				return false;
			bool set = o->flags & (a->type == CKA_TOKEN ? VIEW_TOKEN : VIEW_PRIVATE);
			is = set == (*(const CK_BBOOL *)a->pValue == CK_TRUE);
			break;
		}
		case CKA_ID:
		case CKA_LABEL: {
			bool id = a->type == CKA_ID;
			uint32_t len = id ? o->id_len : o->label_len;
			if ((a->pValue == NULL && a->ulValueLen != 0) || len == UINT32_MAX)
				return false;
			bool has = o->flags & (id ? VIEW_HAS_ID : VIEW_HAS_LABEL);
			is = has && a->ulValueLen == len &&
			     (len == 0 || memcmp(id ? o->id : o->label, a->pValue, len) == 0);
			break;
		}
		default:
			return false;
		}
		*match = *match && is;
	}
	return true;
}

/* A new search of session h with found[0..n) (taken over), more in
 * keymgrd when in_keymgrd. Under lock. */
static CK_RV
search_add(CK_SESSION_HANDLE h, uint32_t *found, size_t n, bool in_keymgrd)
{
	struct search *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		free(found);
		return CKR_HOST_MEMORY;
	}
	*s = (struct search){ h, found, n, 0, in_keymgrd, searches };
	searches = s;
	return CKR_OK;
}

static struct search **
search_of(CK_SESSION_HANDLE h)
{
	struct search **pp = &searches;
	while (*pp != NULL && (*pp)->h != h)
		pp = &(*pp)->next;
	return pp;
}

/* The search in the list of session h on slot: CKR_OK with *done when
 * the list could answer it, noting the keys for defer.c. */
static CK_RV
local_search(CK_SESSION_HANDLE h, CK_SLOT_ID slot, const CK_ATTRIBUTE *t, CK_ULONG n, uint32_t valid_ms,
	     bool *done)
{
	*done = false;
	struct view *v = NULL;
	int64_t now = mod_now_ms();
	for (size_t i = 0; i < VIEW_SLOTS && v == NULL; i++)
		if (views[i].until > now && views[i].slot == slot)
			v = &views[i];
	if (v == NULL)
		return CKR_OK;
	uint32_t *found = malloc((v->n ? v->n : 1) * sizeof(*found));
	if (found == NULL)
		return CKR_OK; /* keymgrd then */
	size_t k = 0;
	for (size_t i = 0; i < v->n; i++) {
		bool match;
		if (!matches(&v->objs[i], t, n, &match)) {
			free(found);
			return CKR_OK;
		}
		if (match)
			found[k++] = v->objs[i].h;
	}
	for (size_t i = 0; i < v->n; i++)
		if (v->objs[i].ops != 0)
			defer_note_key(h, v->objs[i].h, v->objs[i].cls, v->objs[i].type, v->objs[i].ops, valid_ms);
	*done = true;
	return search_add(h, found, k, false);
}

/* Reads a FIND or FIND_INIT record list into *out (malloc'd), noting the
 * key summaries for defer.c. */
static CK_RV
read_found(struct rpc *r, CK_SESSION_HANDLE h, uint32_t **out, uint32_t *n)
{
	*out = NULL;
	if (wire_get_u32(r->rep, n) != 0 || *n > PROTO_MAX_LIST)
		return CKR_DEVICE_ERROR;
	uint32_t *found = malloc((*n ? *n : 1) * sizeof(*found));
	if (found == NULL)
		return CKR_HOST_MEMORY;
	for (uint32_t i = 0; i < *n; i++) {
		uint32_t obj = 0, cls = 0, kt = 0, ops = 0;
		wire_get_u32(r->rep, &obj);
		wire_get_u32(r->rep, &cls);
		wire_get_u32(r->rep, &kt);
		wire_get_u32(r->rep, &ops);
		found[i] = obj;
		/* What keymgrd says of a key it found (defer.c). */
		if (ops != 0)
			defer_note_key(h, obj, cls, kt, ops, r->c->cache_ms);
	}
	if (rpc_check(r) != CKR_OK) {
		free(found);
		return CKR_DEVICE_ERROR;
	}
	*out = found;
	return CKR_OK;
}

CK_RV
C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct rpc r;
	if (pTemplate == NULL && ulCount)
		return mod_bad_args();
	CK_RV rv = rpc_begin_session(&r, MSG_FIND_INIT, hSession);
	if (rv != CKR_OK)
		return rv;
	if ((rv = attr_put_template(r.req, pTemplate, ulCount, true)) != CKR_OK) {
		rpc_end(&r);
		/* A type or value no object can have matches nothing. */
		return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID
		       ? CKR_ATTRIBUTE_VALUE_INVALID : rv;
	}
	wire_put_u32(r.req, PROTO_FIND_FIRST);
	pthread_mutex_lock(&lock);
	CK_SLOT_ID slot;
	bool done = false;
	if (*search_of(hSession) != NULL)
		rv = CKR_OPERATION_ACTIVE;
	else if (lazy_slot_of((uint32_t)hSession, &slot))
		rv = local_search(hSession, slot, pTemplate, ulCount, r.c->cache_ms, &done);
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK || done) {
		rpc_end(&r);
		return rv;
	}
	if ((rv = rpc_call(&r)) == CKR_OK) {
		uint8_t over = 1;
		uint32_t *found, n;
		wire_get_u8(r.rep, &over);
		if ((rv = read_found(&r, hSession, &found, &n)) == CKR_OK) {
			pthread_mutex_lock(&lock);
			rv = search_add(hSession, found, n, !over);
			pthread_mutex_unlock(&lock);
		} else if (rv == CKR_DEVICE_ERROR) {
			r.broken = true;
		}
	}
	rpc_end(&r);
	return rv;
}

/* FIND for up to max more of session h's search, into its list. */
static CK_RV
fetch_more(CK_SESSION_HANDLE h, CK_ULONG max)
{
	struct rpc r;
	CK_RV rv = rpc_begin_session(&r, MSG_FIND, h);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r.req, max > PROTO_MAX_LIST ? PROTO_MAX_LIST : (uint32_t)max);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		uint32_t *found, n;
		if ((rv = read_found(&r, h, &found, &n)) == CKR_OK) {
			pthread_mutex_lock(&lock);
			struct search *s = *search_of(h);
			if (s != NULL) {
				free(s->found);
				s->found = found;
				s->n = n;
				s->pos = 0;
				s->in_keymgrd = n > 0;
			} else {
				free(found);
			}
			pthread_mutex_unlock(&lock);
		} else if (rv == CKR_DEVICE_ERROR) {
			r.broken = true;
		}
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
	      CK_ULONG_PTR pulObjectCount)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (phObject == NULL || pulObjectCount == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	struct search *s = *search_of(hSession);
	bool more = s != NULL && s->pos == s->n && s->in_keymgrd && ulMaxObjectCount > 0;
	pthread_mutex_unlock(&lock);
	if (s == NULL) {
		/* Not one of ours: keymgrd says why (no such session, no search). */
		struct rpc r;
		if ((rv = rpc_begin_session(&r, MSG_FIND, hSession)) != CKR_OK)
			return rv;
		wire_put_u32(r.req, 0);
		rv = rpc_call_none(&r);
		return rv == CKR_OK ? CKR_OPERATION_NOT_INITIALIZED : rv;
	}
	if (more && (rv = fetch_more(hSession, ulMaxObjectCount)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	CK_ULONG k = 0;
	if ((s = *search_of(hSession)) != NULL)
		for (; k < ulMaxObjectCount && s->pos < s->n; k++)
			phObject[k] = s->found[s->pos++];
	*pulObjectCount = k;
	pthread_mutex_unlock(&lock);
	return CKR_OK;
}

/* Forgets session h's search; whether keymgrd still has it going. */
static bool
search_end(CK_SESSION_HANDLE h, bool *had)
{
	pthread_mutex_lock(&lock);
	struct search **pp = search_of(h), *s = *pp;
	bool in_keymgrd = s != NULL && s->in_keymgrd;
	*had = s != NULL;
	if (s != NULL) {
		*pp = s->next;
		free(s->found);
		free(s);
	}
	pthread_mutex_unlock(&lock);
	return in_keymgrd;
}

CK_RV
C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	bool had;
	if (!search_end(hSession, &had) && had)
		return CKR_OK;
	/* keymgrd ends its search, or says why there is none. */
	struct rpc r;
	if ((rv = rpc_begin_session(&r, MSG_FIND_FINAL, hSession)) != CKR_OK)
		return rv;
	return rpc_call_none(&r);
}

void
view_end_search(CK_SESSION_HANDLE h)
{
	bool had;
	(void)search_end(h, &had);
}

void
view_forget_session(CK_SESSION_HANDLE h)
{
	view_end_search(h);
	view_forget();
}

void
view_forget_all(void)
{
	pthread_mutex_lock(&lock);
	while (searches != NULL) {
		struct search *s = searches;
		searches = s->next;
		free(s->found);
		free(s);
	}
	for (size_t i = 0; i < VIEW_SLOTS; i++)
		view_clear(&views[i]);
	pthread_mutex_unlock(&lock);
}

void
view_child_reset(void)
{
	/* The parent's lists are the parent's: let them go unfreed. */
	pthread_mutex_init(&lock, NULL);
	searches = NULL;
	memset(views, 0, sizeof(views));
}
