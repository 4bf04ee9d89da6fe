/*
 * slots.c - slot and token management: slots, tokens, mechanisms, PINs
 * (PKCS#11 2.40 section 5.5).
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "module.h"

/*
 * What HELLO said of the slots this application sees and their tokens
 * (when they are few), for keymgrd's snapshot_ms: C_GetSlotList,
 * C_GetSlotInfo and C_GetTokenInfo answer from it meanwhile, which over a
 * slow link saves a round trip each. It goes at once when this module
 * changes what it shows (a login, a PIN, a token made, sessions closed);
 * a session opened is counted in.
 */
#define SNAP_SLOTS 16
struct snap_token {
	uint32_t slot;
	char label[33], manuf[33], model[17], serial[17];
	uint32_t v[7]; /* flags, sessions, rw sessions, min and max PIN, firmware */
};
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int64_t until; /* ms, monotonic; 0: none */
	size_t n;
	struct snap_token t[SNAP_SLOTS];
} snap;

void
slots_take_snapshot(struct wire_buf *b)
{
	uint32_t ms = 0, n = 0;
	struct snap_token t[SNAP_SLOTS];
	if (wire_get_u32(b, &ms) != 0 || wire_get_u32(b, &n) != 0 || ms == 0 || n > SNAP_SLOTS)
		return;
	for (uint32_t i = 0; i < n; i++) {
		wire_get_u32(b, &t[i].slot);
		wire_get_str_into(b, t[i].label, sizeof(t[i].label));
		wire_get_str_into(b, t[i].manuf, sizeof(t[i].manuf));
		wire_get_str_into(b, t[i].model, sizeof(t[i].model));
		wire_get_str_into(b, t[i].serial, sizeof(t[i].serial));
		for (int k = 0; k < 7; k++)
			wire_get_u32(b, &t[i].v[k]);
	}
	if (wire_error(b) != 0)
		return;
	pthread_mutex_lock(&snap_lock);
	memcpy(snap.t, t, n * sizeof(t[0]));
	snap.n = n;
	snap.until = mod_now_ms() + ms;
	pthread_mutex_unlock(&snap_lock);
}

bool
slots_token_flags(CK_SLOT_ID slot, CK_FLAGS *flags)
{
	bool found = false;
	pthread_mutex_lock(&snap_lock);
	if (snap.until > mod_now_ms())
		for (size_t i = 0; i < snap.n && !found; i++)
			if (snap.t[i].slot == slot) {
				*flags = snap.t[i].v[0];
				found = true;
			}
	pthread_mutex_unlock(&snap_lock);
	return found;
}

void
slots_forget_snapshot(void)
{
	pthread_mutex_lock(&snap_lock);
	snap.until = 0;
	pthread_mutex_unlock(&snap_lock);
}

void
slots_note_session(CK_SLOT_ID slot, bool rw, int delta)
{
	pthread_mutex_lock(&snap_lock);
	for (size_t i = 0; i < snap.n; i++) {
		if (snap.t[i].slot == slot) {
			snap.t[i].v[1] += (uint32_t)delta;
			snap.t[i].v[2] += rw ? (uint32_t)delta : 0;
		}
	}
	pthread_mutex_unlock(&snap_lock);
}

/* Slot's token as the snapshot has it: true when it is fresh and has it
 * (slot CK_UNAVAILABLE_INFORMATION: just whether it is fresh). */
static bool
snap_find(CK_SLOT_ID slot, struct snap_token *out)
{
	bool found = false;
	pthread_mutex_lock(&snap_lock);
	if (snap.until > mod_now_ms()) {
		found = slot == CK_UNAVAILABLE_INFORMATION;
		for (size_t i = 0; i < snap.n && !found; i++)
			if (snap.t[i].slot == slot) {
				*out = snap.t[i];
				found = true;
			}
	}
	pthread_mutex_unlock(&snap_lock);
	return found;
}

/* The slot list from the snapshot, when fresh: CKR_OK, CKR_BUFFER_TOO_SMALL,
 * or -1 when it is not. */
static CK_RV
snap_slot_list(CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = (CK_RV)-1;
	pthread_mutex_lock(&snap_lock);
	if (snap.until > mod_now_ms()) {
		rv = CKR_OK;
		if (list != NULL && *count < snap.n)
			rv = CKR_BUFFER_TOO_SMALL;
		else if (list != NULL)
			for (size_t i = 0; i < snap.n; i++)
				list[i] = snap.t[i].slot;
		*count = snap.n;
	}
	pthread_mutex_unlock(&snap_lock);
	return rv;
}

/* C_GetSlotList once the module is known to be initialised; from the
 * snapshot unless fresh (C_WaitForSlotEvent asks keymgrd every time). */
static CK_RV
slot_list(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount, bool fresh)
{
	struct rpc r;
	uint32_t n = 0;
	CK_RV rv = rpc_begin(&r, MSG_SLOT_LIST, CKR_TOKEN_NOT_PRESENT);
	if (rv == CKR_TOKEN_NOT_PRESENT) {
		/* No daemon: no slots, as a reader with nothing plugged in. */
		*pulCount = 0;
		return CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	/* (The connection's HELLO may have brought the snapshot just now.) */
	if (!fresh && (rv = snap_slot_list(pSlotList, pulCount)) != (CK_RV)-1) {
		rpc_end(&r);
		return rv;
	}
	wire_put_u8(r.req, tokenPresent != CK_FALSE);
	if ((rv = rpc_call(&r)) != CKR_OK)
		goto out;
	wire_get_u32(r.rep, &n);
	if ((rv = rpc_check(&r)) != CKR_OK)
		goto out;
	if (pSlotList == NULL) {
		*pulCount = n;
		goto out;
	}
	if (*pulCount < n) {
		*pulCount = n;
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = 0;
		wire_get_u32(r.rep, &id);
		pSlotList[i] = id;
	}
	*pulCount = n;
	rv = rpc_check(&r);
out:
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	return slot_list(tokenPresent, pSlotList, pulCount, false);
}

/* ---- slot events ---- */

/* The slots C_WaitForSlotEvent saw last (ascending): an event is a slot
 * that appeared (a holder's token granted, a token made) or went (access
 * revoked) since. Counted from the first call after C_Initialize. */
static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_SLOT_ID *seen;
static CK_ULONG nseen;
static bool have_seen;

static int
slot_cmp(const void *a, const void *b)
{
	CK_SLOT_ID x = *(const CK_SLOT_ID *)a, y = *(const CK_SLOT_ID *)b;
	return x < y ? -1 : x > y;
}

/* Every slot now, ascending; *out malloc'd. */
static CK_RV
slots_now(CK_SLOT_ID **out, CK_ULONG *n)
{
	*out = NULL;
	for (int tries = 0; tries < 4; tries++) {
		CK_ULONG count = 0;
		CK_RV rv = slot_list(CK_TRUE, NULL, &count, true);
		if (rv != CKR_OK)
			return rv;
		CK_SLOT_ID *v = calloc(count ? count : 1, sizeof(*v));
		if (v == NULL)
			return CKR_HOST_MEMORY;
		rv = slot_list(CK_TRUE, v, &count, true);
		if (rv == CKR_BUFFER_TOO_SMALL) { /* a slot came meanwhile */
			free(v);
			continue;
		}
		if (rv != CKR_OK) {
			free(v);
			return rv;
		}
		qsort(v, count, sizeof(*v), slot_cmp);
		*out = v;
		*n = count;
		return CKR_OK;
	}
	return CKR_GENERAL_ERROR;
}

void
slots_forget_events(void)
{
	pthread_mutex_lock(&event_lock);
	free(seen);
	seen = NULL;
	nseen = 0;
	have_seen = false;
	pthread_mutex_unlock(&event_lock);
}

/* The next event into *pSlot (CKR_OK), or CKR_NO_EVENT. */
static CK_RV
next_event(CK_SLOT_ID_PTR pSlot)
{
	CK_SLOT_ID *cur;
	CK_ULONG ncur = 0;
	CK_RV rv = slots_now(&cur, &ncur);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&event_lock);
	rv = CKR_NO_EVENT;
	if (!have_seen) {
		seen = cur;
		nseen = ncur;
		have_seen = true;
		cur = NULL;
	} else {
		/* The first slot in one list and not the other is the event;
		 * the one after is for the next call. */
		CK_ULONG i = 0, j = 0;
		while (i < ncur || j < nseen) {
			if (i < ncur && j < nseen && cur[i] == seen[j]) {
				i++;
				j++;
				continue;
			}
			*pSlot = i < ncur && (j == nseen || cur[i] < seen[j]) ? cur[i] : seen[j];
			rv = CKR_OK;
			break;
		}
		if (rv == CKR_OK) {
			/* That one is seen now: added to (or taken from) the list;
			 * later differences stay for the next calls. */
			CK_SLOT_ID ev = *pSlot;
			bool appeared = bsearch(&ev, cur, ncur, sizeof(*cur), slot_cmp) != NULL;
			CK_SLOT_ID *nv = calloc(nseen + 1, sizeof(*nv));
			if (nv == NULL) {
				rv = CKR_HOST_MEMORY;
			} else {
				CK_ULONG k = 0;
				bool placed = !appeared;
				for (CK_ULONG x = 0; x < nseen; x++) {
					if (!placed && ev < seen[x]) {
						nv[k++] = ev;
						placed = true;
					}
					if (appeared || seen[x] != ev)
						nv[k++] = seen[x];
				}
				if (!placed)
					nv[k++] = ev;
				free(seen);
				seen = nv;
				nseen = k;
			}
		}
	}
	pthread_mutex_unlock(&event_lock);
	free(cur);
	return rv;
}

/*
 * The blocking form: keymgrd has no push, so the slots are asked for again
 * every POLL_MS (REMOTE_POLL_MS over a tls:// link, where each ask is a
 * round trip). C_Finalize ends every wait (slots_cancel_waits): the wait
 * then returns CKR_CRYPTOKI_NOT_INITIALIZED, as 2.40 section 5.5 says.
 */
#define POLL_MS 1000
#define REMOTE_POLL_MS 10000

static pthread_cond_t event_cond = PTHREAD_COND_INITIALIZER; /* a finalize, or a waiter leaving */
static uint64_t finalizes;  /* how many C_Finalize calls ended the waits; under event_lock */
static unsigned waiters;

static CK_RV
wait_event(CK_SLOT_ID_PTR pSlot)
{
	pthread_mutex_lock(&event_lock);
	uint64_t gen = finalizes;
	waiters++;
	pthread_mutex_unlock(&event_lock);
	CK_RV rv;
	for (;;) {
		rv = next_event(pSlot);
		pthread_mutex_lock(&event_lock);
		if (finalizes != gen || mod_ready() != CKR_OK) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		} else if (rv == CKR_NO_EVENT) {
			struct timespec until;
			long ms = rpc_remote() ? REMOTE_POLL_MS : POLL_MS;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += ms / 1000;
			until.tv_nsec += (ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&event_cond, &event_lock, &until);
			if (finalizes != gen)
				rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		}
		if (rv != CKR_NO_EVENT)
			break;
		pthread_mutex_unlock(&event_lock);
	}
	waiters--;
	pthread_cond_broadcast(&event_cond);
	pthread_mutex_unlock(&event_lock);
	return rv;
}

void
slots_child_reset(void)
{
	/* The parent's waiting threads are not in this process. */
	pthread_mutex_init(&event_lock, NULL);
	pthread_cond_init(&event_cond, NULL);
	waiters = 0;
}

void
slots_cancel_waits(void)
{
	pthread_mutex_lock(&event_lock);
	finalizes++;
	pthread_cond_broadcast(&event_cond);
	/* A waiter in the middle of asking keymgrd finishes that ask first
	 * (bounded by the link's timeouts), then leaves. */
	while (waiters > 0)
		pthread_cond_wait(&event_cond, &event_lock);
	pthread_mutex_unlock(&event_lock);
}

CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pSlot == NULL || pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	return flags & CKF_DONT_BLOCK ? next_event(pSlot) : wait_event(pSlot);
}

CK_RV
C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	struct rpc r;
	char desc[65], manuf[33];
	uint32_t flags = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	struct snap_token st;
	if (snap_find(slotID, &st)) {
		/* What SLOT_INFO says of every slot (keymgrd's h_token.c). */
		memset(pInfo, 0, sizeof(*pInfo));
		snprintf(desc, sizeof(desc), "coyeu keymgrd slot %lu", (unsigned long)slotID);
		pad_field(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
		pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "coyeu");
		pInfo->flags = CKF_TOKEN_PRESENT;
		pInfo->firmwareVersion.minor = 1;
		return CKR_OK;
	}
	if ((rv = rpc_begin(&r, MSG_SLOT_INFO, CKR_SLOT_ID_INVALID)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_str_into(r.rep, desc, sizeof(desc));
		wire_get_str_into(r.rep, manuf, sizeof(manuf));
		wire_get_u32(r.rep, &flags);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			memset(pInfo, 0, sizeof(*pInfo));
			pad_field(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
			pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), manuf);
			pInfo->flags = flags;
			pInfo->firmwareVersion.minor = 1;
		}
	}
	rpc_end(&r);
	return rv;
}

/* A CK_TOKEN_INFO from TOKEN_INFO's fields. */
static void
fill_token_info(CK_TOKEN_INFO_PTR pInfo, const struct snap_token *t)
{
	memset(pInfo, 0, sizeof(*pInfo));
	pad_field(pInfo->label, sizeof(pInfo->label), t->label);
	pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), t->manuf);
	pad_field(pInfo->model, sizeof(pInfo->model), t->model);
	pad_field(pInfo->serialNumber, sizeof(pInfo->serialNumber), t->serial);
	pInfo->flags = t->v[0];
	pInfo->ulSessionCount = t->v[1];
	pInfo->ulRwSessionCount = t->v[2];
	pInfo->ulMinPinLen = t->v[3];
	pInfo->ulMaxPinLen = t->v[4];
	pInfo->firmwareVersion.major = (CK_BYTE)t->v[5];
	pInfo->firmwareVersion.minor = (CK_BYTE)t->v[6];
	pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pad_field(pInfo->utcTime, sizeof(pInfo->utcTime), "");
}

CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct rpc r;
	struct snap_token t;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (snap_find(slotID, &t)) {
		fill_token_info(pInfo, &t);
		return CKR_OK;
	}
	if ((rv = rpc_begin(&r, MSG_TOKEN_INFO, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_str_into(r.rep, t.label, sizeof(t.label));
		wire_get_str_into(r.rep, t.manuf, sizeof(t.manuf));
		wire_get_str_into(r.rep, t.model, sizeof(t.model));
		wire_get_str_into(r.rep, t.serial, sizeof(t.serial));
		for (int i = 0; i < 7; i++)
			wire_get_u32(r.rep, &t.v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK)
			fill_token_info(pInfo, &t);
	}
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
	struct rpc r;
	uint32_t n = 0;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_MECH_LIST, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) != CKR_OK)
		goto out;
	wire_get_u32(r.rep, &n);
	if ((rv = rpc_check(&r)) != CKR_OK)
		goto out;
	if (pMechanismList != NULL && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pMechanismList != NULL)
		for (uint32_t i = 0; i < n; i++) {
			uint32_t m = 0;
			wire_get_u32(r.rep, &m);
			pMechanismList[i] = m;
		}
	*pulCount = n;
	if (rv == CKR_OK)
		rv = rpc_check(&r);
out:
	rpc_end(&r);
	return rv;
}

CK_RV
C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	struct rpc r;
	uint32_t v[3] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (!fits_u32(type))
		return CKR_MECHANISM_INVALID;
	if ((rv = rpc_begin(&r, MSG_MECH_INFO, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_u32(r.req, (uint32_t)type);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		for (int i = 0; i < 3; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			pInfo->ulMinKeySize = v[0];
			pInfo->ulMaxKeySize = v[1];
			pInfo->flags = v[2];
		}
	}
	rpc_end(&r);
	return rv;
}


CK_RV
C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pLabel == NULL || (pPin == NULL && ulPinLen != 0))
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if (ulPinLen > 4096)
		return CKR_PIN_LEN_RANGE;
	/* The label is 32 blank-padded bytes; the daemon keeps it unpadded. */
	size_t ll = 32;
	while (ll > 0 && (pLabel[ll - 1] == ' ' || pLabel[ll - 1] == '\0'))
		ll--;
	for (size_t i = 0; i < ll; i++)
		if (pLabel[i] == '\0') {
			ll = i;
			break;
		}
	slots_forget_snapshot(); /* what the token shows changes */
	if ((rv = rpc_begin(&r, MSG_INIT_TOKEN, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	wire_put_bytes(r.req, pPin, ulPinLen);
	wire_put_bytes(r.req, pLabel, ll);
	return rpc_call_none(&r);
}

CK_RV
C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pPin == NULL && ulPinLen != 0)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if (ulPinLen > 4096)
		return CKR_PIN_LEN_RANGE;
	slots_forget_snapshot(); /* what the token shows changes */
	if ((rv = rpc_begin_session(&r, MSG_INIT_PIN, hSession)) != CKR_OK)
		return rv;
	wire_put_bytes(r.req, pPin, ulPinLen);
	return rpc_call_none(&r);
}

CK_RV
C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
	 CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	struct rpc r;
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if ((pOldPin == NULL && ulOldLen) || (pNewPin == NULL && ulNewLen))
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(hSession))
		return CKR_SESSION_HANDLE_INVALID;
	if (ulOldLen > 4096 || ulNewLen > 4096)
		return CKR_PIN_LEN_RANGE;
	slots_forget_snapshot(); /* what the token shows changes */
	if ((rv = rpc_begin_session(&r, MSG_SET_PIN, hSession)) != CKR_OK)
		return rv;
	wire_put_bytes(r.req, pOldPin, ulOldLen);
	wire_put_bytes(r.req, pNewPin, ulNewLen);
	return rpc_call_none(&r);
}
