/*
 * datadir.h - what keymgrd checks about the directories and files it uses
 * before it trusts them (docs/security.md): like sshd's StrictModes, a
 * directory another user could write to (or one of its parents), or a key
 * or store file that is a link or someone else's, is refused with a line
 * that says which and why; and a data directory holding only one of
 * master.key and keymgr.db is refused, not "repaired".
 */
#ifndef KM_DATADIR_H
#define KM_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The user keymgrd runs as, when it is not yet that user (started as root,
 * it drops to uid after making its directories): checks accept uid's. */
void datadir_set_user(uid_t uid);

/*
 * Whether dir and every directory above it are owned by root or by
 * keymgrd's user, and writable by nobody else (a parent with the sticky
 * bit, as /tmp, may be): 0, or -1 with the reason in why.
 */
int datadir_dir_safe(const char *dir, char *why, size_t len);
/*
 * The data directory's files: master.key and keymgr.db are regular files
 * of keymgrd's user (master.key readable by it alone), and either both
 * exist or neither (a new store); with store_here false (the store is a
 * database elsewhere, PostgreSQL) only master.key is looked at, with
 * key_here false (the master key comes from a systemd credential or
 * master_key) only keymgr.db. 0, or -1 with the reason in why.
 */
int datadir_files_ok(const char *dir, bool key_here, bool store_here, char *why, size_t len);

#endif
