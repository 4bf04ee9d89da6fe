/*
 * bench_holders.c - a province of holder tokens: a keymgrd of its own with
 * BENCH_HOLDERS (5,418) holders, each with a P-256 key and a certificate;
 * how long holder import takes, keymgrd's start-up and RSS with them, and
 * what one official's program pays: C_GetSlotList (it sees one token) and
 * a cold start. SoftHSM2 has no holder tokens: these rows are coyeu's
 * alone. The official is uid 65534 (nobody) and needs root to become;
 * without root those rows are left out.
 *
 * The parts that load the module run in child processes of this program
 * (holder_child), each with COYEU_SOCKET naming this keymgrd.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define NEW_PIN "24681357"

static CK_FUNCTION_LIST_PTR
child_load(const char *module)
{
	void *lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST_PTR f = NULL;
	if (get == NULL || get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
		die("loading %s", module);
	return f;
}

/* The administrator (root) gives every holder's key a certificate. */
static int
child_certs(const char *module)
{
	CK_FUNCTION_LIST_PTR f = child_load(module);
	CK_ULONG n = 0;
	CK(f->C_GetSlotList(CK_TRUE, NULL, &n));
	CK_SLOT_ID *slots = calloc(n ? n : 1, sizeof(*slots));
	if (slots == NULL)
		die("memory");
	CK(f->C_GetSlotList(CK_TRUE, slots, &n));
	make_ca();
	struct tok t = { .name = "coyeu", .f = f };
	long made = 0;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		CK_SESSION_HANDLE h;
		CK(f->C_GetTokenInfo(slots[i], &ti));
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue; /* the spare slot */
		CK(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h));
		CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
		CK_ATTRIBUTE q = { CKA_CLASS, &cls, sizeof(cls) };
		CK_OBJECT_HANDLE pub;
		CK_ULONG found = 0;
		CK(f->C_FindObjectsInit(h, &q, 1));
		CK(f->C_FindObjects(h, &pub, 1, &found));
		CK(f->C_FindObjectsFinal(h));
		if (found == 1) {
			CK_BYTE point[80], id[64];
			CK_ATTRIBUTE a[] = { { CKA_EC_POINT, point, sizeof(point) }, { CKA_ID, id, sizeof(id) } };
			CK(f->C_GetAttributeValue(h, pub, a, 2));
			gnutls_datum_t x = { point + 3, 32 }, y = { point + 35, 32 }, subject = { NULL, 0 };
			gnutls_pubkey_t pk;
			if (gnutls_pubkey_init(&pk) < 0 ||
			    gnutls_pubkey_import_ecc_raw(pk, GNUTLS_ECC_CURVE_SECP256R1, &x, &y) < 0)
				die("public key of slot %lu", (unsigned long)slots[i]);
			char cn[33];
			size_t l = sizeof(ti.label);
			while (l > 0 && ti.label[l - 1] == ' ')
				l--;
			snprintf(cn, sizeof(cn), "%.*s", (int)l, (const char *)ti.label);
			gnutls_datum_t der = make_cert(pk, 7000000 + (long)i, 365, cn, &subject);
			CK_OBJECT_HANDLE o;
			CK(create_cert(&t, h, &der, &subject, id, a[1].ulValueLen, &o));
			gnutls_free(der.data);
			gnutls_free(subject.data);
			gnutls_pubkey_deinit(pk);
			made++;
		}
		CK(f->C_CloseSession(h));
	}
	f->C_Finalize(NULL);
	free(slots);
	printf("%ld\n", made);
	return 0;
}

/* One official's program: C_GetSlotList, first (with the connection to
 * keymgrd) and again; ms of each and the slots seen. */
static int
child_slots(const char *module)
{
	CK_FUNCTION_LIST_PTR f = child_load(module);
	CK_SLOT_ID slots[8];
	double ms[2];
	CK_ULONG n = 0;
	for (int k = 0; k < 2; k++) {
		double t0 = now();
		n = 8;
		CK(f->C_GetSlotList(CK_TRUE, slots, &n));
		ms[k] = (now() - t0) * 1e3;
	}
	f->C_Finalize(NULL);
	printf("%.3f %.3f %lu\n", ms[0], ms[1], (unsigned long)n);
	return 0;
}

/* A cold start of the official's program: load, log in, find the key; ms.
 * The first run changes the one-time PIN (and prints "changed"). */
static int
child_cold(const char *module, const char *pin)
{
	double t0 = now();
	CK_FUNCTION_LIST_PTR f = child_load(module);
	CK_SLOT_ID slot;
	CK_ULONG n = 1, found = 0;
	CK_SESSION_HANDLE h;
	CK(f->C_GetSlotList(CK_TRUE, &slot, &n));
	if (n != 1)
		die("the official sees %lu tokens", (unsigned long)n);
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h));
	CK(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE q = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE key;
	CK_RV rv = f->C_FindObjectsInit(h, &q, 1);
	if (rv == CKR_PIN_EXPIRED) {
		CK(f->C_SetPIN(h, (CK_UTF8CHAR_PTR)pin, strlen(pin), (CK_UTF8CHAR_PTR)NEW_PIN, strlen(NEW_PIN)));
		printf("changed\n");
		f->C_Finalize(NULL);
		return 0;
	}
	CK(rv);
	CK(f->C_FindObjects(h, &key, 1, &found));
	CK(f->C_FindObjectsFinal(h));
	double ms = (now() - t0) * 1e3;
	f->C_Finalize(NULL);
	if (found != 1)
		die("the official's key was not found");
	printf("%.3f\n", ms);
	return 0;
}

int
holder_child(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[2], "certs") == 0)
		return child_certs(argv[3]);
	if (argc == 4 && strcmp(argv[2], "slots") == 0)
		return child_slots(argv[3]);
	if (argc == 5 && strcmp(argv[2], "cold") == 0)
		return child_cold(argv[3], argv[4]);
	die("bench --holder: certs|slots MODULE, or cold MODULE PIN");
	return 1;
}

/* ---- the parent: its keymgrd, and the rows ---- */

static char sock[sizeof(((struct sockaddr_un *)0)->sun_path)], data[4096], self[4096];
static pid_t kpid;

/* Starts the holders' keymgrd; seconds until its socket accepts. */
static double
start_keymgrd(void)
{
	double t0 = now();
	unlink(sock);
	kpid = fork();
	if (kpid < 0)
		die("fork");
	if (kpid == 0) {
		/* It goes when the bench does, whatever ends the bench. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		char log[4200];
		snprintf(log, sizeof(log), "%s/holders-keymgrd.log", bench_dir);
		if (freopen(log, "a", stderr) == NULL)
			_exit(127);
		execl(getenv("KEYMGRD"), "keymgrd", "--foreground", "--data-dir", data, "--socket", sock,
		      "--config", "/dev/null", "--policy-interval", "0", "--socket-mode", "0666", (char *)NULL);
		_exit(127);
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, sock, sizeof(sock));
	for (int i = 0; i < 30000; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return now() - t0;
		if (waitpid(kpid, NULL, WNOHANG) == kpid)
			die("the holders' keymgrd exited at start (see %s/holders-keymgrd.log)", bench_dir);
		usleep(1000);
	}
	die("the holders' keymgrd did not listen in 30 s");
	return 0;
}

static void
stop_keymgrd(void)
{
	kill(kpid, SIGTERM);
	waitpid(kpid, NULL, 0);
}

static double
rss_mib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	double kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lf", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb / 1024;
}

static void
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		die("%s", cmd);
}

/* Runs this program as a child (as the official, uid 65534, when as_nobody)
 * and reads its one line. */
static void
child(bool as_nobody, char *out, size_t len, const char *args)
{
	char cmd[16384];
	snprintf(cmd, sizeof(cmd), "COYEU_SOCKET='%s' %s '%s' --holder %s", sock,
		 as_nobody ? "setpriv --reuid=65534 --regid=65534 --clear-groups" : "", self, args);
	FILE *p = popen(cmd, "r");
	if (p == NULL || fgets(out, (int)len, p) == NULL || pclose(p) != 0)
		die("%s failed", cmd);
}

/* The one-time PIN of holder id in the PIN file. */
static void
pin_of(const char *file, const char *id, char *pin, size_t len)
{
	FILE *f = fopen(file, "r");
	char line[512];
	size_t l = strlen(id);
	pin[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, id, l) == 0 && line[l] == ',') {
			char *last = strrchr(line, ',');
			snprintf(pin, len, "%.*s", (int)strcspn(last + 1, "\r\n"), last + 1);
		}
	}
	if (f)
		fclose(f);
	if (pin[0] == '\0')
		die("no PIN for %s in %s", id, file);
}

void
holder_rows(long n)
{
	const char *module = getenv("COYEU_MODULE"), *keymgr = getenv("KEYMGR");
	bool root = geteuid() == 0;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0 || getenv("KEYMGRD") == NULL)
		die("holders: KEYMGRD is not set, or no /proc/self/exe");
	self[sl] = '\0';
	if (snprintf(sock, sizeof(sock), "%s/hrun/keymgrd.sock", bench_dir) >= (int)sizeof(sock))
		die("holders: the bench directory's name is too long for a socket");
	snprintf(data, sizeof(data), "%s/hdata", bench_dir);
	fprintf(stderr, "holders (%ld):\n", n);
	/* The official reaches the socket through the bench directory. */
	if (root && chmod(bench_dir, 0711) != 0)
		die("chmod %s", bench_dir);

	char csv[4200], pins[4200];
	snprintf(csv, sizeof(csv), "%s/holders.csv", bench_dir);
	snprintf(pins, sizeof(pins), "%s/holder-pins.csv", bench_dir);
	FILE *ag = fopen(getenv("AGENCIES"), "r"), *out = fopen(csv, "w");
	char agencies[64][256];
	int nag = 0;
	while (ag && nag < 64 && fgets(agencies[nag], sizeof(agencies[0]), ag))
		if (agencies[nag][strcspn(agencies[nag], "\r\n")] = '\0', agencies[nag][0] && agencies[nag][0] != '#')
			nag++;
	if (ag)
		fclose(ag);
	if (out == NULL || nag == 0)
		die("holders: the CSV or the agencies");
	fprintf(out, "id,name,agency,unit\n");
	for (long i = 0; i < n; i++)
		fprintf(out, "HB-%05ld,Cán bộ số %ld,\"%s\",\n", i + 1, i + 1, agencies[i % nag]);
	fclose(out);

	start_keymgrd();
	double t0 = now();
	run("COYEU_SOCKET='%s' '%s' holder import '%s' --key ec:P-256 --pin-out '%s' --jobs 2 >/dev/null", sock,
	    keymgr, csv, pins);
	double import = now() - t0;
	struct row *r = add_row("s", false, import, NA, NA, "keymgr holder import, %ld holders with a P-256 key", n);
	snprintf(r->note, sizeof(r->note), "%.1f holders/s with 2 jobs (a PIN hash and a key each)", n / import);
	char line[256], args[4300];
	snprintf(args, sizeof(args), "certs '%s'", module);
	t0 = now();
	child(false, line, sizeof(line), args);
	fprintf(stderr, "  %ld certificates made in %.1f s\n", atol(line), now() - t0);
	stop_keymgrd();

	double v[16];
	for (int i = 0; i < reps; i++) {
		v[i] = start_keymgrd();
		if (i + 1 < reps)
			stop_keymgrd();
	}
	r = add_row("ms", false, median(v, reps) * 1e3, NA, NA, "keymgrd start-up, %ld holder tokens", n);
	snprintf(r->note, sizeof(r->note), "until the socket accepts; target 2,000 ms");
	r = add_row("MiB", false, rss_mib(kpid), NA, NA, "keymgrd RSS after start-up, %ld holder tokens", n);
	snprintf(r->note, sizeof(r->note), "target 64 MiB");
	if (!root) {
		fprintf(stderr, "  not root: the official's rows (uid 65534) are left out\n");
		stop_keymgrd();
		return;
	}
	run("COYEU_SOCKET='%s' '%s' access grant --uid 65534 --holder HB-00001 >/dev/null", sock, keymgr);
	double first[16], again[16];
	unsigned long seen = 0;
	snprintf(args, sizeof(args), "slots '%s'", module);
	for (int i = 0; i < reps; i++) {
		child(true, line, sizeof(line), args);
		if (sscanf(line, "%lf %lf %lu", &first[i], &again[i], &seen) != 3 || seen != 1)
			die("the official's slot list: %s", line);
	}
	r = add_row("ms", false, median(again, reps), NA, NA, "C_GetSlotList, one of %ld holder tokens", n);
	snprintf(r->note, sizeof(r->note), "a program's first call %.2f ms (with its connection); target 1 ms",
		 median(first, reps));
	char pin[64];
	pin_of(pins, "HB-00001", pin, sizeof(pin));
	snprintf(args, sizeof(args), "cold '%s' '%s'", module, pin);
	child(true, line, sizeof(line), args);
	if (strncmp(line, "changed", 7) != 0)
		die("the one-time PIN was not changed: %s", line);
	snprintf(args, sizeof(args), "cold '%s' '%s'", module, NEW_PIN);
	for (int i = 0; i < reps; i++) {
		child(true, line, sizeof(line), args);
		v[i] = atof(line);
	}
	r = add_row("ms", false, median(v, reps), NA, NA, "cold start of an official's program, %ld holders", n);
	snprintf(r->note, sizeof(r->note), "load, log in, find the key; the PIN verified before; target 30 ms");
	r = add_row("MiB", false, rss_mib(kpid), NA, NA, "keymgrd RSS after the official's runs");
	stop_keymgrd();
}
