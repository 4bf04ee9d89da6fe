/*
 * datadir.c - the checks of datadir.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "datadir.h"

/* keymgrd's user: the one it will become, or its own. */
static uid_t user = (uid_t)-1;

void
datadir_set_user(uid_t uid)
{
	user = uid;
}

static bool
owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == (user != (uid_t)-1 ? user : geteuid());
}

int
datadir_dir_safe(const char *dir, char *why, size_t len)
{
	char path[PATH_MAX];
	if (dir[0] != '/' || snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		snprintf(why, len, "%s: not an absolute path", dir);
		return -1;
	}
	for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
		path[n - 1] = '\0';
	/* The directory itself, then each one above it up to /. */
	for (bool first = true;; first = false) {
		struct stat st;
		int r = lstat(path, &st);
		if (r == 0 && S_ISLNK(st.st_mode)) {
			if (first) {
				snprintf(why, len, "%s is a symbolic link (give the directory it points to)", path);
				return -1;
			}
			r = stat(path, &st); /* /var/run -> /run: what it points to */
		}
		if (r != 0) {
			snprintf(why, len, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, len, "%s is not a directory", path);
			return -1;
		}
		if (!owner_ok(&st)) {
			snprintf(why, len, "%s belongs to uid %u, neither root nor keymgrd's user", path,
				 (unsigned)st.st_uid);
			return -1;
		}
		bool sticky = (st.st_mode & S_ISVTX) && !first;
		if ((st.st_mode & 022) && !sticky) {
			snprintf(why, len, "%s can be written by %s (chmod go-w)", path,
				 (st.st_mode & 002) ? "every user" : "its group");
			return -1;
		}
		if (strcmp(path, "/") == 0)
			return 0;
		char *slash = strrchr(path, '/');
		if (slash == path)
			path[1] = '\0';
		else
			*slash = '\0';
	}
}

/* 1 when dir/name is there (and fine), 0 when it is not, -1 (why) when it
 * is there but not a file keymgrd can trust. */
static int
file_state(const char *dir, const char *name, bool secret, char *why, size_t len)
{
	char path[PATH_MAX + 32];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, len, "%s is a symbolic link: keymgrd uses only a regular file of its own there", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s is not a regular file", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, len, "%s belongs to uid %u, not to keymgrd's user (uid %u)", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & (secret ? 077 : 022)) != 0) {
		snprintf(why, len, "%s has mode %04o: %s", path, (unsigned)(st.st_mode & 07777),
			 secret ? "the master key must be readable by keymgrd alone (chmod 0600)"
				: "others can write it (chmod go-w)");
		return -1;
	}
	return 1;
}

int
datadir_files_ok(const char *dir, bool key_here, bool store_here, char *why, size_t len)
{
	int key = key_here ? file_state(dir, "master.key", true, why, len) : 0;
	if (key < 0)
		return -1;
	if (!store_here)
		return 0;
	int db = file_state(dir, "keymgr.db", false, why, len);
	if (db < 0)
		return -1;
	if (db && !key && key_here) {
		snprintf(why, len,
			 "%s/keymgr.db exists but master.key does not: restore master.key from the backup made with "
			 "this store (a new master key could open none of its tokens)", dir);
		return -1;
	}
	if (key && !db) {
		snprintf(why, len,
			 "%s/master.key exists but keymgr.db does not: is the file system of the data directory "
			 "mounted? Restore keymgr.db, or remove master.key to begin an empty store", dir);
		return -1;
	}
	return 0;
}
