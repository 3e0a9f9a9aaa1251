/*
 * capulator-run: the native client of `capulator run`. bin/capulator execs it for `run`.
 *
 * It hands the run to a warm `capulator serve` on $CAPULATOR_HOME/run.sock (docs/run-socket.md):
 * sends its argv, cwd and whether stdin is a terminal; the daemon parses and prepares the run
 * (policy, image, overlay, agent, bundle) and answers `exec` with the `runc run` argv. This
 * process then runs runc as its own child with its own stdio (output, terminal, stdin and the
 * terminal's signals pass straight through), forwards SIGTERM/SIGHUP to it, reports how it
 * ended and exits with the status the daemon answers once the run is recorded and cleaned up.
 *
 * With no daemon (no socket, nobody listening), or when the daemon answers `fallback`, it execs
 * the JS CLI (`node bin/capulator run …`): the cold path, same behaviour, slower start.
 *
 * Trust: an `exec` answer runs a command as this user, so the socket is used only when it and
 * the home directory belong to this user and the home is not writable by anyone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROTOCOL 1
#define MAX_LINE (1 << 20)
#define MAX_ARGS 4096
#define FAILED 125

static int g_argc;
static char **g_argv;
static volatile sig_atomic_t g_child;

/* ---- a growable byte buffer ---- */
struct buf {
	char *p;
	size_t len, cap;
};

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("capulator: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			die(70, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* a JSON string; bytes >= 0x80 go through as they are (UTF-8), control bytes as \u00XX */
static void put_json(struct buf *b, const char *s)
{
	put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = {'\\', (char)*c};
			put(b, e, 2);
		} else if (*c < 0x20) {
			char e[8];
			snprintf(e, sizeof e, "\\u%04x", *c);
			put(b, e, 6);
		} else
			put(b, (const char *)c, 1);
	}
	put(b, "\"", 1);
}

/* ---- the cold path: the JS CLI ---- */

/* Whether the JS CLI runs this `run` itself (apps/cli/src/local-run.ts runsHere, the same rule):
 * no --server, -d/--detach or -h/--help among the run's own options, the words up to the image
 * (the first word that is neither an option nor an option's value) or a `--`. */
static int runs_here(void)
{
	static const char *const boolean_long[] = {"--learn", "--keep", "--no-store", "--detach", "--read-only",
						   "--interactive", "--tty", "--rm", "--privileged", "--help"};
	if (g_argc < 2 || strcmp(g_argv[1], "run") != 0)
		return 0;
	for (int i = 2; i < g_argc; i++) {
		const char *w = g_argv[i];
		if (!strcmp(w, "--") || w[0] != '-' || !w[1])
			return 1; /* the image: the run's options end */
		if (w[1] == '-') {
			size_t n = strcspn(w, "=");
			if ((n == 8 && !strncmp(w, "--server", n)) || (n == 8 && !strncmp(w, "--detach", n)) || (n == 6 && !strncmp(w, "--help", n)))
				return 0;
			int boolean = 0;
			for (size_t k = 0; k < sizeof boolean_long / sizeof boolean_long[0]; k++)
				if (strlen(boolean_long[k]) == n && !strncmp(w, boolean_long[k], n))
					boolean = 1;
			if (!w[n] && !boolean)
				i++; /* its value */
			continue;
		}
		for (const char *c = w + 1; *c; c++) {
			if (*c == 'd' || *c == 'h')
				return 0;
			if (*c == 'i' || *c == 't')
				continue;
			if (!c[1])
				i++; /* its value is the next word (else the rest of this one) */
			break;
		}
	}
	return 1;
}

/*
 * A `run` without a daemon: its helpers start here, before Node, as spares.ts starts spares (its
 * own session, stdout /dev/null, stdin, stderr and fd 3 piped; agent/PROTOCOL.md "Spares"): the
 * kernel record's BPF program loads (~75-100 ms of CPU) while Node starts instead of after, and
 * Node forks neither. Node inherits the other ends of the pipes, named with the pid and binary in
 * `var` (pid,stdin,stderr,fd3,binary), and adopts each (spares.ts adoptEarly) or ends it. If the
 * exec of Node fails, they end with this process (PR_SET_PDEATHSIG, or their stdin closed).
 */
static void early_spare(const char *var, const char *bin, char *const args[])
{
	int in[2], err[2], ev[2];
	if (pipe2(in, O_CLOEXEC))
		return;
	if (pipe2(err, O_CLOEXEC)) {
		close(in[0]), close(in[1]);
		return;
	}
	if (pipe2(ev, O_CLOEXEC)) {
		close(in[0]), close(in[1]), close(err[0]), close(err[1]);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int nul = open("/dev/null", O_WRONLY);
		/* dup2 onto another fd clears close-on-exec; fd 3 itself may be one of the pipes */
		if (dup2(in[0], 0) < 0 || (nul >= 0 && dup2(nul, 1) < 0) || dup2(err[1], 2) < 0 ||
		    (ev[1] == 3 ? fcntl(3, F_SETFD, 0) : dup2(ev[1], 3)) < 0)
			_exit(127);
		execv(bin, args);
		_exit(127);
	}
	close(in[0]), close(err[1]), close(ev[1]);
	if (pid < 0) {
		close(in[1]), close(err[0]), close(ev[0]);
		return;
	}
	fcntl(in[1], F_SETFD, 0), fcntl(err[0], F_SETFD, 0), fcntl(ev[0], F_SETFD, 0);
	char v[PATH_MAX + 64];
	if ((size_t)snprintf(v, sizeof v, "%d,%d,%d,%d,%s", (int)pid, in[1], err[0], ev[0], bin) < sizeof v)
		setenv(var, v, 1);
}

/* $env, else REPO/agent/build/NAME (spares.ts kernelRecordBinary, agentBinaryPath) */
static const char *helper(const char *env, const char *repo, const char *name, char *path, size_t size)
{
	const char *b = getenv(env);
	if (b && *b)
		return b;
	if ((size_t)snprintf(path, size, "%s/agent/build/%s", repo, name) >= size)
		return NULL;
	return path;
}

static void early_spares(const char *repo)
{
	char kpath[PATH_MAX], apath[PATH_MAX];
	const char *krec = helper("CAPULATOR_KERNEL_RECORD", repo, "capulator-kernel-record", kpath, sizeof kpath);
	if (krec && access(krec, X_OK) == 0 &&
	    (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0 || access("/sys/fs/cgroup/cgroup.procs", F_OK) == 0)) {
		char *args[] = {(char *)krec, "serve", "--cgroup", "-", "--events-fd", "3", NULL};
		early_spare("CAPULATOR_EARLY_KERNEL_RECORD", krec, args);
	}
	const char *agent = helper("CAPULATOR_AGENT", repo, "capulator-agent", apath, sizeof apath);
	if (agent && access(agent, X_OK) == 0) {
		char *args[] = {(char *)agent, "serve", "--args-from-stdin", NULL};
		early_spare("CAPULATOR_EARLY_AGENT", agent, args);
	}
}

/*
 * NODE_EXTRA_CA_CERTS: Node 20 reads that file, and builds its whole root store with it, before
 * it runs any code (~30 ms with Debian's bundle), and a run seldom makes a TLS connection. Node is
 * handed it as CAPULATOR_DEFERRED_EXTRA_CA_CERTS instead; bin/capulator sets it back and trusts
 * it from the first TLS use on, as Node would (apps/cli/src/extra-ca.ts). Not when NODE_OPTIONS
 * chooses the CA store (--use-openssl-ca, --use-bundled-ca, an OpenSSL config): that trust is
 * Node's bundled roots plus the file, Node's default only.
 */
static void defer_extra_ca_certs(void)
{
	const char *file = getenv("NODE_EXTRA_CA_CERTS");
	const char *opts = getenv("NODE_OPTIONS");
	if (!file || !*file || (opts && (strstr(opts, "-ca") || strstr(opts, "openssl"))))
		return;
	if (setenv("CAPULATOR_DEFERRED_EXTRA_CA_CERTS", file, 1) == 0)
		unsetenv("NODE_EXTRA_CA_CERTS");
}

static void cold(void) __attribute__((noreturn));
static void cold(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		die(70, "cannot find the capulator repository: /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	/* REPO/agent/build/capulator-run */
	for (int i = 0; i < 3; i++) {
		char *s = strrchr(exe, '/');
		if (!s)
			die(70, "cannot find the capulator repository from %s", exe);
		*s = 0;
	}
	char bin[PATH_MAX];
	if ((size_t)snprintf(bin, sizeof bin, "%s/bin/capulator", exe) >= sizeof bin)
		die(70, "repository path too long");
	unsetenv("CAPULATOR_EARLY_KERNEL_RECORD"); /* only ever this process's */
	unsetenv("CAPULATOR_EARLY_AGENT");
	unsetenv("CAPULATOR_DEFERRED_EXTRA_CA_CERTS");
	if (runs_here()) {
		early_spares(exe);
		defer_extra_ca_certs();
	}
	char **argv = calloc((size_t)g_argc + 3, sizeof *argv);
	if (!argv)
		die(70, "out of memory");
	/* `--`: node 20 reads an `--env-file F` anywhere on its command line, even after the script
	 * (it exits 9 when F is missing); after `--` every word is the script's */
	argv[0] = "node";
	argv[1] = "--";
	argv[2] = bin;
	for (int i = 1; i < g_argc; i++)
		argv[i + 2] = g_argv[i];
	execvp("node", argv);
	die(70, "cannot run node: %s", strerror(errno));
}

/* ---- the home directory, as libs/host capulatorHome() finds it ---- */
static int blank(const char *s)
{
	if (!s)
		return 1;
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\v' && *s != '\f')
			return 0;
	return 1;
}

static int home_dir(char *out, size_t size)
{
	const char *h = getenv("CAPULATOR_HOME");
	int n;
	if (!blank(h))
		n = snprintf(out, size, "%s", h);
	else if (getuid() == 0)
		n = snprintf(out, size, "/var/lib/capulator");
	else if (!blank(getenv("XDG_DATA_HOME")))
		n = snprintf(out, size, "%s/capulator", getenv("XDG_DATA_HOME"));
	else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());
			if (!pw)
				return -1;
			home = pw->pw_dir;
		}
		n = snprintf(out, size, "%s/.local/share/capulator", home);
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/*
 * connected socket, or -1: then the cold path runs the command. The home is opened once and
 * both checked and connected through that descriptor, so a path swapped between the check and
 * the connect cannot lead elsewhere.
 */
static int connect_daemon(void)
{
	char home[PATH_MAX];
	if (home_dir(home, sizeof home) < 0)
		return -1;
	int dfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	struct stat hs, ss;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1;
	if (fstat(dfd, &hs) < 0 || fstatat(dfd, "run.sock", &ss, AT_SYMLINK_NOFOLLOW) < 0)
		goto out;
	uid_t me = geteuid();
	if (hs.st_uid != me || (hs.st_mode & 022) || !S_ISSOCK(ss.st_mode) || ss.st_uid != me) {
		fprintf(stderr, "capulator: warning: not using %s/run.sock: it and %s must belong to uid %u and not be writable by others\n", home, home, (unsigned)me);
		goto out;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/run.sock", dfd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		fd = -1;
	}
out:
	close(dfd);
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* ---- reading the daemon's JSON lines ---- */
struct msg {
	char type[16];
	struct buf text; /* `data` (stderr) or `reason` (fallback) */
	int has_code;
	long code;
	char *argv[MAX_ARGS + 1];
	int argc;
	int stdin_null; /* exec: `"stdin": "null"`, the command's stdin is /dev/null */
};

struct parser {
	const char *p, *end;
};

static void ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
		ps->p++;
}

static int hex4(struct parser *ps, unsigned *v)
{
	if (ps->end - ps->p < 4)
		return -1;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static void utf8(struct buf *b, unsigned cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	put(b, u, n);
}

/* a JSON string into out (appended; NUL-terminated; may hold NUL bytes: out->len says) */
static int string(struct parser *ps, struct buf *out)
{
	if (ps->p >= ps->end || *ps->p != '"')
		return -1;
	ps->p++;
	put(out, "", 0);
	while (ps->p < ps->end) {
		char c = *ps->p++;
		if (c == '"')
			return 0;
		if ((unsigned char)c < 0x20)
			return -1;
		if (c != '\\') {
			put(out, &c, 1);
			continue;
		}
		if (ps->p >= ps->end)
			return -1;
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/': put(out, &c, 1); break;
		case 'b': put(out, "\b", 1); break;
		case 'f': put(out, "\f", 1); break;
		case 'n': put(out, "\n", 1); break;
		case 'r': put(out, "\r", 1); break;
		case 't': put(out, "\t", 1); break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(ps, &cp) < 0)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
				struct parser save = *ps;
				ps->p += 2;
				if (hex4(ps, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					*ps = save;
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd; /* a lone surrogate, as JS's TextEncoder writes it */
			utf8(out, cp);
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

/* skips any JSON value (depth-limited) */
static int skip(struct parser *ps, int depth)
{
	ws(ps);
	if (ps->p >= ps->end || depth > 32)
		return -1;
	char c = *ps->p;
	if (c == '"') {
		struct buf t = {0};
		int r = string(ps, &t);
		free(t.p);
		return r;
	}
	if (c == '{' || c == '[') {
		char close_ = c == '{' ? '}' : ']';
		ps->p++;
		ws(ps);
		if (ps->p < ps->end && *ps->p == close_) {
			ps->p++;
			return 0;
		}
		for (;;) {
			if (c == '{') {
				struct buf k = {0};
				ws(ps);
				int r = string(ps, &k);
				free(k.p);
				ws(ps);
				if (r < 0 || ps->p >= ps->end || *ps->p++ != ':')
					return -1;
			}
			if (skip(ps, depth + 1) < 0)
				return -1;
			ws(ps);
			if (ps->p >= ps->end)
				return -1;
			if (*ps->p == ',') {
				ps->p++;
				continue;
			}
			if (*ps->p++ == close_)
				return 0;
			return -1;
		}
	}
	/* number, true, false, null */
	const char *s = ps->p;
	while (ps->p < ps->end && (strchr("+-.eE", *ps->p) || (*ps->p >= '0' && *ps->p <= '9') || (*ps->p >= 'a' && *ps->p <= 'z')))
		ps->p++;
	return ps->p > s ? 0 : -1;
}

static void msg_free(struct msg *m)
{
	free(m->text.p);
	for (int i = 0; i < m->argc; i++)
		free(m->argv[i]);
	memset(m, 0, sizeof *m);
}

/* one line: {"type": …, "data"|"reason": string, "code": integer, "argv": [strings], "stdin": "null"}; other keys skipped */
static int parse(const char *line, size_t n, struct msg *m)
{
	struct parser ps = {line, line + n};
	memset(m, 0, sizeof *m);
	ws(&ps);
	if (ps.p >= ps.end || *ps.p++ != '{')
		return -1;
	ws(&ps);
	if (ps.p < ps.end && *ps.p == '}')
		return -1;
	for (;;) {
		struct buf key = {0};
		ws(&ps);
		if (string(&ps, &key) < 0) {
			free(key.p);
			return -1;
		}
		ws(&ps);
		if (ps.p >= ps.end || *ps.p++ != ':') {
			free(key.p);
			return -1;
		}
		ws(&ps);
		int r = 0;
		if (!strcmp(key.p, "type")) {
			struct buf t = {0};
			r = string(&ps, &t);
			if (r == 0 && t.len < sizeof m->type && strlen(t.p) == t.len)
				memcpy(m->type, t.p, t.len + 1);
			free(t.p);
		} else if (!strcmp(key.p, "data") || !strcmp(key.p, "reason")) {
			m->text.len = 0;
			r = string(&ps, &m->text);
		} else if (!strcmp(key.p, "code") && ps.p < ps.end && (*ps.p == '-' || (*ps.p >= '0' && *ps.p <= '9'))) {
			char *e;
			errno = 0;
			m->code = strtol(ps.p, &e, 10);
			if (errno || e > ps.end || e == ps.p)
				r = -1;
			else {
				ps.p = e;
				m->has_code = 1;
			}
		} else if (!strcmp(key.p, "stdin")) {
			struct buf t = {0};
			r = string(&ps, &t);
			if (r == 0 && t.len == 4 && !strcmp(t.p, "null"))
				m->stdin_null = 1;
			free(t.p);
		} else if (!strcmp(key.p, "argv")) {
			if (ps.p >= ps.end || *ps.p++ != '[')
				r = -1;
			ws(&ps);
			if (r == 0 && ps.p < ps.end && *ps.p == ']')
				ps.p++;
			else
				while (r == 0) {
					struct buf a = {0};
					ws(&ps);
					if (m->argc >= MAX_ARGS || string(&ps, &a) < 0 || strlen(a.p) != a.len) {
						free(a.p);
						r = -1;
						break;
					}
					m->argv[m->argc++] = a.p;
					ws(&ps);
					if (ps.p < ps.end && *ps.p == ',') {
						ps.p++;
						continue;
					}
					if (ps.p < ps.end && *ps.p++ == ']')
						break;
					r = -1;
				}
		} else
			r = skip(&ps, 0);
		free(key.p);
		if (r < 0)
			return -1;
		ws(&ps);
		if (ps.p >= ps.end)
			return -1;
		if (*ps.p == ',') {
			ps.p++;
			continue;
		}
		if (*ps.p++ != '}')
			return -1;
		ws(&ps);
		return ps.p == ps.end && m->type[0] ? 0 : -1;
	}
}

/* the next line from the daemon into *line (NUL-terminated), or -1 at end of stream */
static int read_line(int fd, struct buf *in, size_t *consumed, struct buf *line)
{
	for (;;) {
		/* drop what the previous call returned */
		if (*consumed) {
			memmove(in->p, in->p + *consumed, in->len - *consumed);
			in->len -= *consumed;
			*consumed = 0;
		}
		char *nl = in->len ? memchr(in->p, '\n', in->len) : NULL;
		if (nl) {
			line->len = 0;
			put(line, in->p, (size_t)(nl - in->p));
			*consumed = (size_t)(nl - in->p) + 1;
			return 0;
		}
		if (in->len > MAX_LINE)
			die(FAILED, "capulator serve sent a line longer than %d bytes", MAX_LINE);
		char chunk[65536];
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put(in, chunk, (size_t)n);
	}
}

/* ---- runc ---- */
static void forward(int sig)
{
	if (g_child > 0)
		kill(g_child, sig);
}

/* runs argv as a child with this process's stdio; returns its wait status */
static int run_runc(int sock, char **argv, int stdin_null, struct buf *in, size_t *consumed)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* from here on, runc forwards the terminal's ^C to the container; we stay for its status
	 * (before, ^C ends this client and the daemon abandons the run it prepared) */
	signal(SIGINT, SIG_IGN);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die(FAILED, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		/* runc must not outlive this client: the daemon would wait for an exit nobody reports */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(FAILED);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* without -i: the container's stdin is /dev/null, as docker's (and the cold path's) */
		if (stdin_null) {
			int nul = open("/dev/null", O_RDONLY);
			if (nul < 0 || dup2(nul, 0) < 0)
				_exit(FAILED);
			if (nul != 0)
				close(nul);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "capulator: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	g_child = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	struct buf m = {0};
	char num[32];
	snprintf(num, sizeof num, "%d", (int)pid);
	puts_(&m, "{\"type\":\"started\",\"pid\":");
	puts_(&m, num);
	puts_(&m, "}\n");
	send_all(sock, m.p, m.len); /* a daemon gone shows at the next read */
	free(m.p);
	/* while runc runs, pass on what the daemon writes (warnings) as it comes */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (pidfd >= 0 && sock >= 0) {
		struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents) {
			struct buf line = {0};
			int r;
			do {
				r = read_line(sock, in, consumed, &line);
				if (r == 0) {
					struct msg msg;
					if (parse(line.p, line.len, &msg) == 0 && !strcmp(msg.type, "stderr") && msg.text.p)
						write_all(2, msg.text.p, msg.text.len);
					msg_free(&msg); /* also what a failed parse had taken */
				}
			} while (r == 0 && memchr(in->p + *consumed, '\n', in->len - *consumed));
			free(line.p);
			if (r < 0)
				break; /* the daemon is gone: wait for runc, then report it */
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die(FAILED, "waitpid: %s", strerror(errno));
	g_child = 0;
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	return status;
}

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	if (argc < 2 || strcmp(argv[1], "run") != 0)
		cold();
	int sock = connect_daemon();
	if (sock < 0)
		cold();

	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		cold(); /* the cold path reports it as it would */
	struct buf req = {0};
	puts_(&req, "{\"type\":\"run\",\"version\":");
	char v[16];
	snprintf(v, sizeof v, "%d", PROTOCOL);
	puts_(&req, v);
	puts_(&req, ",\"argv\":[");
	for (int i = 2; i < argc; i++) {
		if (i > 2)
			puts_(&req, ",");
		put_json(&req, argv[i]);
	}
	puts_(&req, "],\"cwd\":");
	put_json(&req, cwd);
	puts_(&req, isatty(0) ? ",\"tty\":true" : ",\"tty\":false");
	/* a controlling terminal, which runc's -t opens (without one the cold path relays a pty) */
	int ctty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	puts_(&req, ctty >= 0 ? ",\"ctty\":true}\n" : ",\"ctty\":false}\n");
	if (ctty >= 0)
		close(ctty);
	if (send_all(sock, req.p, req.len) < 0) {
		close(sock);
		cold(); /* nothing was started: the daemon went away before reading */
	}
	free(req.p);

	struct buf in = {0}, line = {0};
	size_t consumed = 0;
	int ran = 0;
	while (read_line(sock, &in, &consumed, &line) == 0) {
		struct msg m;
		if (parse(line.p, line.len, &m) < 0)
			die(FAILED, "capulator serve sent a malformed message: %.200s", line.p);
		if (!strcmp(m.type, "stderr"))
			write_all(2, m.text.p ? m.text.p : "", m.text.len);
		else if (!strcmp(m.type, "exit")) {
			if (!m.has_code || m.code < 0 || m.code > 255)
				die(FAILED, "capulator serve sent a malformed exit status");
			exit((int)m.code);
		} else if (!strcmp(m.type, "fallback")) {
			if (ran)
				die(FAILED, "capulator serve asked for a fallback after runc ran");
			close(sock);
			cold();
		} else if (!strcmp(m.type, "exec")) {
			if (ran || m.argc < 1)
				die(FAILED, "capulator serve sent an unexpected exec");
			ran = 1;
			m.argv[m.argc] = NULL;
			int st = run_runc(sock, m.argv, m.stdin_null, &in, &consumed);
			char r[96];
			if (WIFSIGNALED(st))
				snprintf(r, sizeof r, "{\"type\":\"exited\",\"code\":null,\"signal\":%d}\n", WTERMSIG(st));
			else
				snprintf(r, sizeof r, "{\"type\":\"exited\",\"code\":%d,\"signal\":null}\n", WEXITSTATUS(st));
			send_all(sock, r, strlen(r));
		}
		/* other types: from a newer daemon, ignored */
		msg_free(&m);
	}
	die(FAILED, "lost the connection to capulator serve (%s); the run's state is unknown", ran ? "after the container ran" : "before the container ran");
}
