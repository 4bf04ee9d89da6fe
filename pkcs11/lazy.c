/*
 * lazy.c - the sessions of an application whose keymgrd is remote: opens
 * sent with the session's first request, closes sent with the next one.
 *
 * Over a link where a round trip costs 100-600 ms, C_OpenSession and
 * C_CloseSession as requests of their own cost two of the four a whole
 * pkcs11-tool run may take. The module names its sessions itself (OPEN_
 * SESSION takes the handle it asks for), so C_OpenSession can answer when
 * everything keymgrd would check is known here: the token is in a fresh
 * snapshot, a read-write session is not refused (CKF_WRITE_PROTECTED), a
 * read-only one cannot meet an SO login of this application, and the
 * application has fewer sessions than keymgrd allows (HELLO). The open
 * then goes first in the batch of the session's first request. What
 * keymgrd refuses all the same (the token went away meanwhile) comes from
 * that request as a code it may return (lazy_open_rv), and the session is
 * gone. A session closed here goes to keymgrd before the next request, on
 * any session; at C_Finalize BYE ends them all, so they are never sent.
 *
 * Over a UNIX socket (a round trip costs microseconds) opens and closes are
 * requests of their own; the table still holds every session, so that
 * after a failover (a keymgrd that does not know the application) each is
 * opened again, the same way, with its next request (lazy_reopen_all).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"

/* Closes kept for the next request; one more is sent at once. */
#define LAZY_CLOSES 32

struct lazy_session {
	uint32_t h, slot, flags;
	bool pending; /* not yet opened in keymgrd */
	bool sending; /* its open is in a batch on its way */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Ascending by handle (the module's handles only grow). */
static struct lazy_session *tab;
static size_t ntab, captab;
static uint32_t closes[LAZY_CLOSES];
static size_t ncloses;
static bool so_seen;

/* The index of h in tab, or -1. Under lock. */
static long
find(uint32_t h)
{
	size_t lo = 0, hi = ntab;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tab[mid].h == h)
			return (long)mid;
		if (tab[mid].h < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void
drop_at(size_t i)
{
	memmove(&tab[i], &tab[i + 1], (ntab - i - 1) * sizeof(tab[0]));
	ntab--;
}

void
lazy_reset(void)
{
	pthread_mutex_lock(&lock);
	free(tab);
	tab = NULL;
	ntab = captab = ncloses = 0;
	so_seen = false;
	pthread_mutex_unlock(&lock);
}

void
lazy_child_reset(void)
{
	pthread_mutex_init(&lock, NULL);
	lazy_reset();
}

CK_RV
lazy_add(uint32_t h, uint32_t slot, uint32_t flags, bool pending)
{
	CK_RV rv = CKR_OK;
	pthread_mutex_lock(&lock);
	if (ntab == captab) {
		size_t cap = captab ? 2 * captab : 16;
		struct lazy_session *t = realloc(tab, cap * sizeof(*t));
		if (t == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		tab = t;
		captab = cap;
	}
	/* Handles grow, so h goes last but for a wrap of the counter. */
	size_t at = ntab;
	while (at > 0 && tab[at - 1].h > h)
		at--;
	memmove(&tab[at + 1], &tab[at], (ntab - at) * sizeof(tab[0]));
	tab[at] = (struct lazy_session){ h, slot, flags, pending, false };
	ntab++;
out:
	pthread_mutex_unlock(&lock);
	return rv;
}

size_t
lazy_count(void)
{
	pthread_mutex_lock(&lock);
	size_t n = ntab;
	pthread_mutex_unlock(&lock);
	return n;
}

bool
lazy_session_of(uint32_t h, CK_SLOT_ID *slot, CK_FLAGS *flags)
{
	pthread_mutex_lock(&lock);
	long i = find(h);
	if (i >= 0) {
		*slot = tab[i].slot;
		*flags = tab[i].flags;
	}
	pthread_mutex_unlock(&lock);
	return i >= 0;
}

bool
lazy_slot_of(uint32_t h, CK_SLOT_ID *slot)
{
	CK_FLAGS flags;
	return lazy_session_of(h, slot, &flags);
}

void
lazy_forget(uint32_t h)
{
	pthread_mutex_lock(&lock);
	long i = find(h);
	if (i >= 0)
		drop_at((size_t)i);
	pthread_mutex_unlock(&lock);
}

enum lazy_close
lazy_close(uint32_t h, bool keep)
{
	enum lazy_close how = LAZY_UNKNOWN;
	pthread_mutex_lock(&lock);
	long i = find(h);
	if (i >= 0) {
		how = LAZY_SEND;
		bool pending = tab[i].pending && !tab[i].sending;
		drop_at((size_t)i);
		if (pending)
			how = LAZY_DROPPED; /* keymgrd never heard of it */
		else if (keep && ncloses < LAZY_CLOSES) {
			closes[ncloses++] = h;
			how = LAZY_KEPT;
		}
	}
	pthread_mutex_unlock(&lock);
	return how;
}

void
lazy_close_slot(CK_SLOT_ID slot, uint32_t **hs, size_t *n)
{
	pthread_mutex_lock(&lock);
	*hs = malloc((ntab ? ntab : 1) * sizeof(**hs));
	*n = 0;
	for (size_t i = ntab; i-- > 0;) {
		if (tab[i].slot != slot)
			continue;
		if (*hs != NULL)
			(*hs)[(*n)++] = tab[i].h;
		drop_at(i);
	}
	pthread_mutex_unlock(&lock);
}

void
lazy_note_so(void)
{
	pthread_mutex_lock(&lock);
	so_seen = true;
	pthread_mutex_unlock(&lock);
}

bool
lazy_so_seen(void)
{
	pthread_mutex_lock(&lock);
	bool seen = so_seen;
	pthread_mutex_unlock(&lock);
	return seen;
}

void
lazy_reopen_all(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ntab; i++)
		tab[i].pending = true;
	ncloses = 0; /* closes of sessions the new keymgrd never had */
	pthread_mutex_unlock(&lock);
}

bool
lazy_take_open(uint32_t h, struct wire_buf *out)
{
	bool taken = false;
	pthread_mutex_lock(&lock);
	long i = h != 0 ? find(h) : -1;
	if (i >= 0 && tab[i].pending && !tab[i].sending) {
		wire_init(out, 64);
		proto_begin_request(out, MSG_OPEN_SESSION);
		wire_put_u32(out, tab[i].slot);
		wire_put_u32(out, tab[i].flags);
		wire_put_u32(out, h);
		tab[i].sending = true;
		taken = true;
	}
	pthread_mutex_unlock(&lock);
	return taken;
}

void
lazy_open_done(uint32_t h, bool sent, CK_RV rv)
{
	pthread_mutex_lock(&lock);
	long i = find(h);
	if (i >= 0) {
		tab[i].sending = false;
		if (!sent)
			; /* the link failed: send it again (keymgrd takes an open twice) */
		else if (rv == CKR_OK)
			tab[i].pending = false;
		else
			drop_at((size_t)i); /* refused: the session never was */
	}
	pthread_mutex_unlock(&lock);
}

CK_RV
lazy_open_rv(CK_RV rv)
{
	switch (rv) {
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_MEMORY:
	case CKR_GENERAL_ERROR:
		return rv;
	case CKR_SESSION_COUNT:
		return CKR_DEVICE_MEMORY;
	case CKR_SLOT_ID_INVALID:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
		return CKR_DEVICE_REMOVED;
	default:
		return CKR_SESSION_CLOSED;
	}
}

bool
lazy_take_closes(struct wire_buf *out, size_t *n)
{
	pthread_mutex_lock(&lock);
	*n = ncloses;
	if (ncloses > 0) {
		wire_init(out, 16 + 4 * LAZY_CLOSES);
		proto_begin_request(out, MSG_CLOSE_SESSIONS);
		wire_put_u32(out, (uint32_t)ncloses);
		for (size_t i = 0; i < ncloses; i++)
			wire_put_u32(out, closes[i]);
	}
	pthread_mutex_unlock(&lock);
	return *n > 0;
}

void
lazy_closes_done(const struct wire_buf *sent, size_t n)
{
	/* The handles sent are the fields after type and count. */
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < n; k++) {
		uint32_t h = wire_load_u32(sent->data + 8 + 4 * k);
		for (size_t i = 0; i < ncloses; i++)
			if (closes[i] == h) {
				closes[i] = closes[--ncloses];
				break;
			}
	}
	pthread_mutex_unlock(&lock);
}
