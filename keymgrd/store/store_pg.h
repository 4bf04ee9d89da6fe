/*
 * store_pg.h - the PostgreSQL back end ("postgresql://..." stores): its
 * table of operations, for the registry (store.c).
 */
#ifndef KM_STORE_PG_H
#define KM_STORE_PG_H

#include "store/store.h"

extern const struct store_ops store_pg_ops;

#endif
