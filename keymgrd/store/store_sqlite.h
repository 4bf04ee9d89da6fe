/*
 * store_sqlite.h - the SQLite back end: its table of operations, for the
 * registry (store.c), and what only it offers, for tests and diagnostics.
 * Nothing else in keymgrd includes this.
 */
#ifndef KM_STORE_SQLITE_H
#define KM_STORE_SQLITE_H

#include <stddef.h>

#include "store/store.h"

/* The back end's table of operations (in store.c's registry). */
extern const struct store_ops store_sqlite_ops;

/* SQLite's query plan for a search with f's constraints, as text in buf
 * (it shows which index a look-up uses). CY_ERR_STORE for a store of
 * another back end. */
int store_sqlite_find_plan(struct store *st, const struct store_filter *f, char *buf, size_t len);

#endif
