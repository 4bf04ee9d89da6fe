/* paths.c - socket and config file locations (see paths.h). */
#include "config.h"

#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cy_err.h"
#include "paths.h"

int
paths_default_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (geteuid() != 0 && xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/coyeu/%s", xdg, CY_SOCKET_NAME);
	else
		n = snprintf(buf, len, "%s/coyeu/%s", RUNSTATEDIR, CY_SOCKET_NAME);
	return n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
}

const char *
paths_config_file(void)
{
	const char *env = getenv("COYEU_CONF");
	return env != NULL && env[0] != '\0' ? env : SYSCONFDIR "/coyeu/coyeu.conf";
}

struct socket_lookup {
	char *buf;
	size_t len;
	int found;
};

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct socket_lookup *l = user;
	if (strcmp(section, "client") == 0 && strcmp(name, "socket") == 0) {
		int n = snprintf(l->buf, l->len, "%s", value);
		l->found = n >= 0 && (size_t)n < l->len ? 1 : -1;
	}
	return 1;
}

int
paths_client_socket(char *buf, size_t len)
{
	const char *env = getenv("COYEU_SOCKET");
	if (env != NULL && env[0] != '\0') {
		int n = snprintf(buf, len, "%s", env);
		return n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
	}
	struct socket_lookup l = { buf, len, 0 };
	FILE *f = fopen(paths_config_file(), "re");
	if (f != NULL) {
		ini_parse_file(f, on_ini, &l);
		fclose(f);
		if (l.found == 1)
			return 0;
		if (l.found < 0)
			return CY_ERR_TOO_LARGE;
	}
	return paths_default_socket(buf, len);
}

void
paths_file_name(const uint8_t *label, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < outlen; i++, o++) {
		char c = (char)label[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && o > 0);
		out[o] = ok ? c : '_';
	}
	if (outlen > 0)
		out[o] = '\0';
}
