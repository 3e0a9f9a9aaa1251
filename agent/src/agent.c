/* capulator-agent: the seccomp user-notification agent of one capulator run.
 *
 *   capulator-agent serve --socket PATH --table FILE [--events-fd N] [--learn] [--run-id ID]
 *                         [--policy-name N] [--policy-version V] [--policy-hash H]
 *   capulator-agent eval TABLE        request lines on stdin → decision JSON lines
 *   capulator-agent classify          request lines on stdin → classification JSON lines
 *   capulator-agent check-table TABLE prints the verified table hash
 *
 * The protocol with the runtime is documented in agent/PROTOCOL.md. */
#include "agent.h"
#include "spool.h"
#include "exit-watch.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SIN6_LEN_RFC2133 24                       /* the kernel's (include/net/ipv6.h): sockaddr_in6 without sin6_scope_id */

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW('!', 4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1ULL
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define ARCH_NAME "x86_64"
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define ARCH_NAME "aarch64"
#else
#error "unsupported architecture"
#endif

#define PROTOCOL_VERSION 2

/* ---------- decoded arguments ---------- */
static struct arg *args_slot(struct args *a, const char *name) {
  if (a->n >= MAX_ARGS) return NULL;
  struct arg *x = &a->a[a->n++];
  memset(x, 0, sizeof *x);
  x->name = name;
  return x;
}
struct arg *args_add_num(struct args *a, const char *name, int64_t v, bool mem) {
  struct arg *x = args_slot(a, name);
  if (x) { x->kind = ARG_NUM; x->num = v; x->from_memory = mem; }
  return x;
}
struct arg *args_add_str(struct args *a, const char *name, const char *v, bool mem) {
  struct arg *x = args_slot(a, name);
  if (x) { x->kind = ARG_STR; snprintf(x->str, sizeof x->str, "%s", v); x->from_memory = mem; }
  return x;
}
struct arg *args_add_bool(struct args *a, const char *name, bool v) {
  struct arg *x = args_slot(a, name);
  if (x) { x->kind = ARG_BOOL; x->num = v; }
  return x;
}
const struct arg *args_get(const struct args *a, const char *name) {
  for (int i = 0; i < a->n; i++) if (!strcmp(a->a[i].name, name)) return &a->a[i];
  return NULL;
}

/* ---------- names (tables generated from libs/abi: abi.generated.h via classify.c) ---------- */
static const char *syscall_name(long nr) {
  switch (nr) {
#define S(n) case __NR_##n: return #n;
  S(capget) S(capset) S(prctl) S(socket) S(bind) S(setsockopt) S(setuid) S(setgid) S(setreuid) S(setregid) S(setresuid)
  S(setresgid) S(setgroups) S(setfsuid) S(setfsgid) S(fchown) S(fchownat) S(mknodat) S(chroot) S(mount) S(umount2)
  S(pivot_root) S(sethostname) S(setdomainname) S(settimeofday) S(clock_settime) S(adjtimex) S(clock_adjtime) S(reboot)
  S(kill) S(tkill) S(tgkill) S(setpriority) S(sched_setscheduler) S(setrlimit) S(prlimit64) S(ptrace) S(init_module)
  S(finit_module) S(delete_module) S(ioctl) S(execve) S(execveat)
  S(rt_sigqueueinfo) S(rt_tgsigqueueinfo) S(pidfd_send_signal) S(io_uring_setup) S(io_uring_enter) S(io_uring_register)
  S(fsopen) S(fsconfig) S(fsmount) S(fspick) S(move_mount) S(mount_setattr) S(open_tree) S(unshare) S(clone) S(setns)
  S(process_vm_readv) S(process_vm_writev) S(pidfd_getfd) S(kcmp) S(swapon) S(swapoff) S(acct) S(open_by_handle_at)
  S(kexec_load) S(kexec_file_load) S(syslog)
#ifdef __NR_iopl
  S(iopl) S(ioperm)
#endif
#ifdef __NR_chown
  S(chown) S(lchown) S(mknod)
#endif
#undef S
  default: return NULL;
  }
}

/* ---------- time ---------- */
static inline uint64_t now_ns(clockid_t c) {
  struct timespec t; clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
/* CLOCK_REALTIME for a CLOCK_MONOTONIC reading: the offset between the two is read again once a
 * millisecond has passed, so a decision costs one clock read fewer and its time (kept to the
 * millisecond) follows a clock step within a millisecond. */
static uint64_t real_of(uint64_t mono) {
  static uint64_t off, at;
  static bool known;
  if (!known || mono - at > 1000000ull) {
    off = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
    at = mono; known = true;
  }
  return mono + off;
}

/* ---------- event output (buffered lines) ----------
 * In serve mode only the recorder thread (below) writes here. The trapped process never waits
 * for the runtime: the events fd is non-blocking, the buffer grows up to obuf_max and is written
 * in large chunks; past obuf_max events are dropped and counted, and the runtime reports them
 * as lostEvents. */
#define OBUF_MAX_DEFAULT (64u << 20)
static size_t obuf_max = OBUF_MAX_DEFAULT;           /* --events-buffer */
#define OBUF_CHUNK (64u << 10)
static int events_fd = -1;
static char *obuf; static size_t olen, ooff, ocap = 1 << 20;
static uint64_t dropped;
static bool events_broken;
/* How the subject cache learns of thread exits (see subject_of): the BPF exit watch
 * (exit-watch.h), one load after each RECV; or, where it cannot load, the pidfds of cached threads
 * in an epoll set of their own, one epoll_wait after each RECV (the notify fd is in no epoll set:
 * while it is, every notification also runs epoll's wake-up callback). */
static bool exit_watch;
static uint64_t exits_seen;
static int pidepfd = -1;
/* Writes what the events fd takes now (block=false; returns false if some is left) or everything
 * (block=true). */
static bool write_spool(void);
static bool to_spool;                               /* decision lines go to the spool (recorder running) */
static bool write_events(bool block) {
  if (to_spool) return write_spool();
  if (events_broken) { olen = ooff = 0; return true; }
  bool all = true;
  while (ooff < olen) {
    ssize_t w = write(events_fd, obuf + ooff, olen - ooff);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!block) { all = false; break; }
        struct pollfd p = {events_fd, POLLOUT, 0}; poll(&p, 1, 1000); continue;
      }
      fprintf(stderr, "capulator-agent: events: %s\n", strerror(errno));
      events_broken = true; olen = ooff = 0; return true;
    }
    ooff += (size_t)w;
  }
  if (ooff == olen) olen = ooff = 0;
  else if (ooff > (ocap >> 2)) { memmove(obuf, obuf + ooff, olen - ooff); olen -= ooff; ooff = 0; }
  return all;
}
static bool out_room(size_t n) {
  if (olen + n <= ocap) return true;
  size_t want = ocap;
  while (want < olen + n) want *= 2;
  if (want > obuf_max && olen + n > obuf_max) return false;
  if (want > obuf_max) want = obuf_max;
  char *nb = realloc(obuf, want);
  if (!nb) return false;
  obuf = nb; ocap = want;
  return true;
}
/* An event is assembled at the end of the buffer and committed (or rolled back) as a whole. */
static size_t ev_start; static bool ev_overflow;
static void ev_begin(void) { ev_start = olen; ev_overflow = false; }
static bool ev_commit(void) {
  if (ev_overflow) { olen = ev_start; dropped++; return false; }
  return true;
}
static void out_raw(const char *s, size_t n) {
  if (ev_overflow) return;
  if (!out_room(n)) { ev_overflow = true; return; }
  memcpy(obuf + olen, s, n); olen += n;
}
static void out(const char *s) { out_raw(s, strlen(s)); }
static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...) {
  char b[512]; va_list ap; va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap); va_end(ap);
  if (n > 0) out_raw(b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}
/* Hot-path formatting without printf (every audited call writes one line). */
#define OUT(lit) out_raw(lit, sizeof(lit) - 1)
static void out_u64(uint64_t v) {
  char b[20]; int i = 20;
  do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  out_raw(b + i, (size_t)(20 - i));
}
static void out_i64(int64_t v) {
  if (v < 0) { OUT("-"); out_u64((uint64_t)0 - (uint64_t)v); } else out_u64((uint64_t)v);
}
static const char HEX[] = "0123456789abcdef";
static void out_hex16(uint64_t v) {
  char b[16];
  for (int i = 15; i >= 0; i--) { b[i] = HEX[v & 15]; v >>= 4; }
  out_raw(b, 16);
}
/* A JSON string; bytes outside printable ASCII are written as \u00XX (one escape per byte). */
static void out_json_strn(const char *s, size_t n);
static void out_json_str(const char *s) { out_json_strn(s, strnlen(s, MAX_STR * 4)); }
static void out_json_strn(const char *s, size_t n) {
  if (ev_overflow) return;
  if (!out_room(6 * n + 2)) { ev_overflow = true; return; }
  char *b = obuf + olen; size_t o = 0;
  b[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') { b[o++] = '\\'; b[o++] = (char)ch; }
    else if (ch < 0x20 || ch >= 0x7f) { b[o++] = '\\'; b[o++] = 'u'; b[o++] = '0'; b[o++] = '0'; b[o++] = HEX[ch >> 4]; b[o++] = HEX[ch & 15]; }
    else b[o++] = (char)ch;
  }
  b[o++] = '"';
  olen += o;
}
static void out_argv(const struct arg *av, int n) {
  OUT("{");
  for (int i = 0; i < n; i++) {
    const struct arg *x = &av[i];
    if (i) OUT(",");
    out_json_str(x->name); OUT(":");
    switch (x->kind) {
    case ARG_NUM: out_i64(x->num); break;
    case ARG_BOOL: if (x->num) OUT("true"); else OUT("false"); break;
    case ARG_STR: out_json_str(x->str); break;
    case ARG_NUMS: OUT("["); for (int j = 0; j < x->n; j++) { if (j) OUT(","); out_i64(x->nums[j]); } OUT("]"); break;
    case ARG_STRS: OUT("["); for (int j = 0; j < x->n; j++) { if (j) OUT(","); out_json_str(x->strs[j]); } OUT("]"); break;
    }
  }
  OUT("}");
}
static void out_privs(const int *privs, int n, const char *capability) {
  OUT("\"privileges\":[");
  for (int i = 0; i < n; i++) { if (i) OUT(","); out_json_str(priv_name(privs[i])); }
  OUT("],\"capability\":");
  if (capability) out_json_str(capability); else OUT("null");
}
static void out_class(const struct classification *c) { out_privs(c->privs, c->nprivs, c->capability); }

/* ---------- tracee memory ---------- */
static ssize_t read_mem(pid_t tid, uint64_t addr, void *buf, size_t len) {
  struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
  return process_vm_readv(tid, &l, 1, &r, 1, 0);
}
/* A NUL-terminated string of at most max-1 bytes, read page by page. */
static bool read_str(pid_t tid, uint64_t addr, char *buf, size_t max) {
  size_t got = 0;
  if (!addr) return false;
  while (got < max - 1) {
    size_t page_left = 4096 - ((addr + got) & 4095);
    size_t want = max - 1 - got < page_left ? max - 1 - got : page_left;
    ssize_t n = read_mem(tid, addr + got, buf + got, want);
    if (n <= 0) return false;
    void *z = memchr(buf + got, 0, (size_t)n);
    if (z) return true;
    got += (size_t)n;
  }
  buf[max - 1] = 0;
  return true;                                       /* truncated */
}

/* ---------- subjects (cached per thread; see PROTOCOL.md "Subjects") ---------- */
struct tcache {
  int tid, tgid, pidfd;
  long ids[8];                                       /* ruid euid suid fsuid rgid egid sgid fsgid */
  uint64_t capeff;                                   /* the thread's effective capabilities (CapEff) */
  char exe[MAX_STR];
  uint64_t gen;                                      /* answered notifications of this thread */
  int last_nr; uint64_t last_hash; bool last_abandoned;
  bool used;
};
#define TC_SIZE 1024
static struct tcache tc[TC_SIZE];
static void tc_drop(struct tcache *e) {
  if (e->pidfd >= 0) close(e->pidfd);
  if (e->used && exit_watch) exit_watch_del(e->tid);
  memset(e, 0, sizeof *e);
  e->pidfd = -1;
}
static void tc_drop_tgid(int tgid) { for (int i = 0; i < TC_SIZE; i++) if (tc[i].used && tc[i].tgid == tgid) tc_drop(&tc[i]); }

/* A small file (of /proc) in one read, NUL-terminated: its length, or -1 with errno (0 when empty). */
static ssize_t read_text(const char *path, int oflags, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | oflags);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  int e = errno;
  close(fd);
  if (n < 0) { errno = e; return -1; }
  buf[n] = 0;
  return n;
}

static bool read_status(int tid, int *tgid, long ids[8], uint64_t caps[3]) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", tid);
  if (read_text(path, 0, buf, sizeof buf) <= 0) return false;
  char *p;
  if (tgid && (p = strstr(buf, "\nTgid:"))) *tgid = atoi(p + 6);
  if ((p = strstr(buf, "\nUid:"))) sscanf(p + 5, "%ld %ld %ld %ld", &ids[0], &ids[1], &ids[2], &ids[3]);
  if ((p = strstr(buf, "\nGid:"))) sscanf(p + 5, "%ld %ld %ld %ld", &ids[4], &ids[5], &ids[6], &ids[7]);
  if (caps) {
    if ((p = strstr(buf, "\nCapInh:"))) caps[0] = strtoull(p + 8, NULL, 16);
    if ((p = strstr(buf, "\nCapPrm:"))) caps[1] = strtoull(p + 8, NULL, 16);
    if ((p = strstr(buf, "\nCapEff:"))) caps[2] = strtoull(p + 8, NULL, 16);
  }
  return true;
}

/* Each cached thread is watched for its exit (by the BPF exit watch, or by a PIDFD_THREAD pidfd in
 * the agent's epoll set): when it exits, its entry is dropped before any later notification is
 * received (drop_exited), so a reused tid never inherits another thread's identity (a new
 * thread's notification can only exist after the old one died). The watch starts before the
 * identity is read, so an exit in between is seen too. */
static struct tcache *subject_of(int tid, bool *fresh) {
  unsigned h = (unsigned)tid % TC_SIZE;
  struct tcache *e = NULL;
  for (int i = 0; i < TC_SIZE; i++) {
    struct tcache *c = &tc[(h + (unsigned)i) % TC_SIZE];
    if (c->used && c->tid == tid) { *fresh = false; return c; }
    if (!c->used) { e = c; break; }
  }
  if (!e) { for (int i = 0; i < TC_SIZE; i++) if (tc[i].used) tc_drop(&tc[i]); e = &tc[h]; }
  memset(e, 0, sizeof *e);
  e->pidfd = -1;
  if (exit_watch && !exit_watch_add(tid, (unsigned)(e - tc))) {
    /* the map is full or failed: the pidfds from now on, for every entry */
    for (int i = 0; i < TC_SIZE; i++) if (tc[i].used) tc_drop(&tc[i]);
    exit_watch = false;
  }
  if (!exit_watch) {
    e->pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    if (e->pidfd < 0) { e->pidfd = -1; return NULL; }
  }
  uint64_t caps[3] = {0, 0, 0};
  if (!read_status(tid, &e->tgid, e->ids, caps)) {
    if (e->pidfd >= 0) close(e->pidfd);
    else exit_watch_del(tid);
    e->pidfd = -1;
    return NULL;
  }
  e->capeff = caps[2];
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/exe", tid);
  ssize_t n = readlink(path, e->exe, sizeof e->exe - 1);
  e->exe[n > 0 ? n : 0] = 0;
  if (e->pidfd >= 0 && pidepfd >= 0) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(e - tc)};
    epoll_ctl(pidepfd, EPOLL_CTL_ADD, e->pidfd, &ev);
  }
  e->tid = tid; e->used = true; *fresh = true;
  return e;
}

/* ---------- decision records (PROTOCOL.md "Decision lines") ----------
 * Each decision is written as the runtime stores it: `decision TAB EventType TAB count TAB at TAB
 * payload-JSON`, the payload being the whole DecisionPayload (docs/events.md). The run id and the
 * policy reference are fixed for the run, so their JSON is built once. */
static struct table *table;
static char ev_tail[4096];
static const char *run_id = "", *policy_name, *policy_hash;
static const char *spool_path, *count_path;
static long policy_version;
static bool build_ev_tail(void) {
  size_t keep_olen = olen; bool keep_ov = ev_overflow;
  /* render with the output helpers, then move the text out of the buffer */
  ev_begin();
  out(",\"runId\":"); out_json_str(run_id);
  out(",\"policy\":{\"name\":"); out_json_str(policy_name ? policy_name : table_policy_name(table));
  outf(",\"version\":%ld,\"hash\":", policy_version);
  out_json_str(policy_hash ? policy_hash : table_hash(table));
  out("}}\n");
  size_t n = olen - keep_olen;
  bool ok = !ev_overflow && n < sizeof ev_tail;
  if (ok) { memcpy(ev_tail, obuf + keep_olen, n); ev_tail[n] = 0; }
  olen = keep_olen; ev_overflow = keep_ov;
  return ok;
}
/* Which event records a decision (docs/events.md): capability reads, capability changes, or a
 * privilege check. */
static const char *event_type(const char *name, const struct args *a) {
  if (!strcmp(name, "capget")) return "CapabilitiesQueried";
  if (!strcmp(name, "capset")) return "CapabilitiesChangeRequested";
  if (!strcmp(name, "prctl")) {
    const struct arg *o = args_get(a, "option_name");
    if (o && o->kind == ARG_STR && (!strcmp(o->str, "PR_CAPBSET_READ") || !strcmp(o->str, "PR_GET_SECUREBITS") || !strcmp(o->str, "PR_GET_KEEPCAPS")))
      return "CapabilitiesQueried";
    return "CapabilitiesChangeRequested";
  }
  return "PrivilegeChecked";
}
/* CLOCK_REALTIME ns as ISO 8601 UTC with milliseconds, as JavaScript's Date#toISOString writes
 * it (years 0000-9999). The date and time of day are formatted once per second. */
#define ISO_LEN 24
static void iso_time(uint64_t ns, char out_[ISO_LEN + 1]) {
  static time_t last = -1; static char head[32];
  time_t sec = (time_t)(ns / 1000000000ull);
  if (sec != last) {
    struct tm tm; gmtime_r(&sec, &tm);
    snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
    last = sec;
  }
  unsigned ms = (unsigned)((ns / 1000000ull) % 1000);
  memcpy(out_, head, 20);
  out_[20] = (char)('0' + ms / 100); out_[21] = (char)('0' + ms / 10 % 10); out_[22] = (char)('0' + ms % 10);
  out_[23] = 'Z'; out_[24] = 0;
}

/* Drops the cache entries of threads that have exited. Called after each RECV: a thread that
 * died before this notification was raised has its flag set and counted by now (or, without the
 * exit watch, a readable pidfd), so a reused tid never inherits the identity of the thread that
 * had it before. */
static void drop_exited(void) {
  if (exit_watch) {
    uint64_t n = exit_watch_count();
    if (n == exits_seen) return;
    exits_seen = n;
    for (unsigned i = 0; i < TC_SIZE; i++)
      if (exit_watch_take(i) && tc[i].used) tc_drop(&tc[i]);
    return;
  }
  struct epoll_event xs[64];
  int k;
  do {
    k = epoll_wait(pidepfd, xs, 64, 0);
    for (int i = 0; i < k; i++) {
      struct tcache *c = &tc[xs[i].data.u64 % TC_SIZE];
      if (c->used) tc_drop(c);
    }
  } while (k == 64);
}

/* ---------- the recorder thread (PROTOCOL.md "Decision lines") ----------
 * The notification loop never formats or writes an event: after answering it copies the facts
 * of the decision into a record in a single-producer/single-consumer ring and goes back to RECV.
 * The recorder thread formats records into lines and writes them to the events fd (blocking, in
 * 64 KiB chunks, and whenever it has caught up and been idle for 100 µs). On a 2-CPU machine
 * this keeps the formatting and the writes off the path of the trapped call (they run beside
 * it instead of between its answer and the next RECV). A full ring drops the record, counted. */
struct evrec {
  uint32_t len;                     /* bytes of this record in the ring */
  uint32_t nargs;                   /* UINT32_MAX: not a record, skip to the start of the ring */
  uint64_t seq, gen, h, t_real, lat;
  int pid, nr; unsigned tid;
  long euid, egid;
  const char *name, *etype, *decided, *count, *answered, *rule_id, *capability;
  int err; long long ret; bool emulated, learn;
  int nprivs; uint32_t exe_len;
  _Alignas(8) char tail[];          /* args (nargs), privs (nprivs), exe (exe_len bytes, no NUL) */
};
static size_t rec_size(uint32_t nargs, int nprivs, size_t exe_len) {
  return (sizeof(struct evrec) + nargs * sizeof(struct arg) + (size_t)nprivs * sizeof(int) + exe_len + 7) & ~(size_t)7;
}
static struct arg *rec_args(const struct evrec *r) { return (struct arg *)(void *)r->tail; }
static int *rec_privs(const struct evrec *r) { return (int *)(void *)(r->tail + r->nargs * sizeof(struct arg)); }
static char *rec_exe(const struct evrec *r) { return (char *)r->tail + r->nargs * sizeof(struct arg) + (size_t)r->nprivs * sizeof(int); }
/* One decision line from its record (the recorder thread, or inline when it is not running). */
static void format_record(const struct evrec *r) {
  char at[ISO_LEN + 1]; iso_time(r->t_real, at);
  ev_begin();
  OUT("decision\t"); out(r->etype); OUT("\t"); out(r->count); OUT("\t"); out_raw(at, ISO_LEN);
  OUT("\t{\"seq\":"); out_u64(r->seq);
  OUT(",\"key\":\""); out_i64(r->pid); OUT(":"); out_u64(r->tid); OUT(":"); out_i64(r->nr); OUT(":"); out_hex16(r->h); OUT(":"); out_u64(r->gen);
  OUT("\",\"at\":\""); out_raw(at, ISO_LEN);
  OUT("\",\"subject\":{\"pid\":"); out_i64(r->pid); OUT(",\"tid\":"); out_u64(r->tid);
  OUT(",\"uid\":"); out_i64(r->euid); OUT(",\"gid\":"); out_i64(r->egid); OUT(",\"exe\":"); out_json_strn(rec_exe(r), r->exe_len);
  OUT("},\"arch\":\"" ARCH_NAME "\",\"syscall\":\""); out(r->name); OUT("\",\"nr\":"); out_i64(r->nr);
  OUT(",\"args\":"); out_argv(rec_args(r), (int)r->nargs); OUT(",");
  out_privs(rec_privs(r), r->nprivs, r->capability);
  OUT(",\"decision\":\""); out(r->decided); OUT("\",\"ruleId\":");
  if (r->rule_id) out_json_str(r->rule_id); else OUT("null");
  if (r->err) { OUT(",\"errno\":"); out_i64(r->err); }
  if (r->emulated) { OUT(",\"return\":"); out_i64(r->ret); }
  OUT(",\"answeredBy\":\""); out(r->answered); OUT("\",\"latencyNs\":"); out_u64(r->lat);
  if (r->learn) OUT(",\"learn\":true");
  out(ev_tail);
  ev_commit();
}

#define RING_SIZE (4u << 20)           /* small enough to stay in cache; the recorder buffers behind it (OBUF_MAX) */
static char *ring;
/* Byte counters (ring offset = counter % RING_SIZE), each on a cache line of its own: the loop
 * writes the head, the recorder the tail and its sleeping flag; sharing a line made every decision
 * wait for the line to come back from the recorder's CPU (~15% of handle(), by perf annotate). */
static _Alignas(64) _Atomic size_t ring_head;
static _Alignas(64) _Atomic size_t ring_tail;
static _Alignas(64) atomic_int rec_sleeping;
static _Alignas(64) size_t tail_seen;                /* the loop's last read of ring_tail */
static atomic_int rec_stop;
static uint64_t ring_dropped;

/* Space for a record of `need` bytes in the ring; NULL when the ring is full. */
static struct evrec *rec_reserve(size_t need) {
  size_t head = atomic_load_explicit(&ring_head, memory_order_relaxed);
  size_t pos = head % RING_SIZE, room = RING_SIZE - pos;
  size_t want = room < need ? room + need : need;
  /* the recorder's tail is read only when the space last seen is not enough */
  if (RING_SIZE - (head - tail_seen) < want) {
    tail_seen = atomic_load_explicit(&ring_tail, memory_order_acquire);
    if (RING_SIZE - (head - tail_seen) < want) { ring_dropped++; return NULL; }
  }
  if (room < need) {                                   /* no room before the end: skip to the start */
    struct evrec *skip = (struct evrec *)(ring + pos);
    skip->len = (uint32_t)room; skip->nargs = UINT32_MAX;
    atomic_store_explicit(&ring_head, head + room, memory_order_release);
    pos = 0;
  }
  return (struct evrec *)(ring + pos);
}
static void rec_publish(struct evrec *r) {
  r->len = (uint32_t)rec_size(r->nargs, r->nprivs, r->exe_len);
  atomic_store_explicit(&ring_head, atomic_load_explicit(&ring_head, memory_order_relaxed) + r->len, memory_order_release);
  /* No full fence between the store and this load (it was ~15% of handle()): if the recorder goes to
   * sleep just as this record is published, it may miss it and sleep until the next record's wake-up
   * or its own 100 ms timeout. Nothing is lost; the line is written at most 100 ms later. */
  if (atomic_load_explicit(&rec_sleeping, memory_order_relaxed)) {
    atomic_store(&rec_sleeping, 0);
    syscall(SYS_futex, &rec_sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
}
static void *recorder(void *arg) {
  (void)arg;
  size_t tail = atomic_load(&ring_tail);
  int idle = 0;
  bool stuck = false;                                   /* the events fd took less than offered: retry when idle */
  for (;;) {
    size_t head = atomic_load_explicit(&ring_head, memory_order_acquire);
    if (tail != head) {
      idle = 0;
      while (tail != head) {
        const struct evrec *r = (const struct evrec *)(ring + tail % RING_SIZE);
        if (r->nargs != UINT32_MAX) format_record(r);
        tail += r->len;
        /* the tail is published every 64 KiB and at the end of each batch, not per record */
        if (tail - atomic_load_explicit(&ring_tail, memory_order_relaxed) >= (64u << 10)) atomic_store_explicit(&ring_tail, tail, memory_order_release);
        /* never blocks: while the runtime does not read, lines wait in obuf (up to OBUF_MAX) */
        if (!stuck && olen - ooff >= OBUF_CHUNK) stuck = !write_events(false);
      }
      atomic_store_explicit(&ring_tail, tail, memory_order_release);
      continue;
    }
    if (atomic_load(&rec_stop)) {
      if (tail == atomic_load_explicit(&ring_head, memory_order_acquire)) break;
      continue;
    }
    if (idle > 0 && (olen > ooff || to_spool)) {                      /* caught up and idle: hand over what we have */
      stuck = !write_events(false);
      if (stuck) idle = 0;                              /* keep retrying every 100 µs, never sleep on output */
    }
    if (idle < 50) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
      idle++;
    } else {                                            /* idle for 5 ms: sleep until the loop publishes */
      atomic_store_explicit(&rec_sleeping, 1, memory_order_seq_cst);
      if (atomic_load_explicit(&ring_head, memory_order_seq_cst) == tail && !atomic_load(&rec_stop)) {
        struct timespec to = {0, 100000000};
        syscall(SYS_futex, &rec_sleeping, FUTEX_WAIT_PRIVATE, 1, &to, NULL, 0);
      }
      atomic_store(&rec_sleeping, 0);
    }
  }
  write_events(true);
  return NULL;
}
/* The spool (PROTOCOL.md "Spool"): everything the recorder formatted is appended to it, and
 * fdatasync'ed at most once a second and at exit. A write or sync error is an audit failure:
 * by default (--on-audit-failure stop) the agent stops the container itself, so no privileged
 * call goes unrecorded even if the runtime is gone; with `continue` it keeps answering and
 * counts every line it could not write as dropped. */
static const char *unmount_path;                    /* --unmount: the container's rootfs, detached once it has ended */
static const char *overlay_opts;                    /* --mount-overlay: mount the rootfs (at --unmount) before `ready` */
static bool audit_continue;
static int audit_errno;
static void audit_failed(int e) {
  if (audit_errno) return;
  audit_errno = e;
  if (spool_count) spool_count->audit_errno = (uint64_t)e;
  char line[256];
  int n = snprintf(line, sizeof line, "{\"type\":\"audit-failed\",\"errno\":%d,\"error\":\"%s\",\"action\":\"%s\"}\n", e, strerror(e),
                   audit_continue ? "continue" : "stop");
  if (!events_broken && n > 0 && write(events_fd, line, (size_t)n) < 0) { /* the runtime is gone: the count file says it */ }
  if (!audit_continue) {
    char why[160]; snprintf(why, sizeof why, "the audit record cannot be written (%s)", strerror(e));
    stop_container(why);
  }
}
static bool write_spool(void) {
  if (olen > ooff) {
    size_t lost = 0;
    if (audit_errno && !audit_continue) lost = count_lines(obuf + ooff, olen - ooff);
    else {
      size_t done = 0;
      int e = spool_write(obuf + ooff, olen - ooff, &done);
      if (e) { lost = count_lines(obuf + ooff + done, olen - ooff - done); audit_failed(e); }
    }
    if (lost) { dropped += lost; if (spool_count) spool_count->dropped = dropped; }
  }
  olen = ooff = 0;
  int e = spool_sync_error();
  if (e) audit_failed(e);
  return true;
}
static void recorder_stop(pthread_t t) {
  atomic_store(&rec_stop, 1);
  atomic_store(&rec_sleeping, 0);
  syscall(SYS_futex, &rec_sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  pthread_join(t, NULL);
}

/* ---------- the notification loop ---------- */
static int notify_fd = -1;
static bool learn;
static struct table *table;
static uint64_t seq, handled, counts[3], abandoned;
static int uts_ns_fd = -1;

static bool id_valid(uint64_t id) { return ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0; }

static uint64_t hash_args(const struct seccomp_data *d) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 6; i++) { h ^= d->args[i]; h *= 1099511628211ull; }
  h ^= d->instruction_pointer; h *= 1099511628211ull;
  return h;
}

/* The credentials of another process of the container: its pid is in the container's pid
 * namespace, so it is resolved through the container's own /proc. ids: r e s uid, r e s gid. */
static bool ids_of_status(const char *st, long ids[8]);
static bool target_missing;                          /* the last target_ids(): no such process (ESRCH) */
static bool target_ids(int tid, long pid, long ids[8]) {
  target_missing = false;
  if (pid <= 0) return false;
  char st[128];
  snprintf(st, sizeof st, "/proc/%d/root/proc/%ld/status", tid, pid);
  return ids_of_status(st, ids);
}
/* A process by its pid in the agent's (the host's) pid namespace. */
static bool host_ids(long pid, long ids[8]) {
  target_missing = false;
  char st[64];
  snprintf(st, sizeof st, "/proc/%ld/status", pid);
  return ids_of_status(st, ids);
}
static bool ids_of_status(const char *st, long ids[8]) {
  char buf[2048];
  ssize_t n = read_text(st, O_NOFOLLOW, buf, sizeof buf);
  if (n < 0) target_missing = errno == ENOENT;
  if (n <= 0) return false;
  char *p = strstr(buf, "\nUid:"), *q = strstr(buf, "\nGid:");
  return p && q && sscanf(p + 5, "%ld %ld %ld %ld", &ids[0], &ids[1], &ids[2], &ids[3]) == 4 &&
         sscanf(q + 5, "%ld %ld %ld %ld", &ids[4], &ids[5], &ids[6], &ids[7]) == 4;
}

struct plan {
  int sock_fd;                      /* bind: the tracee's socket, dup'ed into the agent */
  struct sockaddr_storage sa; socklen_t salen;
  char hostname[65]; size_t hostlen;
  int pre_err;                      /* the kernel's own check that fails before the privilege's (ESRCH, EINVAL, EFAULT, ENOENT) */
  int owner_fd;                     /* chown family: the file, resolved in the container (O_PATH), for a no-op chown the agent performs */
  struct rlimit rl; int rl_res;     /* setrlimit/prlimit64 of the caller's own process: the checked copy */
  bool rl_set;
};

/* A tracee's fd, duplicated into the agent (pidfd_getfd); -1 with errno on failure. */
static int tracee_fd(int tgid, int fd) {
  int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
  if (pidfd < 0) return -1;
  int r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int e = errno;
  close(pidfd);
  errno = e;
  return r;
}
/* The process a tracee's pidfd refers to, as a host pid: > 0, 0 when it has exited, -1 when fd is no pidfd. */
static long pidfd_target(int tgid, int fd) {
  int mine = tracee_fd(tgid, fd);
  if (mine < 0) return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", mine);
  int f = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
  if (f >= 0) close(f);
  close(mine);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strstr(buf, "\nPid:");
  if (!p) return -1;
  long pid = atol(p + 5);
  return pid > 0 ? pid : 0;
}

#ifndef RESOLVE_BENEATH
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif
struct open_how_ { uint64_t flags, mode, resolve; };
/* chown family: opens the file the call names as the container sees it (O_PATH): absolute paths
 * inside the container's root (RESOLVE_IN_ROOT), relative ones beneath the tracee's cwd or dirfd
 * (RESOLVE_BENEATH: a `..` above it or an absolute symlink fails, and the call stays privileged).
 * Returns the fd, or -1 with errno. */
static int open_in_container(int tid, int tgid, int dirfd_arg, bool use_dirfd, const char *path, bool nofollow) {
  int base;
  bool abs = path[0] == '/';
  if (abs) { char p[64]; snprintf(p, sizeof p, "/proc/%d/root", tid); base = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC); }
  else if (use_dirfd && dirfd_arg != AT_FDCWD) base = tracee_fd(tgid, dirfd_arg);
  else { char p[64]; snprintf(p, sizeof p, "/proc/%d/cwd", tid); base = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC); }
  if (base < 0) return -1;
  struct open_how_ how = {.flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0), .mode = 0,
                          .resolve = RESOLVE_NO_MAGICLINKS | (abs ? RESOLVE_IN_ROOT : RESOLVE_BENEATH)};
  const char *rel = abs ? path + strspn(path, "/") : path;
  int fd = (int)syscall(SYS_openat2, base, rel[0] ? rel : ".", &how, sizeof how);
  int e = errno;
  close(base);
  errno = e;
  return fd;
}

/* Decode the arguments the classifier and the policy need. Returns false when the notification
 * went stale while reading (the caller records "abandoned"). */
/* The syscall of a notification by number (decode and handle run once per trapped call: comparing
 * names there was ~40 strcmp calls per call, ~5% of the loop). Numbers absent on an architecture
 * never match. */
#define IS_NR(n) (req->data.nr == __NR_##n)
#ifndef __NR_chown
#define __NR_chown (-1001)
#define __NR_lchown (-1002)
#define __NR_mknod (-1003)
#endif
#ifndef __NR_iopl
#define __NR_iopl (-1004)
#define __NR_ioperm (-1005)
#endif
static bool decode(const struct seccomp_notif *req, const char *name, const struct tcache *subj, struct args *a, struct plan *pl) {
  const __u64 *r = req->data.args;
  int tid = (int)req->pid;
  bool mem = false;
  char s[MAX_STR];
  long ids[8];
  if (IS_NR(socket)) {
    const char *f = lookup_af((long)r[0]); const char *t = lookup_sock((long)(r[1] & 0xf));
    if (f) args_add_str(a, "family", f, false); else args_add_num(a, "family", (long)r[0], false);
    if (t) args_add_str(a, "type", t, false); else args_add_num(a, "type", (long)(r[1] & 0xf), false);
    args_add_num(a, "protocol", (int)r[2], false);
  } else if (IS_NR(bind)) {
    int pidfd = (int)syscall(SYS_pidfd_open, subj->tgid, 0);
    if (pidfd < 0) return id_valid(req->id);
    pl->sock_fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)r[0], 0);
    close(pidfd);
    int dom = 0; socklen_t dl = sizeof dom;
    if (pl->sock_fd < 0 || getsockopt(pl->sock_fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl)) {
      if (pl->sock_fd >= 0) close(pl->sock_fd);
      pl->sock_fd = -1; return true;             /* not a socket: the kernel will say ENOTSOCK/EBADF */
    }
    const char *f = lookup_af(dom);
    if (f) args_add_str(a, "family", f, false); else args_add_num(a, "family", dom, false);
    if (dom == AF_INET || dom == AF_INET6) {
      /* move_addr_to_kernel: an int length beyond sockaddr_storage is EINVAL before anything is read */
      int ulen = (int)r[2];
      if (ulen < 0 || (size_t)ulen > sizeof pl->sa) { close(pl->sock_fd); pl->sock_fd = -1; pl->pre_err = EINVAL; return true; }
      socklen_t len = (socklen_t)ulen;
      memset(&pl->sa, 0, sizeof pl->sa);
      ssize_t n = read_mem(tid, r[1], &pl->sa, len);
      mem = true;
      /* unreadable address: EFAULT, as the kernel's move_addr_to_kernel (never CONTINUE: the bytes could appear) */
      if (n != (ssize_t)len) { close(pl->sock_fd); pl->sock_fd = -1; pl->pre_err = EFAULT; return id_valid(req->id); }
      pl->salen = len;
      char ab[INET6_ADDRSTRLEN] = "";
      if (dom == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in *in = (void *)&pl->sa;
        args_add_num(a, "port", ntohs(in->sin_port), true);
        inet_ntop(AF_INET, &in->sin_addr, ab, sizeof ab); args_add_str(a, "addr", ab, true);
      } else if (dom == AF_INET6 && len >= SIN6_LEN_RFC2133) {   /* inet6_bind_sk takes the 24-byte RFC 2133 form */
        struct sockaddr_in6 *in6 = (void *)&pl->sa;
        args_add_num(a, "port", ntohs(in6->sin6_port), true);
        inet_ntop(AF_INET6, &in6->sin6_addr, ab, sizeof ab); args_add_str(a, "addr", ab, true);
      }
    } else { close(pl->sock_fd); pl->sock_fd = -1; }   /* the socket's family is fixed: not privileged, CONTINUE */
  } else if (IS_NR(setsockopt)) {
    const char *l = lookup_sol((long)r[1]);
    const char *o = lookup_option(l, (long)r[2]);
    if (l) args_add_str(a, "level", l, false); else args_add_num(a, "level", (int)r[1], false);
    if (o) args_add_str(a, "option", o, false); else args_add_num(a, "option", (int)r[2], false);
    int32_t val;
    if (r[3] && r[4] >= sizeof val) {
      mem = true;
      if (read_mem(tid, r[3], &val, sizeof val) == sizeof val) args_add_num(a, "value", val, true);
    }
  } else if (IS_NR(setuid) || IS_NR(setfsuid)) {
    args_add_num(a, "uid", (int32_t)r[0], false);
  } else if (IS_NR(setgid) || IS_NR(setfsgid)) {
    args_add_num(a, "gid", (int32_t)r[0], false);
  } else if (!strncmp(name, "setre", 5) || !strncmp(name, "setres", 6)) {
    bool uid = strstr(name, "uid") != NULL;
    struct arg *x = args_slot(a, uid ? "uids" : "gids");
    int n = name[5] == 's' ? 3 : 2;
    if (x) { x->kind = ARG_NUMS;
      for (int i = 0; i < n; i++) if ((int32_t)r[i] != -1) x->nums[x->n++] = (int32_t)r[i]; }
    if (n == 2) {   /* setreuid/setregid: the kernel checks real and effective separately */
      args_add_num(a, uid ? "ruid" : "rgid", (int32_t)r[0], false);
      args_add_num(a, uid ? "euid" : "egid", (int32_t)r[1], false);
    }
  } else if (IS_NR(setgroups)) {
    args_add_num(a, "size", (int)r[0], false);
  } else if (IS_NR(chown) || IS_NR(lchown) || IS_NR(fchown) || IS_NR(fchownat)) {
    int base = IS_NR(fchownat) ? 1 : 0;
    bool fchown_ = IS_NR(fchown);
    bool have_path = false;
    if (!fchown_) {
      mem = true;
      if (read_str(tid, r[base], s, sizeof s)) { args_add_str(a, "path", s, true); have_path = true; }
      else pl->pre_err = EFAULT;
    }
    int ui = fchown_ ? 1 : base + 1;
    args_add_num(a, "uid", (int32_t)r[ui], false); args_add_num(a, "gid", (int32_t)r[ui + 1], false);
    /* the file's current owner (a chown to it needs no privilege): the file as the container sees it */
    int fd = -1;
    if (fchown_) { fd = tracee_fd(subj->tgid, (int)r[0]); if (fd < 0) pl->pre_err = EBADF; }
    else if (have_path) {
      int flags = base ? (int)r[4] : 0;
      bool nofollow = IS_NR(lchown) || (flags & AT_SYMLINK_NOFOLLOW);
      if (base && (flags & AT_EMPTY_PATH) && !s[0]) fd = tracee_fd(subj->tgid, (int)r[0]);
      else if (!s[0]) pl->pre_err = ENOENT;
      else {
        fd = open_in_container(tid, subj->tgid, (int)r[0], base == 1, s, nofollow);
        if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == ENAMETOOLONG)) pl->pre_err = errno;
      }
    }
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
      args_add_num(a, "owner_uid", st.st_uid, !fchown_); args_add_num(a, "owner_gid", st.st_gid, !fchown_);
      pl->owner_fd = fd;
    } else if (fd >= 0) close(fd);
  } else if (IS_NR(mknod) || IS_NR(mknodat)) {
    int base = IS_NR(mknodat) ? 1 : 0;
    mem = true;
    if (read_str(tid, r[base], s, sizeof s)) args_add_str(a, "path", s, true);
    args_add_num(a, "mode", (int64_t)(r[base + 1] & 0xffffffff), false);
    args_add_num(a, "dev", (int64_t)r[base + 2], false);
  } else if (IS_NR(chroot) || IS_NR(umount2) || IS_NR(pivot_root)) {
    mem = true;
    if (read_str(tid, r[0], s, sizeof s)) args_add_str(a, "path", s, true);
  } else if (IS_NR(mount)) {
    mem = true;
    if (read_str(tid, r[1], s, sizeof s)) args_add_str(a, "path", s, true);
    if (r[2] && read_str(tid, r[2], s, 64)) args_add_str(a, "fstype", s, true);
  } else if (IS_NR(sethostname) || IS_NR(setdomainname)) {
    size_t len = (size_t)r[1];
    if (len <= 64) {
      mem = true;
      if (read_mem(tid, r[0], pl->hostname, len) == (ssize_t)len) { pl->hostname[len] = 0; pl->hostlen = len; args_add_str(a, "hostname", pl->hostname, true); }
    }
  } else if (IS_NR(clock_settime)) {
    const char *cn = lookup_clock((long)r[0]);
    if (cn) args_add_str(a, "clock", cn, false); else args_add_num(a, "clock", (int)r[0], false);
  } else if (IS_NR(adjtimex) || IS_NR(clock_adjtime)) {
    uint32_t modes = 0;
    mem = true;
    if (read_mem(tid, r[IS_NR(adjtimex) ? 0 : 1], &modes, sizeof modes) == sizeof modes) args_add_num(a, "modes", modes, true);
  } else if (IS_NR(reboot)) {
    args_add_num(a, "cmd", (int64_t)(uint32_t)r[2], false);
  } else if (IS_NR(kill) || IS_NR(tkill) || IS_NR(tgkill) || IS_NR(rt_sigqueueinfo) ||
             IS_NR(rt_tgsigqueueinfo) || IS_NR(pidfd_send_signal)) {
    /* the kernel's order: EINVAL for bad ids, ESRCH for a missing target, EINVAL for a bad signal, then EPERM */
    bool two = IS_NR(tgkill) || IS_NR(rt_tgsigqueueinfo);
    bool pidfd = IS_NR(pidfd_send_signal);
    long pid = (int32_t)r[0], sig = (int)r[two ? 2 : 1];
    args_add_num(a, "target_pid", pid, false); args_add_num(a, "signal", sig, false);
    bool got = false, missing = false;
    if (pidfd) {
      long hp = pidfd_target(subj->tgid, (int)r[0]);
      if (hp < 0) pl->pre_err = errno == EBADF ? EBADF : EINVAL;
      else if (hp == 0) missing = true;
      else { got = host_ids(hp, ids); missing = target_missing; }
    } else if ((two || IS_NR(tkill)) && (pid <= 0 || (two && (int32_t)r[1] <= 0))) pl->pre_err = EINVAL;
    else { got = target_ids(tid, two ? (int32_t)r[1] : pid, ids); missing = target_missing; }
    if (got) { args_add_num(a, "target_uid", ids[0], false); args_add_num(a, "target_suid", ids[2], false); }
    if (!pl->pre_err && missing) pl->pre_err = ESRCH;
    if (!pl->pre_err && (sig < 0 || sig > 64)) pl->pre_err = EINVAL;
  } else if (IS_NR(setpriority)) {
    args_add_num(a, "which", (int)r[0], false); args_add_num(a, "who", (int)r[1], false); args_add_num(a, "prio", (int32_t)r[2], false);
    if ((int)r[0] == 0 && (int)r[1] != 0) {
      if (target_ids(tid, (int)r[1], ids)) { args_add_num(a, "target_uid", ids[0], false); args_add_num(a, "target_euid", ids[1], false); }
      else if (target_missing) pl->pre_err = ESRCH;
    }
    if ((int)r[0] < 0 || (int)r[0] > 2) pl->pre_err = EINVAL;
  } else if (IS_NR(sched_setscheduler)) {
    const char *p = lookup_sched((long)(r[1] & ~0x40000000ull));
    args_add_num(a, "target_pid", (int32_t)r[0], false);
    if (p) args_add_str(a, "policy", p, false); else args_add_num(a, "policy", (int)r[1], false);
    if ((int32_t)r[0] != 0 && target_ids(tid, (int32_t)r[0], ids)) { args_add_num(a, "target_uid", ids[0], false); args_add_num(a, "target_euid", ids[1], false); }
  } else if (IS_NR(setrlimit) || IS_NR(prlimit64)) {
    bool pl64 = IS_NR(prlimit64);
    long res = (long)r[pl64 ? 1 : 0];
    const char *rn = lookup_rlimit(res);
    if (rn) args_add_str(a, "resource", rn, false); else args_add_num(a, "resource", res, false);
    uint64_t newp = r[pl64 ? 2 : 1];
    if (newp) {
      struct rlimit nl, cur;
      mem = true;
      pid_t who = pl64 && (int32_t)r[0] != 0 ? 0 : subj->tgid;
      if (who && read_mem(tid, newp, &nl, sizeof nl) == sizeof nl && prlimit(who, (int)res, NULL, &cur) == 0) {
        struct arg *x = args_add_bool(a, "raises_hard", nl.rlim_max > cur.rlim_max);
        if (x) x->from_memory = true;
        pl->rl = nl; pl->rl_res = (int)res; pl->rl_set = true;
      } else if (who && res >= RLIM_NLIMITS) pl->pre_err = EINVAL;
    }
  } else if (IS_NR(ptrace)) {
    const char *q = lookup_ptrace((long)r[0]);
    if (q) args_add_str(a, "request", q, false); else args_add_num(a, "request", (long)r[0], false);
    args_add_num(a, "target_pid", (int32_t)r[1], false);
    if (r[0] != 0 && target_ids(tid, (int32_t)r[1], ids)) {
      args_add_num(a, "target_uid", ids[0], false); args_add_num(a, "target_euid", ids[1], false); args_add_num(a, "target_suid", ids[2], false);
      args_add_num(a, "target_gid", ids[4], false);
    }
  } else if (IS_NR(process_vm_readv) || IS_NR(process_vm_writev) || IS_NR(kcmp) || IS_NR(pidfd_getfd)) {
    /* ptrace access checks on another process: the target's credentials (kcmp: the first target of another user) */
    bool got = false;
    if (IS_NR(pidfd_getfd)) {
      long hp = pidfd_target(subj->tgid, (int)r[0]);
      if (hp < 0) pl->pre_err = errno == EBADF ? EBADF : EINVAL;
      else if (hp == 0) pl->pre_err = ESRCH;
      else if (!(got = host_ids(hp, ids)) && target_missing) pl->pre_err = ESRCH;
    } else {
      args_add_num(a, "target_pid", (int32_t)r[0], false);
      got = target_ids(tid, (int32_t)r[0], ids);
      if (!got && target_missing) pl->pre_err = ESRCH;
      if (got && IS_NR(kcmp) && ids[0] == subj->ids[0] && ids[1] == subj->ids[0] && ids[2] == subj->ids[0]) {
        long ids2[8];
        if (target_ids(tid, (int32_t)r[1], ids2)) memcpy(ids, ids2, sizeof ids2);
        else if (target_missing) pl->pre_err = ESRCH;
      }
    }
    if (got) {
      args_add_num(a, "target_uid", ids[0], false); args_add_num(a, "target_euid", ids[1], false); args_add_num(a, "target_suid", ids[2], false);
      args_add_num(a, "target_gid", ids[4], false);
    }
  } else if (IS_NR(iopl)) {
    args_add_num(a, "level_io", (int)r[0], false);
  } else if (IS_NR(ioperm)) {
    args_add_num(a, "turn_on", (int)r[2], false);
  } else if (IS_NR(syslog)) {
    args_add_num(a, "action", (int)r[0], false);
  } else if (IS_NR(unshare) || IS_NR(clone)) {
    args_add_num(a, "flags", (int64_t)(r[0] & 0xffffffff), false);
  } else if (IS_NR(setns)) {
    args_add_num(a, "nstype", (int)r[1], false);
  } else if (IS_NR(open_tree)) {
    args_add_num(a, "flags", (int64_t)(r[2] & 0xffffffff), false);
    mem = true;
    if (read_str(tid, r[1], s, sizeof s)) args_add_str(a, "path", s, true);
  } else if (IS_NR(fsopen)) {
    mem = true;
    if (read_str(tid, r[0], s, 64)) args_add_str(a, "fstype", s, true);
  } else if (IS_NR(move_mount)) {
    mem = true;
    if (read_str(tid, r[3], s, sizeof s)) args_add_str(a, "path", s, true);
  } else if (IS_NR(mount_setattr) || IS_NR(fspick)) {
    mem = true;
    if (read_str(tid, r[1], s, sizeof s)) args_add_str(a, "path", s, true);
  } else if (IS_NR(ioctl)) {
    if ((r[1] & 0xffffffff) == TIOCSTI) { args_add_str(a, "request", "TIOCSTI", false); goto decoded; }
    const char *q = lookup_sioc((long)(r[1] & 0xffffffff));
    if (q) args_add_str(a, "request", q, false); else args_add_num(a, "request", (long)(r[1] & 0xffffffff), false);
  } else if (IS_NR(prctl)) {
    const char *o = lookup_prctl((long)r[0]);
    if (o) args_add_str(a, "option_name", o, false); else args_add_num(a, "option_name", (int)r[0], false);
    if (r[0] == 47) {
      static const char *AMB[] = {NULL, "PR_CAP_AMBIENT_IS_SET", "PR_CAP_AMBIENT_RAISE", "PR_CAP_AMBIENT_LOWER", "PR_CAP_AMBIENT_CLEAR_ALL"};
      if (r[1] >= 1 && r[1] <= 4) args_add_str(a, "ambient_op", AMB[r[1]], false);
      if (r[1] != 4 && r[2] < (uint64_t)NCAPS) args_add_str(a, "cap", CAPNAMES[r[2]], false);
    }
  } else if (IS_NR(capset)) {
    struct __user_cap_header_struct hdr; struct __user_cap_data_struct d[2]; memset(d, 0, sizeof d);
    mem = true;
    if (read_mem(tid, r[0], &hdr, sizeof hdr) == sizeof hdr && r[1]) {
      size_t words = hdr.version == _LINUX_CAPABILITY_VERSION_1 ? 1 : 2;
      uint64_t cur[3] = {0, 0, 0};
      if (read_mem(tid, r[1], d, words * sizeof d[0]) == (ssize_t)(words * sizeof d[0]) && read_status(tid, NULL, ids, cur)) {
        uint64_t ne = d[0].effective | (uint64_t)d[1].effective << 32, np = d[0].permitted | (uint64_t)d[1].permitted << 32,
                 ni = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
        /* added: in the new sets but not in the current permitted set (inheritable growth beyond it too) */
        uint64_t added = (ne | np | ni) & ~cur[1];
        struct arg *x = args_slot(a, "caps");
        if (x) { x->kind = ARG_STRS; x->from_memory = true;
          for (int i = 0; i < NCAPS && x->n < MAX_ARR; i++) if (added >> i & 1) x->strs[x->n++] = CAPNAMES[i]; }
      }
    }
  }
decoded:
  /* Every read of tracee memory is separated from the use of its bytes by an ID_VALID check. */
  if (mem && !id_valid(req->id)) {
    if (pl->sock_fd >= 0) { close(pl->sock_fd); pl->sock_fd = -1; }
    if (pl->owner_fd >= 0) { close(pl->owner_fd); pl->owner_fd = -1; }
    return false;
  }
  return true;
}

static const char *answered_name[] = {"continue", "performed", "errno", "emulated", "abandoned", "kernel"};
enum answered { ANS_CONTINUE, ANS_PERFORMED, ANS_ERRNO, ANS_EMULATED, ANS_ABANDONED, ANS_KERNEL };

/* Does the thread hold (in its effective set) a capability that lets the kernel grant this call?
 * When it does not, the kernel refuses the privileged form by itself, with Linux's own errno and
 * after Linux's own argument checks, so a denial can be left to it (PROTOCOL.md "Linux's own
 * behaviour"). The ring (io_uring) names no capability: the agent always decides it. */
static bool cap_held(const struct tcache *t, const char *name, const struct classification *c) {
  if (!c->capability) return true;
  int n = cap_number(c->capability);
  if (n < 0 || (t->capeff >> n) & 1) return true;
  if (!strcmp(name, "setsockopt") && ((t->capeff >> CAP_NET_ADMIN) & 1)) return true;   /* CAP_NET_RAW or CAP_NET_ADMIN */
  return false;
}
/* Whether the classification names `priv`. */
static bool names_priv(const struct classification *c, const char *priv) {
  int n = priv_number(priv);
  for (int i = 0; i < c->nprivs; i++) if (c->privs[i] == n) return true;
  return false;
}

/* The errno Linux gives when the capability is missing, where it is not EPERM: bind to a reserved
 * port (inet_bind_conflict… __inet_bind: EACCES) and lowering one's nice value (set_one_prio: EACCES,
 * unless the target is another user's process: EPERM). */
static int linux_errno(const struct classification *c) {
  if (names_priv(c, "PRIV_NETINET_RESERVEDPORT")) return EACCES;
  return names_priv(c, "PRIV_SCHED_SETPRIORITY") && !names_priv(c, "PRIV_SCHED_DIFFCRED") ? EACCES : EPERM;
}

/* The agent performs an allowed bind itself (the address came from tracee memory) with its own
 * credentials. Of bind's checks only one reads them: CAP_NET_BIND_SERVICE for a port below the
 * socket's netns ip_unprivileged_port_start (__inet_bind, __inet6_bind). So this thread holds that
 * capability in its effective set only for a bind whose reserved port the policy granted; any
 * other bind it performs is judged by the kernel as a caller without it would be (errno order,
 * the netns's own threshold, an address the classification could not read). Capabilities are
 * per thread: capset(2) with pid 0 changes only the calling one. Returns 0 or the errno. */
static int bind_as_granted(int fd, const struct sockaddr_storage *sa, socklen_t len, bool reserved) {
  static int effective = -1;                         /* CAP_NET_BIND_SERVICE in this thread's effective set (-1: not read) */
  if (effective != (int)reserved) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return errno;
    uint32_t bit = 1u << CAP_NET_BIND_SERVICE;
    d[0].effective = reserved ? d[0].effective | bit : d[0].effective & ~bit;
    /* raising fails when the agent lacks it in its permitted set: the bind is then refused as Linux would */
    if (syscall(SYS_capset, &h, d) == 0) effective = reserved;
    else if (reserved) return EACCES;
    else return errno;                               /* cannot drop it: never bind with it held by mistake */
  }
  return bind(fd, (const struct sockaddr *)sa, len) ? errno : 0;
}

/* --runc-setup: runc was told noNewPrivileges=false (file capabilities), so it installed the
 * filter before its own setup (bounding set, setgroups/setres*id, capset, ambient). Until the
 * container's init (pid `init_pid`) makes its first execve, every notification is runc's and is
 * let through unrecorded; the user's program only exists after that execve (PROTOCOL.md). */
static bool runc_setup;
static int init_pid = -1;

static void handle(struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  memset(resp, 0, sizeof *resp);
  resp->id = req->id;
  const char *name = req->data.arch == NATIVE_ARCH ? syscall_name(req->data.nr) : NULL;
  if (!name) {                                     /* not ours to decide: fail closed */
    resp->error = -ENOSYS;
    ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    return;
  }
  bool fresh = false;
  struct tcache *subj = subject_of((int)req->pid, &fresh);
  if (runc_setup && (!subj || subj->tgid != init_pid)) runc_setup = false;     /* not runc's: decide */
  if (IS_NR(execve) || IS_NR(execveat)) {
    /* traced only so the subject cache learns that the program changes (PROTOCOL.md) */
    runc_setup = false;
    if (subj) tc_drop_tgid(subj->tgid);
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    return;
  }
  if (runc_setup) {
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    return;
  }
  struct args a; a.n = 0;                          /* (not zeroed: ~10 KiB, and only a.a[0..n) is read) */
  struct plan pl = {.sock_fd = -1, .owner_fd = -1};
  struct subject s = {0};
  struct classification c;
  struct decision d = {0};
  enum answered ans;
  uint64_t h = hash_args(&req->data);
  if (!subj || (fresh && !id_valid(req->id)) || !decode(req, name, subj, &a, &pl)) {
    /* the target went away (or was interrupted) while we looked at it */
    ans = ANS_ABANDONED; abandoned++;
    if (subj) { subj->last_abandoned = true; subj->last_nr = req->data.nr; subj->last_hash = h; }
    memset(&c, 0, sizeof c);
    d.action = ACT_DENY; d.rule = -1; d.err = 0; d.audit = true;
    if (subj) { s.pid = subj->tgid; s.euid = subj->ids[1]; s.egid = subj->ids[5]; snprintf(s.exe, sizeof s.exe, "%s", subj->exe); }
    s.tid = (int)req->pid;
    goto emit;
  }
  s.pid = subj->tgid; s.tid = subj->tid;
  s.ruid = subj->ids[0]; s.euid = subj->ids[1]; s.suid = subj->ids[2]; s.fsuid = subj->ids[3];
  s.rgid = subj->ids[4]; s.egid = subj->ids[5]; s.sgid = subj->ids[6]; s.fsgid = subj->ids[7];
  memcpy(s.exe, subj->exe, sizeof s.exe);
  classify(name, &a, &s, &c);
  table_decide(table, name, &a, &s, &c, &d);
  if (learn) { d.action = ACT_ALLOW; d.audit = true; }
  /* io_uring performs bind/socket/setsockopt out of seccomp's reach: only a rule naming it allows it */
  else if (d.action == ACT_ALLOW && d.rule < 0 && !strncmp(name, "io_uring_", 9)) { d.action = ACT_DENY; d.err = EPERM; d.audit = true; }
  if (d.action != ACT_EMULATE && pl.pre_err) {
    /* the kernel's own check that comes before any privilege check (ESRCH, EINVAL, EFAULT, ENOENT, EBADF) */
    resp->error = -pl.pre_err; ans = ANS_ERRNO;
  } else switch (d.action) {
  case ACT_DENY:
    if (!learn && !c.unprivileged && !cap_held(subj, name, &c)) {
      /* the caller does not hold the capability: Linux refuses the privileged form itself, with its own errno */
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; ans = ANS_KERNEL;
    } else if (IS_NR(setfsuid) || IS_NR(setfsgid)) {
      /* setfsuid/setfsgid never fail on Linux: refused, they change nothing and return the previous id */
      resp->val = subj->ids[name[5] == 'u' ? 3 : 7]; ans = ANS_EMULATED;
    } else if (pl.sock_fd >= 0 && !c.unprivileged) {
      /* a refused reserved port, by a caller that holds CAP_NET_BIND_SERVICE: bound here without it, so the
       * kernel's earlier checks (EINVAL, EAFNOSUPPORT, EADDRNOTAVAIL…) come first, as they would for the
       * caller without the capability; its own refusal (EACCES) gives the rule's errno. (A rule refusing an
       * unprivileged bind, which the kernel would make, is answered with its errno below, never performed.) */
      int e = bind_as_granted(pl.sock_fd, &pl.sa, pl.salen, false);
      if (e == EACCES) e = d.err > 0 && d.err != EPERM ? d.err : EACCES;
      if (e) { resp->error = -e; ans = ANS_ERRNO; } else ans = ANS_PERFORMED;  /* below the netns's own threshold: no privilege used */
    } else {
      resp->error = -(d.err > 0 && d.err != EPERM ? d.err : linux_errno(&c)); ans = ANS_ERRNO;
    }
    break;
  case ACT_EMULATE:
    resp->val = d.ret; ans = ANS_EMULATED; break;
  case ACT_ALLOW:
  default:
    if (pl.owner_fd >= 0 && c.unprivileged && !learn && (subj->capeff >> CAP_CHOWN & 1)) {
      /* a chown that needs no privilege, judged on a path the tracee could rewrite, by a thread that holds
       * CAP_CHOWN: performed on the file that was checked (the kernel would not stop a rewritten one) */
      const struct arg *u = args_get(&a, "uid"), *g = args_get(&a, "gid");
      if (fchownat(pl.owner_fd, "", (uid_t)(u ? u->num : -1), (gid_t)(g ? g->num : -1), AT_EMPTY_PATH)) resp->error = -errno;
      ans = ANS_PERFORMED;
    } else if (pl.rl_set && c.unprivileged && !learn && (subj->capeff >> CAP_SYS_RESOURCE & 1)) {
      /* a limit that does not raise the hard limit, read from tracee memory, by a thread holding
       * CAP_SYS_RESOURCE: set with the checked copy */
      if (prlimit(subj->tgid, (__rlimit_resource_t)pl.rl_res, &pl.rl, NULL)) resp->error = -errno;
      ans = ANS_PERFORMED;
    } else if (pl.sock_fd >= 0) {
      /* bind: the port came from tracee memory, so bind the tracee's socket here with the checked copy,
       * holding CAP_NET_BIND_SERVICE only when the policy granted this call a reserved port */
      int e = bind_as_granted(pl.sock_fd, &pl.sa, pl.salen, names_priv(&c, "PRIV_NETINET_RESERVEDPORT"));
      if (e) resp->error = -e;
      ans = ANS_PERFORMED;
    } else if ((IS_NR(sethostname) || IS_NR(setdomainname)) && d.rested_on_memory && pl.hostlen) {
      char nsp[64]; snprintf(nsp, sizeof nsp, "/proc/%d/ns/uts", (int)req->pid);
      int nfd = open(nsp, O_RDONLY | O_CLOEXEC);
      int rc = nfd >= 0 ? setns(nfd, CLONE_NEWUTS) : -1;
      if (nfd >= 0) close(nfd);
      if (rc == 0) rc = name[3] == 'h' ? sethostname(pl.hostname, pl.hostlen) : setdomainname(pl.hostname, pl.hostlen);
      if (rc) resp->error = -errno;
      ans = ANS_PERFORMED;
    } else if (d.rested_on_memory) {
      /* allowed on bytes the tracee can still change, and no way to perform it here: refuse (PROTOCOL.md) */
      resp->error = -EPERM; ans = ANS_ERRNO;
    } else {
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; ans = ANS_CONTINUE;
    }
  }
  if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp) != 0) {
    if (errno == ENOENT) { ans = ANS_ABANDONED; abandoned++; subj->last_abandoned = true; subj->last_nr = req->data.nr; subj->last_hash = h; }
  } else {
    subj->last_abandoned = false;
  }
  if (pl.sock_fd >= 0) close(pl.sock_fd);
  if (pl.owner_fd >= 0) close(pl.owner_fd);
  counts[d.action]++;
  handled++;
emit:
  {
    /* idempotency key: a restarted instance (previous one abandoned, same nr+args) keeps its generation */
    uint64_t gen = 0;
    if (subj) {
      gen = subj->gen;
      if (ans != ANS_ABANDONED) subj->gen++;
      else if (!(subj->last_nr == req->data.nr && subj->last_hash == h)) subj->gen++;
    }
    if (!d.audit && !learn) goto done;
    uint64_t t1 = now_ns(CLOCK_MONOTONIC), lat = t1 - t0;
    uint32_t nargs = (uint32_t)(a.n > 0 ? a.n : 0);
    int nprivs = c.nprivs > 0 ? c.nprivs : 0;
    size_t exe_len = strnlen(s.exe, MAX_STR - 1);
    struct evrec *r = rec_reserve(rec_size(nargs, nprivs, exe_len));
    if (r) {
      r->nargs = nargs; r->nprivs = nprivs; r->exe_len = (uint32_t)exe_len;
      r->seq = ++seq; r->gen = gen; r->h = h; r->t_real = real_of(t1); r->lat = lat;
      r->pid = s.pid; r->nr = req->data.nr; r->tid = req->pid; r->euid = s.euid; r->egid = s.egid;
      r->name = name; r->etype = event_type(name, &a);
      r->decided = ans == ANS_ABANDONED && !subj ? "deny" : action_name(d.action);
      r->count = ans == ANS_ABANDONED ? "-" : r->decided;
      r->answered = answered_name[ans]; r->rule_id = d.rule_id; r->capability = c.capability;
      r->err = resp->error ? -resp->error : 0; r->ret = resp->val; r->emulated = ans == ANS_EMULATED; r->learn = learn;
      if (nargs) memcpy(rec_args(r), a.a, nargs * sizeof(struct arg));
      if (nprivs) memcpy(rec_privs(r), c.privs, (size_t)nprivs * sizeof(int));
      memcpy(rec_exe(r), s.exe, exe_len);
      rec_publish(r);
    } else seq++;                                       /* numbered and lost: the runtime sees the gap */
    if (spool_count) spool_count->decided = seq;        /* a store into a shared page, no syscall */
  }
done:
  /* credentials changed: forget the cached ids of the whole thread group */
  if (subj && (ans == ANS_CONTINUE || ans == ANS_KERNEL || ans == ANS_PERFORMED) &&
      ((!strncmp(name, "set", 3) && (strstr(name, "uid") || strstr(name, "gid") || IS_NR(setgroups))) || IS_NR(capset)))
    tc_drop_tgid(subj->tgid);
}

static pthread_t main_thread;
static atomic_int hup_seen, watch_stop;
static void on_wake(int sig) { (void)sig; }
/* See serve(): waits for POLLHUP of the notify fd, then interrupts the loop's RECV every 1 ms
 * until the loop has ended (a signal sent just before it enters RECV would be missed once). */
static void *watcher(void *arg) {
  (void)arg;
  /* POLLHUP/POLLERR only: never woken per notification. The events pipe reports POLLERR once its
   * reader (the runtime) is gone: a run never outlives its supervisor, so the container is
   * stopped; the agent goes on answering until the notify fd hangs up, and the spool keeps every
   * decision for whoever recovers the run. */
  struct pollfd p[2] = {{.fd = notify_fd, .events = 0}, {.fd = events_fd, .events = 0}};
  while (!atomic_load(&watch_stop) && !atomic_load(&hup_seen)) {
    if (poll(p, 2, 100) > 0) {
      if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) atomic_store(&hup_seen, 1);
      if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        p[1].fd = -1;
        stop_container("the runtime is gone (its end of the events pipe closed)");
      }
    }
  }
  while (!atomic_load(&watch_stop)) {
    pthread_kill(main_thread, SIGUSR1);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* ---------- `capulator exec`: further filters of the same container ----------
 * runc exec installs the container's filter again on the exec'd process and sends that filter's
 * own notify fd to the same listener socket. So the agent keeps accepting after the container's
 * first fd (the acceptor thread), and the loop serves every fd: blocking RECV while there is one,
 * poll + RECV once there are more. runc's setup phase (--runc-setup) is tracked per fd: each
 * exec'd process has its own, which ends at its execve. Decisions go to the same run. */
#define MAX_LISTENERS 64
struct listener { int fd; bool setup; int pid; };
static struct listener lst[MAX_LISTENERS];
static int nlst;                                    /* the main loop's */
static struct listener pend[MAX_LISTENERS];
static int npend;
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int accepted, adopted, loop_done;
static int listen_fd = -1;
static bool setup_configured;

/* Accepts one connection of runc and takes the notify fd and the process's pid from its message. */
static int accept_notify(int ls, int *fd, int *pid) {
  int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return -1;
  static char state[16384]; char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {state, sizeof state - 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
  int e = errno;
  close(c);
  if (n < 0) { errno = e; return -1; }
  state[n] = 0;
  *fd = -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(fd, CMSG_DATA(cm), sizeof(int));
      break;
    }
  char *pp = strstr(state, "\"pid\":");
  *pid = pp ? atoi(pp + 6) : -1;
  return 0;
}

static void *acceptor(void *arg) {
  (void)arg;
  for (;;) {
    int fd, pid;
    if (accept_notify(listen_fd, &fd, &pid) < 0) {
      if (errno == EINVAL || errno == EBADF || atomic_load(&loop_done)) return NULL;   /* shut down */
      struct timespec ts = {0, 10000000}; nanosleep(&ts, NULL);
      continue;
    }
    if (fd < 0) continue;
    pthread_mutex_lock(&pend_mu);
    bool room = npend + nlst < MAX_LISTENERS;       /* nlst read racily: adopt_listeners checks again */
    if (room) pend[npend++] = (struct listener){fd, setup_configured && pid > 0, pid};
    pthread_mutex_unlock(&pend_mu);
    if (!room) { close(fd); continue; }             /* its filtered calls fail with ENOSYS: closed, not open */
    int want = atomic_fetch_add(&accepted, 1) + 1;
    /* the loop may sit in RECV on another fd: interrupt it (SIGUSR2 has no SA_RESTART, so RECV
     * returns EINTR rather than restart) until it has taken this one */
    while (atomic_load(&adopted) < want && !atomic_load(&loop_done)) {
      pthread_kill(main_thread, SIGUSR2);
      struct timespec ts = {0, 1000000}; nanosleep(&ts, NULL);
    }
  }
}

static void adopt_listeners(void) {
  if (atomic_load(&adopted) == atomic_load(&accepted)) return;
  pthread_mutex_lock(&pend_mu);
  for (int i = 0; i < npend; i++) {
    if (nlst < MAX_LISTENERS) lst[nlst++] = pend[i];
    else close(pend[i].fd);
  }
  atomic_fetch_add(&adopted, npend);
  npend = 0;
  pthread_mutex_unlock(&pend_mu);
}

static bool any_pending(void) {
  struct pollfd pf[MAX_LISTENERS];
  for (int i = 0; i < nlst; i++) pf[i] = (struct pollfd){.fd = lst[i].fd, .events = POLLIN};
  if (poll(pf, (nfds_t)nlst, 0) <= 0) return false;
  for (int i = 0; i < nlst; i++) if (pf[i].revents & POLLIN) return true;
  return false;
}

/* RECV and decide one notification of listener l (handle() reads the globals set here); false
 * when l's fd is unusable. */
static bool serve_one(struct listener *l, struct seccomp_notif *req, size_t rqs, struct seccomp_notif_resp *resp) {
  notify_fd = l->fd; runc_setup = l->setup; init_pid = l->pid;
  memset(req, 0, rqs);
  if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req)) return errno == EINTR || errno == ENOENT;  /* ENOENT: withdrawn */
  drop_exited();                                    /* before the subject cache is used (see subject_of) */
  handle(req, resp);
  l->setup = runc_setup;
  return true;
}

/* The subject cache's exit watch (see subject_of), set up once: by a spare while it waits for its
 * arguments, else at the start of serve(). Attaching to the tracepoint can wait for an RCU grace
 * period (~20 ms here when another agent's program was detached just before), which a spare
 * spends before its run needs it. CAPULATOR_AGENT_EXIT_WATCH=pidfd keeps the pidfds (the tests
 * run both). */
static char watch_err[256];
static bool watch_tried;
static void watch_exits(void) {
  if (watch_tried) return;
  watch_tried = true;
  const char *want = getenv("CAPULATOR_AGENT_EXIT_WATCH");
  if (want && !strcmp(want, "pidfd")) snprintf(watch_err, sizeof watch_err, "CAPULATOR_AGENT_EXIT_WATCH=pidfd");
  else exit_watch = exit_watch_open(TC_SIZE, watch_err, sizeof watch_err);
}

static int serve(const char *sock_path, const char *table_path) {
  char err[512];
  table = table_load(table_path, err, sizeof err);
  if (!table) { fprintf(stderr, "capulator-agent: %s\n", err); return 2; }
  if (table_learn(table)) learn = true;
  for (int i = 0; i < TC_SIZE; i++) tc[i].pidfd = -1;
  if (ocap > obuf_max) ocap = obuf_max;
  obuf = malloc(ocap);
  if (!obuf) return 1;
  if (!build_ev_tail()) { fprintf(stderr, "capulator-agent: run id or policy reference too long\n"); return 2; }

  signal(SIGPIPE, SIG_IGN);
  /* the rootfs overlay, mounted here rather than by a spawned mount(8): one fork fewer for the
   * runtime on every run's start (PROTOCOL.md "--mount-overlay") */
  if (overlay_opts && mount("overlay", unmount_path, "overlay", 0, overlay_opts)) {
    fprintf(stderr, "capulator-agent: cannot mount the overlay: %s\n", strerror(errno));
    return 1;
  }
  if (spool_path && !spool_open(spool_path, count_path, err, sizeof err)) { fprintf(stderr, "capulator-agent: %s\n", err); return 1; }
  fcntl(events_fd, F_SETFL, fcntl(events_fd, F_GETFL) | O_NONBLOCK);
  fcntl(events_fd, F_SETPIPE_SZ, 1 << 20);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(sock_path) >= sizeof sa.sun_path) { fprintf(stderr, "capulator-agent: socket path too long\n"); return 2; }
  strcpy(sa.sun_path, sock_path);
  unlink(sock_path);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1)) { perror("capulator-agent: listen"); return 1; }
  watch_exits();
  outf("{\"type\":\"ready\",\"protocol\":%d,\"policy\":", PROTOCOL_VERSION);
  out_json_str(table_policy_name(table));
  out(",\"version\":"); out_json_str(table_policy_version(table));
  outf(",\"hash\":\"%s\",\"learn\":%s,\"pid\":%d,\"exitWatch\":\"%s\"", table_hash(table), learn ? "true" : "false", getpid(), exit_watch ? "bpf" : "pidfd");
  if (!exit_watch) { out(",\"exitWatchError\":"); out_json_str(watch_err); }
  out("}\n");
  write_events(true);
  int pid = -1;
  if (accept_notify(ls, &notify_fd, &pid) < 0) { perror("capulator-agent: accept"); return 1; }
  if (notify_fd < 0) { fprintf(stderr, "capulator-agent: runc sent no notify fd\n"); return 1; }
  bool sync_wake = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0;
  setup_configured = runc_setup;
  init_pid = pid;
  if (pid <= 0) runc_setup = false;
  lst[0] = (struct listener){notify_fd, runc_setup, pid};
  nlst = 1;
  outf("{\"type\":\"attached\",\"pid\":%d,\"syncWakeUp\":%s}\n", pid, sync_wake ? "true" : "false");
  write_events(true);
  supervise_container(pid);

  struct seccomp_notif_sizes sz;
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz)) { perror("capulator-agent: notif sizes"); return 1; }
  size_t rqs = sz.seccomp_notif > sizeof(struct seccomp_notif) ? sz.seccomp_notif : sizeof(struct seccomp_notif);
  size_t rps = sz.seccomp_notif_resp > sizeof(struct seccomp_notif_resp) ? sz.seccomp_notif_resp : sizeof(struct seccomp_notif_resp);
  struct seccomp_notif *req = malloc(rqs); struct seccomp_notif_resp *resp = malloc(rps);
  if (!req || !resp) return 1;
  pidepfd = epoll_create1(EPOLL_CLOEXEC);
  if (pidepfd < 0) { perror("capulator-agent: epoll"); return 1; }
  /* The loop blocks in SECCOMP_IOCTL_NOTIF_RECV, as the bare agent does: waiting in epoll
   * instead loses most of SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP's benefit (measured here: 34 µs vs
   * 9.5 µs per unaudited capget). RECV after the last target died would block forever
   * (seccomp_unotify(2) BUGS), so a watcher thread polls the notify fd for POLLHUP and then
   * interrupts RECV (SIGUSR1, EINTR) until the loop has seen that nothing is pending. Without
   * the watcher or the recorder the run fails closed: the agent exits, the kernel answers ENOSYS
   * and the runtime kills the container. */
  struct sigaction sa_wake = {.sa_handler = on_wake, .sa_flags = SA_RESTART};
  sigemptyset(&sa_wake.sa_mask);
  sigaction(SIGUSR1, &sa_wake, NULL);
  struct sigaction sa_kick = {.sa_handler = on_wake};
  sigemptyset(&sa_kick.sa_mask);
  sigaction(SIGUSR2, &sa_kick, NULL);
  main_thread = pthread_self();
  /* from here on, only the recorder touches obuf, until it is stopped */
  pthread_t rec_thread;
  to_spool = spool_enabled();
  if (!spool_sync_start()) { fprintf(stderr, "capulator-agent: cannot start the spool's sync thread\n"); return 1; }
  ring = malloc(RING_SIZE);                           /* pages are touched only as the ring fills */
  if (!ring || pthread_create(&rec_thread, NULL, recorder, NULL)) { fprintf(stderr, "capulator-agent: cannot start the recorder thread\n"); return 1; }
  pthread_t watch_thread;
  if (pthread_create(&watch_thread, NULL, watcher, NULL)) { fprintf(stderr, "capulator-agent: cannot start the watcher thread\n"); return 1; }
  /* without the acceptor, `capulator exec` cannot connect: it fails, nothing runs unfiltered */
  pthread_t acc_thread;
  listen_fd = ls;
  bool accepting = pthread_create(&acc_thread, NULL, acceptor, NULL) == 0;
  if (!accepting) { close(ls); unlink(sock_path); }
  for (;;) {
    adopt_listeners();
    if (atomic_load(&hup_seen) && !any_pending()) break;     /* every target is gone */
    if (nlst == 1) {
      if (!serve_one(&lst[0], req, rqs, resp)) break;
      continue;
    }
    /* `capulator exec` added filters: wait on all of them */
    struct pollfd pf[MAX_LISTENERS];
    for (int i = 0; i < nlst; i++) pf[i] = (struct pollfd){.fd = lst[i].fd, .events = POLLIN};
    if (poll(pf, (nfds_t)nlst, -1) <= 0) continue;            /* EINTR: the watcher or the acceptor */
    bool broken = false;
    for (int i = 0; i < nlst; i++)
      if ((pf[i].revents & POLLIN) && !serve_one(&lst[i], req, rqs, resp)) { if (i == 0) broken = true; else pf[i].revents = POLLNVAL; }
    if (broken) break;
    for (int i = nlst - 1; i > 0; i--)                        /* an exec'd process and its children are gone */
      if ((pf[i].revents & (POLLHUP | POLLERR | POLLNVAL)) && !(pf[i].revents & POLLIN)) { close(lst[i].fd); lst[i] = lst[--nlst]; }
  }
  atomic_store(&loop_done, 1);
  /* every process of the container is gone: its rootfs mount goes now, in-process, instead of
   * by the runtime spawning umount(8) after this exit (PROTOCOL.md "--unmount") */
  bool unmounted = unmount_path && umount2(unmount_path, MNT_DETACH) == 0;
  if (accepting) {
    shutdown(ls, SHUT_RDWR);                                  /* wakes accept(): no exec after the end */
    pthread_join(acc_thread, NULL);
    close(ls); unlink(sock_path);
  }
  atomic_store(&watch_stop, 1);
  pthread_join(watch_thread, NULL);
  recorder_stop(rec_thread);
  spool_sync_stop();
  dropped += ring_dropped;
  write_events(true);
  to_spool = false;
  if (spool_count) { spool_count->decided = seq; spool_count->dropped = dropped; }
  ev_begin(); ev_overflow = false;
  while (!out_room(512)) write_events(true);
  outf("{\"type\":\"exit\",\"handled\":%llu,\"events\":%llu,\"dropped\":%llu,\"abandoned\":%llu,\"allow\":%llu,\"deny\":%llu,\"emulate\":%llu",
       (unsigned long long)handled, (unsigned long long)seq, (unsigned long long)dropped, (unsigned long long)abandoned,
       (unsigned long long)counts[ACT_ALLOW], (unsigned long long)counts[ACT_DENY], (unsigned long long)counts[ACT_EMULATE]);
  if (audit_errno) { out(",\"auditFailed\":"); out_json_str(strerror(audit_errno)); }
  if (unmounted) out(",\"unmounted\":true");
  out("}\n");
  if (spool_enabled() && !(audit_errno && !audit_continue)) {
    /* the trailer: the agent's own count, after every line it counts */
    size_t done = 0;
    int e = spool_write(obuf + ooff, olen - ooff, &done);
    if (!e) e = spool_sync_now();
    if (!e && spool_count) spool_count->done = 1;
    if (e) audit_failed(e);
  }
  write_events(true);
  (void)uts_ns_fd;
  return 0;
}

/* ---------- offline modes: eval / classify (differential tests) ---------- */
static void pdecode_inplace(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '%' && p[1] && p[2]) {
      char h[3] = {p[1], p[2], 0}; *o++ = (char)strtol(h, NULL, 16); p += 2;
    } else *o++ = *p;
  }
  *o = 0;
}
static bool is_int(const char *s) {
  if (*s == '-') s++;
  if (!*s) return false;
  for (; *s; s++) if (*s < '0' || *s > '9') return false;
  return true;
}
/* Interned strings for ARG_STRS (static lifetime in the offline modes). */
static const char *intern(const char *s) {
  for (int i = 0; i < NCAPS; i++) if (!strcmp(CAPNAMES[i], s)) return CAPNAMES[i];
  return strdup(s);
}
static const char *argname(const char *s) {
  static const char *names[] = {"family", "type", "protocol", "port", "addr", "level", "option", "uid", "gid", "uids", "gids", "mode",
                                "path", "target_pid", "signal", "request", "resource", "option_name", "caps", "prio", "policy",
                                "modes", "target_uid", "raises_hard", "hostname", "cmd", "clock", "which", "who", "size", "fstype",
                                "dev", "value", "ruid", "euid", "rgid", "egid", "target_euid", "target_suid", "target_gid",
                                "target_egid", "target_sgid", "target_dumpable", "owner_uid", "owner_gid", "ambient_op", "cap",
                                "nice", "priority", "current_nice", "bound_to_device"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) if (!strcmp(names[i], s)) return names[i];
  return strdup(s);
}
static int offline(const char *table_path, bool classify_only) {
  char err[512];
  struct table *t = NULL;
  if (!classify_only) { t = table_load(table_path, err, sizeof err); if (!t) { fprintf(stderr, "capulator-agent: %s\n", err); return 2; } }
  events_fd = 1; obuf = malloc(ocap);
  if (!obuf) return 1;
  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    struct args a = {0}; struct subject s = {0}; char sc[64] = "";
    s.ruid = s.euid = s.suid = s.fsuid = s.rgid = s.egid = s.sgid = s.fsgid = 0;
    bool fsu = false, fsg = false;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
      char *eq = strchr(tok, '=');
      if (!eq) continue;
      *eq = 0; char *k = tok, *v = eq + 1;
      pdecode_inplace(v);
      if (!strcmp(k, "syscall")) { snprintf(sc, sizeof sc, "%s", v); continue; }
      if (k[0] == '@') {
        k++;
        if (!strcmp(k, "exe")) snprintf(s.exe, sizeof s.exe, "%s", v);
        else {
          long x = atol(v);
          if (!strcmp(k, "uid")) s.ruid = s.euid = s.suid = s.fsuid = x;
          else if (!strcmp(k, "gid")) s.rgid = s.egid = s.sgid = s.fsgid = x;
          else if (!strcmp(k, "ruid")) s.ruid = x; else if (!strcmp(k, "euid")) s.euid = x; else if (!strcmp(k, "suid")) s.suid = x;
          else if (!strcmp(k, "rgid")) s.rgid = x; else if (!strcmp(k, "egid")) s.egid = x; else if (!strcmp(k, "sgid")) s.sgid = x;
          else if (!strcmp(k, "fsuid")) { s.fsuid = x; fsu = true; } else if (!strcmp(k, "fsgid")) { s.fsgid = x; fsg = true; }
        }
        continue;
      }
      const char *name = argname(k);
      if (v[0] == '[') {
        struct arg *x = args_slot(&a, name);
        if (!x) continue;
        v[strcspn(v, "]")] = 0; v++;
        x->kind = ARG_NUMS;
        char *s2 = NULL;
        for (char *e = strtok_r(v, ",", &s2); e && x->n < MAX_ARR; e = strtok_r(NULL, ",", &s2)) {
          if (is_int(e)) x->nums[x->n++] = atoll(e); else { x->kind = ARG_STRS; x->strs[x->n++] = intern(e); }
        }
      } else if (!strcmp(v, "true") || !strcmp(v, "false")) args_add_bool(&a, name, v[0] == 't');
      else if (is_int(v)) args_add_num(&a, name, atoll(v), false);
      else args_add_str(&a, name, v, false);
    }
    if (!fsu) s.fsuid = s.euid;
    if (!fsg) s.fsgid = s.egid;
    struct classification c;
    classify(sc, &a, &s, &c);
    out("{"); out_class(&c); outf(",\"unprivileged\":%s", c.unprivileged ? "true" : "false");
    if (t) {
      struct decision d;
      table_decide(t, sc, &a, &s, &c, &d);
      if (table_learn(t)) { d.action = ACT_ALLOW; d.rule_id = NULL; d.audit = true; }
      outf(",\"decision\":\"%s\",\"ruleId\":", action_name(d.action));
      if (d.rule_id) out_json_str(d.rule_id); else out("null");
      outf(",\"errno\":%d,\"return\":%ld,\"audit\":%s", d.err, d.ret, d.audit ? "true" : "false");
    }
    out("}\n");
    write_events(true);
  }
  return 0;
}

/* Whether /proc/PID/stat says PID started at START (field 22, clock ticks since boot; runc's
 * state.json keeps it as init_process_start): a pid reused since is another process. */
static bool started_at(const char *pid, const char *start) {
  char p[64], buf[1024];
  snprintf(p, sizeof p, "/proc/%s/stat", pid);
  if (read_text(p, 0, buf, sizeof buf) <= 0) return false;
  char *f = strrchr(buf, ')');
  if (!f) return false;
  f += 2;                                          /* field 3 (state) */
  for (int i = 3; i < 22 && f; i++) { f = strchr(f, ' '); if (f) f++; }
  return f && strtoull(f, NULL, 10) == strtoull(start, NULL, 10) && *start;
}

/* `capulator cp RUN:/PATH` (apps/cli/src/commands/cp.command.ts): a regular file of a running
 * container, copied to stdout. PATH is resolved inside the container's root as its first process
 * (PID, started at START) sees it, mounts included: RESOLVE_IN_ROOT, so no symlink and no `..`
 * leads out of it, and no magic link (/proc/…/root) either. PID is checked after its root is
 * opened, so a pid reused since cannot lend another root. Only a regular file is opened for
 * reading (O_PATH first: a FIFO or a device the container put there is never opened). When stdout
 * is a regular file it takes the source's permission bits. Exit 0; 1 with one line when PATH names
 * no regular file; 2 when PID is not the container's process any more, or on another error. */
static int read_in_root(const char *pid, const char *start, const char *path) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%s/root", pid);
  int root = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0 || !started_at(pid, start)) { fprintf(stderr, "the container's first process is gone\n"); return 2; }
  struct open_how_ how = {.flags = O_PATH | O_CLOEXEC, .mode = 0, .resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_IN_ROOT};
  const char *rel = path + strspn(path, "/");
  int fd = (int)syscall(SYS_openat2, root, rel[0] ? rel : ".", &how, sizeof how);
  if (fd < 0) {
    int e = errno;
    fprintf(stderr, "%s\n", e == ENOENT ? "no such file or directory" : e == ENOTDIR ? "not a directory on the way" : e == ELOOP ? "too many symbolic links" : strerror(e));
    return e == ENOENT || e == ENOTDIR || e == ELOOP ? 1 : 2;
  }
  struct stat st;
  if (fstat(fd, &st)) { fprintf(stderr, "%s\n", strerror(errno)); return 2; }
  if (S_ISDIR(st.st_mode)) { fprintf(stderr, "is a directory (capulator cp copies one file)\n"); return 1; }
  if (!S_ISREG(st.st_mode)) { fprintf(stderr, "not a regular file\n"); return 1; }
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  int in = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (in < 0) { fprintf(stderr, "%s\n", strerror(errno)); return 2; }
  static char buf[1 << 16];
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { fprintf(stderr, "%s\n", strerror(errno)); return 2; }
    if (r == 0) break;
    for (ssize_t w = 0; w < r;) {
      ssize_t k = write(1, buf + w, (size_t)(r - w));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) { fprintf(stderr, "writing: %s\n", strerror(errno)); return 2; }
      w += k;
    }
  }
  struct stat out;
  if (fstat(1, &out) == 0 && S_ISREG(out.st_mode)) fchmod(1, st.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID));
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: capulator-agent serve --socket PATH --table FILE [--events-fd N] [--learn] [--runc-setup]\n"
                  "                              [--run-id ID] [--policy-name N] [--policy-version V] [--policy-hash H]\n"
                  "                              [--events-buffer BYTES] [--spool FILE [--count FILE]]\n"
                  "                              [--on-audit-failure stop|continue]\n"
                  "                              [--unmount ROOTFS [--mount-overlay OPTIONS]]\n"
                  "       capulator-agent eval TABLE | classify | check-table TABLE | version\n"
                  "       capulator-agent read-in-root PID START PATH\n");
}

int main(int argc, char **argv) {
  if (argc < 2) { usage(); return 2; }
  if (!strcmp(argv[1], "version")) { printf("capulator-agent protocol %d\n", PROTOCOL_VERSION); return 0; }
  if (!strcmp(argv[1], "classify")) return offline(NULL, true);
  if (!strcmp(argv[1], "pty")) return pty_main(argc, argv);
  if (!strcmp(argv[1], "read-in-root") && argc == 5) return read_in_root(argv[2], argv[3], argv[4]);
  if (!strcmp(argv[1], "eval") && argc == 3) return offline(argv[2], false);
  if (!strcmp(argv[1], "check-table") && argc == 3) {
    char err[512]; struct table *t = table_load(argv[2], err, sizeof err);
    if (!t) { fprintf(stderr, "capulator-agent: %s\n", err); return 2; }
    printf("%s\n", table_hash(t)); return 0;
  }
  if (!strcmp(argv[1], "serve") && argc == 3 && !strcmp(argv[2], "--args-from-stdin")) {
    /* a spare (PROTOCOL.md "Spares"): started ahead, it waits for its run's arguments */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 0;
    watch_exits();                                  /* while there is time */
    static char buf[65536];
    size_t n = 0;
    for (;;) {
      if (n == sizeof buf) { fprintf(stderr, "capulator-agent: spare arguments too long\n"); return 2; }
      ssize_t r = read(0, buf + n, sizeof buf - n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return 0;                         /* never given a run: nothing to do */
      n += (size_t)r;
      if (n >= 2 && buf[n - 1] == 0 && buf[n - 2] == 0) break;
    }
    static char *av[256];
    int ac = 0;
    av[ac++] = argv[0];                             /* then the whole command line, `serve` first */
    for (size_t i = 0; i + 1 < n && buf[i] != 0; i += strlen(buf + i) + 1) {
      if (ac == (int)(sizeof av / sizeof av[0]) - 1) { fprintf(stderr, "capulator-agent: too many spare arguments\n"); return 2; }
      av[ac++] = buf + i;
    }
    av[ac] = NULL;
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul >= 0) { dup2(nul, 0); close(nul); }
    prctl(PR_SET_PDEATHSIG, 0);                     /* from here on, a runtime that dies is handled as for any run */
    argc = ac; argv = av;
    if (argc < 2 || strcmp(argv[1], "serve")) { usage(); return 2; }
  }
  if (!strcmp(argv[1], "serve")) {
    const char *sock = NULL, *tab = NULL;
    for (int i = 2; i < argc; i++) {
      if (!strcmp(argv[i], "--socket") && i + 1 < argc) sock = argv[++i];
      else if (!strcmp(argv[i], "--table") && i + 1 < argc) tab = argv[++i];
      else if (!strcmp(argv[i], "--events-fd") && i + 1 < argc) events_fd = atoi(argv[++i]);
      else if (!strcmp(argv[i], "--learn")) learn = true;
      else if (!strcmp(argv[i], "--runc-setup")) runc_setup = true;
      else if (!strcmp(argv[i], "--run-id") && i + 1 < argc) run_id = argv[++i];
      else if (!strcmp(argv[i], "--events-buffer") && i + 1 < argc) {
        long long v = atoll(argv[++i]);
        if (v < (long long)OBUF_CHUNK * 2 || v > (1ll << 32)) { fprintf(stderr, "capulator-agent: --events-buffer must be 128 KiB to 4 GiB\n"); return 2; }
        obuf_max = (size_t)v;
      }
      else if (!strcmp(argv[i], "--policy-name") && i + 1 < argc) policy_name = argv[++i];
      else if (!strcmp(argv[i], "--policy-version") && i + 1 < argc) policy_version = atol(argv[++i]);
      else if (!strcmp(argv[i], "--policy-hash") && i + 1 < argc) policy_hash = argv[++i];
      else if (!strcmp(argv[i], "--spool") && i + 1 < argc) spool_path = argv[++i];
      else if (!strcmp(argv[i], "--count") && i + 1 < argc) count_path = argv[++i];
      else if (!strcmp(argv[i], "--unmount") && i + 1 < argc) unmount_path = argv[++i];
      else if (!strcmp(argv[i], "--mount-overlay") && i + 1 < argc) overlay_opts = argv[++i];
      else if (!strcmp(argv[i], "--on-audit-failure") && i + 1 < argc) {
        const char *v = argv[++i];
        if (!strcmp(v, "continue")) audit_continue = true;
        else if (strcmp(v, "stop")) { fprintf(stderr, "capulator-agent: --on-audit-failure must be stop or continue\n"); return 2; }
      }
      else { usage(); return 2; }
    }
    if (!sock || !tab || (overlay_opts && !unmount_path)) { usage(); return 2; }
    if (events_fd < 0) events_fd = 1;
    return serve(sock, tab);
  }
  usage();
  return 2;
}
