/*
 * main.c - the coyeu key daemon: start-up, reload and shutdown.
 *
 * Order matters at start: libgcrypt's secure memory is set up before any
 * key exists, core dumps are turned off, then the store and the master key
 * are opened, and only then does the socket appear. Started as root with
 * user = set, keymgrd first opens what needs root (its sockets, the TLS
 * key), then becomes that user, and only then opens the master key and
 * the store. On SIGHUP it reads coyeu.conf and the TLS material again; on
 * SIGTERM it finishes the requests in flight, then closes the store.
 *
 * What the in-memory protection buys: key material sits in mlock'ed pages
 * (never swapped) and is wiped when freed; a process that can ptrace
 * keymgrd or read its memory as root still sees the keys. It keeps secrets
 * out of swap and core files, no more.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "model/ca.h"
#include "ctx.h"
#include "log.h"
#include "model/policy.h"
#include "model/status.h"
#include "crypto/seal.h"
#include "server/server.h"
#include "transport_tls.h"
#include "datadir.h"
#include "service.h"
#include "settings.h"

static volatile sig_atomic_t stop_flag, reload_flag;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		stop_flag = 1;
	server_wake();
}

/* Raises the open-file limit to what the connections need (up to the
 * hard limit); with less, fewer connections are allowed. 0, or -1 when
 * not even a few are possible. */
static int
raise_nofile(struct server_opts *so)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)so->max_conns + 64; /* the store, listeners, pipes */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		if (rl.rlim_cur < 64 + 32) {
			log_err("the open-file limit (%llu) leaves no room for connections", (unsigned long long)rl.rlim_cur);
			return -1;
		}
		log_warn("the open-file limit (%llu) allows %llu connections, not %zu", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)(rl.rlim_cur - 64), so->max_conns);
		so->max_conns = (size_t)(rl.rlim_cur - 64);
	}
	if (so->admin_reserve >= so->max_conns)
		so->admin_reserve = so->max_conns / 2;
	return 0;
}

/*
 * Takes the lock of the data directory (an flock on DIR/keymgrd.lock, held
 * until exit, holding the pid): two keymgrd on one store file would each
 * keep their own view of it. 0, or -1 after saying who holds it.
 */
static int
lock_data_dir(const char *dir)
{
	char path[PATH_MAX + 32], pid[32] = "";
	snprintf(path, sizeof(path), "%s/keymgrd.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			log_err("cannot lock %s: %s", path, strerror(errno));
		} else {
			ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			log_err("another keymgrd (pid %s) uses %s; not starting a second one on it",
				pid[0] ? pid : "unknown", dir);
		}
		close(fd);
		return -1;
	}
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("cannot write the pid into %s", path);
	return 0; /* fd stays open, and locked, until exit */
}

/* The TLS listeners' private key: a regular file (no symbolic link) of
 * root or keymgrd's user that no one else can read, as the master key. */
static bool
tls_key_ok(const char *path)
{
	struct stat st;
	const char *why = NULL;
	if (lstat(path, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file (a symbolic link?)";
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & 077)
		why = "readable or writable by others than its owner (chmod 600)";
	if (why != NULL)
		log_err("TLS key %s refused: %s", path, why);
	return why == NULL;
}

static int
init_gcrypt(void)
{
	if (!gcry_check_version(GCRYPT_VERSION)) {
		fprintf(stderr, "keymgrd: libgcrypt is older than %s\n", GCRYPT_VERSION);
		return -1;
	}
	gcry_control(GCRYCTL_SUSPEND_SECMEM_WARN);
	gcry_control(GCRYCTL_INIT_SECMEM, 1024 * 1024, 0);
	gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 4 * 1024 * 1024, 0);
	gcry_control(GCRYCTL_RESUME_SECMEM_WARN);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	return 0;
}

static void
no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* What SIGHUP needs: the flags keymgrd was started with, the settings in
 * use, and what it may change. */
struct daemon {
	int argc;
	char **argv;
	struct options o;
	struct server_opts *so;
	struct km_ctx *ctx;
};

/* The settings a running keymgrd cannot change (they name files it holds
 * open or sockets it listens on): a SIGHUP that changes one says so. */
static const struct { const char *key; size_t off, len; } fixed_settings[] = {
#define FIXED(k, f) { k, offsetof(struct options, f), sizeof(((struct options *)0)->f) }
	FIXED("data_dir", data_dir), FIXED("store", store), FIXED("socket", socket),
	FIXED("socket_mode", socket_mode), FIXED("socket_group", socket_group), FIXED("user", user),
	FIXED("workers", workers), FIXED("listen", listen), FIXED("master_key", master_key),
	FIXED("metrics_listen", metrics_listen), FIXED("max_connections", limits.max_conns),
#undef FIXED
};

/* The policy's directories, DATA-DIR's when not set: 0, or -1 (logged)
 * when DATA-DIR is too long for them. */
static int
policy_dirs(struct km_policy *p, const char *data_dir)
{
	if ((!p->outbox[0] && snprintf(p->outbox, sizeof(p->outbox), "%s/outbox", data_dir) >= (int)sizeof(p->outbox)) ||
	    (!p->crl_dir[0] && snprintf(p->crl_dir, sizeof(p->crl_dir), "%s/crl", data_dir) >= (int)sizeof(p->crl_dir))) {
		log_err("the data directory's path is too long for its outbox and CRL directory");
		return -1;
	}
	return 0;
}

static struct tls_server *
load_tls(const struct options *o)
{
	struct tls_server *tls = NULL;
	struct tls_server_files tf = { o->tls_cert, o->tls_key, o->tls_client_ca, o->tls_crl[0] ? o->tls_crl : NULL, 0 };
	if (!tls_key_ok(o->tls_key) || tls_server_new(&tf, &tls) != 0)
		return NULL;
	return tls;
}

/* SIGHUP: coyeu.conf (with the same flags on top), the TLS material, the
 * log. A configuration with an error changes nothing. */
static void
reload(void *arg)
{
	struct daemon *d = arg;
	struct options n;
	service_state("reloading");
	log_info("SIGHUP: reading the configuration again");
	if (settings_parse(d->argc, d->argv, &n) != 0) {
		log_err("SIGHUP: the configuration has an error (above): the one in use stays");
		service_state("reloaded");
		return;
	}
	for (size_t i = 0; i < sizeof(fixed_settings) / sizeof(fixed_settings[0]); i++)
		if (memcmp((char *)&n + fixed_settings[i].off, (char *)&d->o + fixed_settings[i].off,
			   fixed_settings[i].len) != 0)
			log_warn("SIGHUP: %s changed; it takes effect when keymgrd is restarted", fixed_settings[i].key);
	log_set_level(n.log_level);
	if (policy_dirs(&n.policy, d->o.data_dir) != 0) {
		service_state("reloaded");
		return;
	}
	pthread_mutex_lock(&d->ctx->lock);
	d->ctx->max_pin_failures = n.max_pin_failures;
	d->ctx->policy = n.policy;
	pthread_mutex_unlock(&d->ctx->lock);
	struct server_opts *so = d->so;
	so->max_conns_per_principal = n.limits.max_conns_per_principal;
	so->admin_reserve = n.limits.admin_reserve < so->max_conns ? n.limits.admin_reserve : so->max_conns / 2;
	so->frame_timeout_ms = n.limits.frame_timeout_ms;
	so->reply_timeout_ms = n.limits.reply_timeout_ms;
	if (so->tls != NULL) {
		/* New handshakes take the new certificate, key, CA and CRLs;
		 * connections made before keep theirs until they close. */
		struct tls_server *tls = load_tls(&n);
		if (tls != NULL) {
			tls_server_free(so->tls);
			so->tls = tls;
			log_info("SIGHUP: TLS certificate, key, client CA and CRLs read again");
		} else {
			log_err("SIGHUP: the new TLS material is refused (above): the one in use stays");
			memcpy(n.tls_cert, d->o.tls_cert, sizeof(n.tls_cert));
			memcpy(n.tls_key, d->o.tls_key, sizeof(n.tls_key));
			memcpy(n.tls_client_ca, d->o.tls_client_ca, sizeof(n.tls_client_ca));
			memcpy(n.tls_crl, d->o.tls_crl, sizeof(n.tls_crl));
		}
	}
	/* What is fixed stays as it was started. */
	for (size_t i = 0; i < sizeof(fixed_settings) / sizeof(fixed_settings[0]); i++)
		memcpy((char *)&n + fixed_settings[i].off, (char *)&d->o + fixed_settings[i].off, fixed_settings[i].len);
	n.foreground = d->o.foreground;
	d->o = n;
	log_reopen();
	log_info("SIGHUP: configuration %s in use", n.config[0] ? n.config : "(none: defaults and flags)");
	service_state("reloaded");
}

/* keymgrd --check-config: what start-up would refuse before touching the
 * data directory. 0 when fine. */
static int
check_config(const struct options *o)
{
	int bad = 0;
	uid_t uid;
	gid_t gid;
	if (o->user[0] && service_user(o->user, &uid, &gid) != 0)
		bad = 1;
	if (o->socket_group[0] && getgrnam(o->socket_group) == NULL && strspn(o->socket_group, "0123456789") !=
	    strlen(o->socket_group)) {
		log_err("socket_group = %s: no such group", o->socket_group);
		bad = 1;
	}
	if (o->nlisten) {
		struct tls_server *tls = load_tls(o);
		if (tls == NULL)
			bad = 1;
		tls_server_free(tls);
	}
	if (o->master_key[0] && access(o->master_key, R_OK) != 0) {
		log_err("master_key = %s: %s", o->master_key, strerror(errno));
		bad = 1;
	}
	if (!bad)
		printf("keymgrd: %s: configuration OK\n", o->config[0] ? o->config : "no config file, defaults");
	return bad;
}

/* Where the socket lives, made for whoever the socket mode lets in (and
 * given to the group, or to keymgrd's user when it drops root). */
static int
make_socket_dir(const struct options *o, gid_t group, uid_t owner)
{
	char sockdir[PATH_MAX], why[PATH_MAX + 256];
	snprintf(sockdir, sizeof(sockdir), "%s", o->socket);
	char *slash = strrchr(sockdir, '/');
	if (slash == NULL || slash == sockdir)
		return 0;
	*slash = '\0';
	mode_t dmode = 0700 | ((o->socket_mode & 0060) ? 0050 : 0) | ((o->socket_mode & 0006) ? 0005 : 0);
	if (settings_make_dir(sockdir, dmode) != 0) {
		log_err("cannot create %s: %s", sockdir, strerror(errno));
		return -1;
	}
	if (datadir_dir_safe(sockdir, why, sizeof(why)) != 0) {
		log_err("socket directory refused: %s", why);
		return -1;
	}
	if ((group != (gid_t)-1 || owner != (uid_t)-1) &&
	    (chown(sockdir, owner, group) != 0 || chmod(sockdir, dmode) != 0)) {
		log_err("cannot give %s to its user or group: %s", sockdir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The data directory of a keymgrd that drops root: made for user, or
 * already that user's (keymgrd never changes the owner of key files). */
static int
own_data_dir(const char *dir, uid_t uid, gid_t gid)
{
	struct stat st;
	bool made = lstat(dir, &st) != 0;
	if (settings_make_dir(dir, 0700) != 0 || lstat(dir, &st) != 0) {
		log_err("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (made && chown(dir, uid, gid) != 0) {
		log_err("cannot give %s to uid %ld: %s", dir, (long)uid, strerror(errno));
		return -1;
	}
	if (!made && st.st_uid != uid) {
		log_err("%s belongs to uid %ld, not to keymgrd's user (uid %ld): chown -R it to that user first",
			dir, (long)st.st_uid, (long)uid);
		return -1;
	}
	return 0;
}

static int
resolve_group(const char *name, gid_t *gid)
{
	*gid = (gid_t)-1;
	if (!name[0])
		return 0;
	struct group *g = getgrnam(name);
	char *end;
	unsigned long n = strtoul(name, &end, 10);
	if (g != NULL)
		*gid = g->gr_gid;
	else if (*end == '\0')
		*gid = (gid_t)n;
	else {
		log_err("socket_group: no group '%s'", name);
		return -1;
	}
	return 0;
}

/* Where the master key comes from: a systemd credential, master_key, or
 * DATA-DIR/master.key (made on first start); true for the last. */
static bool
master_key_path(const struct options *o, char *path, size_t len)
{
	if (o->master_key[0])
		snprintf(path, len, "%s", o->master_key);
	else if (!service_credential("master.key", path, len))
		return snprintf(path, len, "%s/master.key", o->data_dir), true;
	return false;
}

/* Opens the master key at path: 0, or -1 logged. */
static int
open_master_key(const char *path, bool key_here, uint8_t **master)
{
	bool created = false;
	int r = key_here ? seal_master_key(path, master, &created) : seal_read_master_key(path, master);
	if (r != 0) {
		log_err("master key %s: %s", path, cy_strerror(r));
		return -1;
	}
	if (created)
		log_info("created master key %s", path);
	else if (!key_here)
		log_info("master key from %s", path);
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon d = { .argc = argc, .argv = argv };
	struct options *o = &d.o;
	struct km_ctx ctx;
	struct store *st = NULL;
	struct server_opts so;
	uint8_t *master = NULL;
	bool have_ctx = false;
	int status = 1, metrics_fd = -1;

	umask(077);
	/* Every PIN check (Argon2id) allocates 19 MiB on a worker thread. With
	 * glibc's moving mmap threshold such blocks end up in per-thread heaps
	 * that never shrink (8 workers: 150 MiB resident); a fixed threshold
	 * keeps them mmap'd and gives them back when freed. A heap keeps up to
	 * 4 MiB free at its top: a megabyte encrypted is a megabyte allocated
	 * for the output, and giving it back each time costs 256 page faults
	 * the next time (a third of the time of the whole call). */
	mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
	log_init("keymgrd", true, false, LOG_INFO);
	if (init_gcrypt() != 0)
		return 1;
	no_core_dumps();
	int pr = settings_parse(argc, argv, o);
	if (pr > 0)
		return 0;
	if (o->check_config)
		return pr != 0 || check_config(o) != 0 ? 1 : 0;
	if (pr != 0)
		return 2;
	log_init("keymgrd", o->foreground, o->syslog || !o->foreground, o->log_level);
	log_stderr_daemon();
	if (!o->foreground && daemon(0, 0) != 0) {
		log_err("cannot detach: %s", strerror(errno));
		return 1;
	}

	/* As root with user = set: sockets and TLS key first, then the drop. */
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1, sgid;
	bool drop = geteuid() == 0 && o->user[0];
	if (!drop && o->user[0] && (service_user(o->user, &uid, &gid) != 0 || uid != geteuid()))
		log_warn("user = %s: not started as root, keymgrd stays uid %ld", o->user, (long)geteuid());
	if (drop && service_user(o->user, &uid, &gid) != 0)
		goto out;
	if (drop)
		datadir_set_user(uid);
	if (drop && own_data_dir(o->data_dir, uid, gid) != 0)
		goto out;
	if (resolve_group(o->socket_group, &sgid) != 0)
		goto out;

	so = o->limits;
	d.so = &so;
	so.socket_path = o->socket;
	so.socket_mode = (mode_t)o->socket_mode;
	so.socket_gid = sgid;
	so.workers = o->workers;
	for (size_t i = 0; i < o->nlisten; i++)
		so.listen[i] = o->listen[i];
	so.nlisten = o->nlisten;
	if (o->nlisten && (so.tls = load_tls(o)) == NULL)
		goto out;
	if (raise_nofile(&so) != 0)
		goto out;
	if (service_listen_fds(&so, o->socket, sizeof(o->socket)) != 0)
		goto out;
	if (!so.socket_inherited && make_socket_dir(o, sgid, drop ? uid : (uid_t)-1) != 0)
		goto out;
	if (o->metrics_listen[0]) {
		if ((metrics_fd = listen_tcp_addr(o->metrics_listen)) < 0)
			goto out;
		log_info("metrics on http://%s/metrics", o->metrics_listen);
	}
	if (drop && (server_listen(&so) != 0 || service_drop(o->user, uid, gid) != 0))
		goto out;

	char path[PATH_MAX + 32];
	char why[PATH_MAX + 256];
	if (settings_make_dir(o->data_dir, 0700) != 0) {
		log_err("cannot create %s: %s", o->data_dir, strerror(errno));
		goto out;
	}
	bool store_here = !o->store[0]; /* the default: DATA-DIR/keymgr.db */
	bool key_here = master_key_path(o, path, sizeof(path));
	if (datadir_dir_safe(o->data_dir, why, sizeof(why)) != 0 ||
	    datadir_files_ok(o->data_dir, key_here, store_here, why, sizeof(why)) != 0) {
		log_err("data directory refused: %s", why);
		goto out;
	}
	if (lock_data_dir(o->data_dir) != 0 || open_master_key(path, key_here, &master) != 0)
		goto out;
	if (o->store[0])
		snprintf(path, sizeof(path), "%s", o->store);
	else
		snprintf(path, sizeof(path), "sqlite:%s/keymgr.db", o->data_dir);
	int r;
	if ((r = store_open(path, &st)) != 0) {
		/* A PostgreSQL URI may hold a password: not in the log. */
		log_err("store %s: %s", strncmp(path, "postgresql:", 11) == 0 ? "postgresql://..." : path,
			cy_strerror(r));
		goto out;
	}
	if ((r = ctx_init(&ctx, st, master)) != 0) {
		log_err("cannot load the tokens: %s", cy_strerror(r));
		ctx_free(&ctx);
		goto out;
	}
	have_ctx = true;
	d.ctx = &ctx;
	snprintf(path, sizeof(path), "%s/last-backup", o->data_dir);
	status_load_backup_mark(&ctx, path);
	ctx.max_pin_failures = o->max_pin_failures;
	ctx.policy = o->policy;
	if (policy_dirs(&ctx.policy, o->data_dir) != 0)
		goto out;
	if (settings_make_dir(ctx.policy.outbox, 0750) != 0 || settings_make_dir(ctx.policy.crl_dir, 0755) != 0) {
		log_err("cannot create %s or %s: %s", ctx.policy.outbox, ctx.policy.crl_dir, strerror(errno));
		goto out;
	}
	if (datadir_dir_safe(ctx.policy.outbox, why, sizeof(why)) != 0 ||
	    datadir_dir_safe(ctx.policy.crl_dir, why, sizeof(why)) != 0) {
		log_err("outbox or CRL directory refused: %s", why);
		goto out;
	}
	/* The CRLs the store's CAs signed (through another keymgrd too), in
	 * the CRL directory before a TLS listener reads them. */
	pthread_mutex_lock(&ctx.lock);
	ca_publish_locked(&ctx);
	pthread_mutex_unlock(&ctx.lock);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	so.reload = &reload_flag;
	so.on_reload = reload;
	so.reload_arg = &d;
	so.on_state = service_state;

	if (metrics_fd >= 0 && metrics_start(&ctx, metrics_fd, o->metrics_names) != 0) {
		log_err("cannot start the metrics thread");
		goto out;
	}
	if (metrics_fd >= 0)
		metrics_fd = -2; /* the thread's now */
	log_info("keymgrd %s: data in %s, %zu token(s)", PACKAGE_VERSION, o->data_dir, ctx.ntokens);
	if ((r = policy_start(&ctx)) != 0) {
		log_err("cannot start the policy timer: %s", cy_strerror(r));
		goto out;
	}
	r = server_run(&ctx, &so, &stop_flag);
	policy_stop();
	if (r != 0) {
		log_err("server: %s", cy_strerror(r));
		goto out;
	}
	log_info("stopped");
	status = 0;
out:
	metrics_stop();
	if (metrics_fd >= 0)
		close(metrics_fd);
	if (d.so != NULL) {
		for (size_t i = 0; i < so.nlfd; i++)
			close(so.lfd[i]);
		if (so.nlfd > 0 && !so.socket_inherited)
			unlink(so.socket_path);
		tls_server_free(so.tls);
	}
	if (have_ctx)
		ctx_free(&ctx);
	store_close(st);
	seal_key_free(master);
	return status;
}
