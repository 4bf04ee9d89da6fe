/* match.c - see match.h. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "model/match.h"

char *
match_fold(const char *s)
{
	size_t n = strlen(s), len = 0;
	if (u8_check((const uint8_t *)s, n) != NULL)
		return NULL;
	uint8_t *f = u8_casefold((const uint8_t *)s, n, NULL, UNINORM_NFC, NULL, &len);
	if (f == NULL)
		return NULL;
	char *out = realloc(f, len + 1);
	if (out == NULL) {
		free(f);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

bool
match_in(const char *hay, const char *folded_needle)
{
	char *h = match_fold(hay);
	bool in = h != NULL && strstr(h, folded_needle) != NULL;
	free(h);
	return in;
}
