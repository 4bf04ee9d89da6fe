/*
 * slots.c - slot and token management: slots, tokens, mechanisms, PINs
 * (PKCS#11 2.40 section 5.5).
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"

/* C_GetSlotList once the module is known to be initialised. */
static CK_RV
slot_list(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
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
	return slot_list(tokenPresent, pSlotList, pulCount);
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
		CK_RV rv = slot_list(CK_TRUE, NULL, &count);
		if (rv != CKR_OK)
			return rv;
		CK_SLOT_ID *v = calloc(count ? count : 1, sizeof(*v));
		if (v == NULL)
			return CKR_HOST_MEMORY;
		rv = slot_list(CK_TRUE, v, &count);
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

CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pSlot == NULL || pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	/* Only the non-blocking form: applications poll (NSS does). */
	if (!(flags & CKF_DONT_BLOCK))
		return CKR_FUNCTION_NOT_SUPPORTED;
	CK_SLOT_ID *cur;
	CK_ULONG ncur = 0;
	if ((rv = slots_now(&cur, &ncur)) != CKR_OK)
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

CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct rpc r;
	char label[33], manuf[33], model[17], serial[17];
	uint32_t v[7] = { 0 };
	CK_RV rv = mod_ready();
	if (rv != CKR_OK)
		return rv;
	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!fits_u32(slotID))
		return CKR_SLOT_ID_INVALID;
	if ((rv = rpc_begin(&r, MSG_TOKEN_INFO, CKR_TOKEN_NOT_PRESENT)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)slotID);
	if ((rv = rpc_call(&r)) == CKR_OK) {
		wire_get_str_into(r.rep, label, sizeof(label));
		wire_get_str_into(r.rep, manuf, sizeof(manuf));
		wire_get_str_into(r.rep, model, sizeof(model));
		wire_get_str_into(r.rep, serial, sizeof(serial));
		for (int i = 0; i < 7; i++)
			wire_get_u32(r.rep, &v[i]);
		if ((rv = rpc_check(&r)) == CKR_OK) {
			memset(pInfo, 0, sizeof(*pInfo));
			pad_field(pInfo->label, sizeof(pInfo->label), label);
			pad_field(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), manuf);
			pad_field(pInfo->model, sizeof(pInfo->model), model);
			pad_field(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
			pInfo->flags = v[0];
			pInfo->ulSessionCount = v[1];
			pInfo->ulRwSessionCount = v[2];
			pInfo->ulMinPinLen = v[3];
			pInfo->ulMaxPinLen = v[4];
			pInfo->firmwareVersion.major = (CK_BYTE)v[5];
			pInfo->firmwareVersion.minor = (CK_BYTE)v[6];
			pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
			pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
			pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
			pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
			pad_field(pInfo->utcTime, sizeof(pInfo->utcTime), "");
		}
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
	if ((rv = rpc_begin(&r, MSG_INIT_PIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
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
	if ((rv = rpc_begin(&r, MSG_SET_PIN, CKR_DEVICE_ERROR)) != CKR_OK)
		return rv;
	wire_put_u32(r.req, (uint32_t)hSession);
	wire_put_bytes(r.req, pOldPin, ulOldLen);
	wire_put_bytes(r.req, pNewPin, ulNewLen);
	return rpc_call_none(&r);
}
