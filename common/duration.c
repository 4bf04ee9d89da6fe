/* duration.c - see duration.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

long long
duration_parse(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0 || s[0] == '-' || s[0] == ' ')
		return -1;
	long long unit = strcmp(end, "d") == 0 ? 86400 : strcmp(end, "h") == 0 ? 3600 : strcmp(end, "m") == 0 ? 60
			 : strcmp(end, "s") == 0 || *end == '\0' ? 1 : 0;
	if (unit == 0 || v > 100LL * 366 * 86400 / unit)
		return -1;
	return v * unit;
}
