/*
 * store.c - the registry of store back ends, and what is common to them.
 *
 * A back end is one file that defines a struct store_ops (store.h); adding
 * one is that file plus a line in backends[] below (see
 * docs/architecture.md).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "log.h"
#include "store/store.h"
#include "store/store_pg.h"
#include "store/store_sqlite.h"
#include "wire.h"

static const struct store_ops *const backends[] = {
	&store_sqlite_ops,
	&store_pg_ops,
};

int
store_open(const char *uri, struct store **out)
{
	const char *colon = strchr(uri, ':');
	*out = NULL;
	for (size_t i = 0; colon != NULL && i < sizeof(backends) / sizeof(backends[0]); i++) {
		size_t n = strlen(backends[i]->scheme);
		if ((size_t)(colon - uri) != n || strncmp(uri, backends[i]->scheme, n) != 0)
			continue;
		/* "sqlite:" alone would be SQLite's private temporary database:
		 * keys that vanish at exit. */
		if (colon[1] == '\0') {
			log_err("store: %s names no database", uri);
			return CY_ERR_STORE;
		}
		return backends[i]->open(colon + 1, out);
	}
	/* "postgresql://..." in a build without it is an error, not a file. */
	if (colon != NULL && colon > uri && strncmp(colon, "://", 3) == 0) {
		log_err("store: no back end for %.*s", (int)(colon - uri), uri);
		return CY_ERR_STORE;
	}
	if (*uri == '\0') {
		log_err("store: no database named");
		return CY_ERR_STORE;
	}
	return store_sqlite_ops.open(uri, out);
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

void
store_crls_free(struct store_crl *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i].der);
	free(v);
}

void
store_object_clear(struct store_object *o)
{
	free(o->ckaid);
	free(o->label);
	free(o->attrs);
	if (o->secret != NULL)
		wire_wipe(o->secret, o->secret_len);
	free(o->secret);
	memset(o, 0, sizeof(*o));
}
