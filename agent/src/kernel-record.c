/*
 * capulator-kernel-record: loads agent/bpf/cap-record.bpf.c (tp_btf/cap_capable), scoped to one
 * run's cgroup v2 group, and streams the capability checks of the container's programs to the
 * runtime as `kcheck` lines on the events fd (agent/PROTOCOL.md "Kernel record").
 *
 *   capulator-kernel-record serve --cgroup DIR [--events-fd N]   (SIGTERM/SIGINT: drain, exit line, exit 0)
 *   capulator-kernel-record serve --cgroup - [--events-fd N]     (loaded ahead; stdin: a run's DIR, later
 *                                                                 `end` (drain, exit line), then the next DIR)
 *   capulator-kernel-record probe                                (JSON: which mechanisms this kernel offers)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <poll.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "../bpf/cap-record.h"
#include "../build/cap-record.skel.h"
#include "../build/probe.skel.h"

#define PROTOCOL 4
#define AGG_SLOTS 512

static volatile sig_atomic_t stopping;
static void on_stop(int s) { (void)s; stopping = 1; }

static int out_fd = 1;
static char obuf[1 << 16];
static size_t olen;
static void oflush(void)
{
  size_t off = 0;
  while (off < olen) {
    ssize_t w = write(out_fd, obuf + off, olen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      break; /* the runtime went away: nothing left to tell */
    }
    off += (size_t)w;
  }
  olen = 0;
}
static void oprintf(const char *fmt, ...)
{
  if (olen > sizeof(obuf) - 2048) oflush();
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(obuf + olen, sizeof(obuf) - olen, fmt, ap);
  va_end(ap);
  if (n > 0) olen += (size_t)n < sizeof(obuf) - olen ? (size_t)n : sizeof(obuf) - olen - 1;
}
/* JSON string, byte by byte like the agent: printable ASCII as is, other bytes \u00XX */
static void ojson(const char *s)
{
  if (olen > sizeof(obuf) - 8 * KREC_PATH_MAX) oflush();
  obuf[olen++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') { obuf[olen++] = '\\'; obuf[olen++] = (char)*p; }
    else if (*p >= 0x20 && *p < 0x7f) obuf[olen++] = (char)*p;
    else olen += (size_t)sprintf(obuf + olen, "\\u%04x", *p);
  }
  obuf[olen++] = '"';
}

/* ---- probe-only (CAP_OPT_NOAUDIT) callers, from /proc/kallsyms, cached per boot ---- */
static const char *const NOAUDIT[] = {
  "ns_capable_noaudit", "has_ns_capability_noaudit", "has_capability_noaudit", "cap_vm_enough_memory",
  "ns_capable_noaudit.cold", "security_vm_enough_memory_mm", "__vm_enough_memory", NULL,
};
static int noaudit_ranges(unsigned long long lo[KREC_NOAUDIT_FNS], unsigned long long hi[KREC_NOAUDIT_FNS])
{
  char boot[64] = "";
  FILE *b = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (b) {
    if (!fgets(boot, sizeof boot, b)) boot[0] = 0;
    fclose(b);
    boot[strcspn(boot, "\n")] = 0;
  }
  char cache[128];
  snprintf(cache, sizeof cache, "/run/capulator/kernel-record-noaudit.%s", boot);
  FILE *c = boot[0] ? fopen(cache, "r") : NULL;
  int n = 0;
  if (c) {
    while (n < KREC_NOAUDIT_FNS && fscanf(c, "%llx %llx", &lo[n], &hi[n]) == 2) n++;
    fclose(c);
    if (n > 0) return n;
  }
  FILE *k = fopen("/proc/kallsyms", "r");
  if (!k) return -1;
  char line[512];
  int pending = -1;
  while (fgets(line, sizeof line, k)) {
    unsigned long long a;
    char t, name[256];
    if (sscanf(line, "%llx %c %255s", &a, &t, name) != 3) continue;
    if (pending >= 0 && a > lo[pending]) { hi[pending] = a; pending = -1; }
    if (pending >= 0) continue;
    for (int i = 0; NOAUDIT[i] && n < KREC_NOAUDIT_FNS; i++)
      if (strcmp(name, NOAUDIT[i]) == 0 && a != 0) { lo[n] = a; hi[n] = a; pending = n++; break; }
  }
  fclose(k);
  if (pending >= 0) n--;
  int valid = 0;
  for (int i = 0; i < n; i++) if (hi[i] > lo[i]) { lo[valid] = lo[i]; hi[valid] = hi[i]; valid++; }
  if (valid == 0) return -1; /* addresses hidden (kptr_restrict) or names unknown */
  if (boot[0]) {
    mkdir("/run/capulator", 0700);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.%d", cache, getpid());
    FILE *w = fopen(tmp, "w");
    if (w) {
      for (int i = 0; i < valid; i++) fprintf(w, "%llx %llx\n", lo[i], hi[i]);
      if (fclose(w) == 0) rename(tmp, cache); else unlink(tmp);
    }
  }
  return valid;
}

/* ---- exe paths and aggregation ---- */
struct exe { unsigned long long key; char *path; };
static struct exe *exes;
static size_t nexes, capexes;
static const char *exe_path(unsigned long long key)
{
  for (size_t i = nexes; i-- > 0;) if (exes[i].key == key) return exes[i].path;
  return "";
}
static void exe_put(unsigned long long key, const char *path)
{
  for (size_t i = 0; i < nexes; i++)
    if (exes[i].key == key) { free(exes[i].path); exes[i].path = strdup(path); return; }
  if (nexes == capexes) {
    capexes = capexes ? capexes * 2 : 64;
    exes = realloc(exes, capexes * sizeof *exes);
    if (!exes) abort();
  }
  exes[nexes].key = key;
  exes[nexes].path = strdup(path);
  nexes++;
}

struct agg { struct krec_check c; const char *exe; unsigned long long count; bool used; };
static struct agg slots[AGG_SLOTS];
static int order[AGG_SLOTS], norder;
static long long rt_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
static unsigned long long kseq, recorded, lines;
static int started_pid;
/* the generation of the run being recorded: records of another are a finished run's late ones */
static __u32 cur_gen;

/* What one run leaves in user space, forgotten before the next (a record serves runs one after another). */
static void forget_run(void)
{
  for (size_t i = 0; i < nexes; i++) free(exes[i].path);
  nexes = 0;
  kseq = recorded = lines = 0;
  started_pid = 0;
}

static void iso(unsigned long long ktime, char out[80])
{
  long long ns = (long long)ktime + rt_offset_ns;
  time_t s = (time_t)(ns / 1000000000LL);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, (int)((ns / 1000000LL) % 1000));
}

static void flush_aggregates(void)
{
  for (int i = 0; i < norder; i++) {
    struct agg *a = &slots[order[i]];
    char at[80];
    iso(a->c.ktime, at);
    kseq++;
    lines++;
    oprintf("kcheck\t%s\t{\"kseq\":%llu,\"at\":\"%s\",\"pid\":%u,\"tid\":%u,\"uid\":%u,\"gid\":%u,\"exe\":", at, kseq, at,
            a->c.pid, a->c.tid, a->c.uid, a->c.gid);
    ojson(a->exe);
    oprintf(",\"nr\":%d,\"cap\":%d,\"result\":\"%s\",\"count\":%llu}\n", a->c.nr, a->c.cap, a->c.ret == 0 ? "granted" : "refused", a->count);
    a->used = false;
  }
  norder = 0;
  oflush();
}

static int on_record(void *ctx, void *data, size_t size)
{
  (void)ctx;
  __u32 kind = *(__u32 *)data;
  if (kind == KREC_EXE && size >= sizeof(struct krec_exe)) {
    const struct krec_exe *x = data; /* the ring is mapped read-only */
    if (x->gen != cur_gen) return 0;
    char path[KREC_PATH_MAX];
    unsigned start = x->start < KREC_PATH_MAX ? x->start : KREC_PATH_MAX - 1;
    memcpy(path, x->path + start, KREC_PATH_MAX - start);
    path[KREC_PATH_MAX - 1 - start] = 0;
    exe_put(x->key, path[0] ? path : "/");
  } else if (kind == KREC_START && size >= sizeof(struct krec_start)) {
    struct krec_start *s = data;
    if (s->gen != cur_gen) return 0;
    started_pid = (int)s->pid;
    flush_aggregates();
    oprintf("{\"type\":\"started\",\"pid\":%u}\n", s->pid);
    oflush();
  } else if (kind == KREC_CHECK && size >= sizeof(struct krec_check)) {
    struct krec_check *c = data;
    if (c->gen != cur_gen) return 0;
    recorded++;
    const char *exe = exe_path(c->exe);
    unsigned h = (c->tid * 2654435761u) ^ ((unsigned)c->cap << 8) ^ (unsigned)c->nr ^ ((unsigned)c->ret << 20) ^ (unsigned)(c->exe >> 4);
    for (int probe = 0; probe < AGG_SLOTS; probe++) {
      struct agg *a = &slots[(h + probe) % AGG_SLOTS];
      if (!a->used) {
        if (norder >= AGG_SLOTS * 3 / 4) { flush_aggregates(); probe = -1; continue; }
        a->used = true;
        a->c = *c;
        a->exe = exe;
        a->count = 1;
        order[norder++] = (int)((h + probe) % AGG_SLOTS);
        return 0;
      }
      if (a->c.tid == c->tid && a->c.pid == c->pid && a->c.cap == c->cap && a->c.ret == c->ret && a->c.nr == c->nr &&
          a->c.uid == c->uid && a->c.gid == c->gid && a->exe == exe) {
        a->count++;
        return 0;
      }
    }
  }
  return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
  if (level == LIBBPF_WARN && getenv("CAPULATOR_BPF_DEBUG")) return vfprintf(stderr, fmt, ap);
  return 0;
}

/* stdin, read by lines without stdio (polled beside the ring): 1 a line, 0 end of input, -1 none yet */
static char inbuf[8192];
static size_t inlen;
static int next_line(char *out, size_t cap, bool block)
{
  for (;;) {
    char *nl = memchr(inbuf, '\n', inlen);
    if (nl) {
      size_t n = (size_t)(nl - inbuf), used = n + 1;
      if (n >= cap) n = cap - 1;
      memcpy(out, inbuf, n);
      out[n] = 0;
      memmove(inbuf, inbuf + used, inlen - used);
      inlen -= used;
      return 1;
    }
    if (inlen == sizeof inbuf) inlen = 0; /* a line longer than any directory: dropped */
    if (!block) {
      struct pollfd p = { .fd = 0, .events = POLLIN };
      if (poll(&p, 1, 0) <= 0) return -1;
    }
    ssize_t r = read(0, inbuf + inlen, sizeof inbuf - inlen);
    if (r < 0 && errno == EINTR) {
      if (stopping) return 0;
      continue;
    }
    if (r <= 0) return 0;
    inlen += (size_t)r;
  }
}

static int serve(int argc, char **argv)
{
  const char *cgroup = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) cgroup = argv[++i];
    else if (strcmp(argv[i], "--events-fd") == 0 && i + 1 < argc) out_fd = atoi(argv[++i]);
    else { fprintf(stderr, "capulator-kernel-record: unknown argument %s\n", argv[i]); return 2; }
  }
  if (!cgroup) { fprintf(stderr, "capulator-kernel-record: --cgroup DIR is required\n"); return 2; }
  /* `--cgroup -`: loaded ahead of its run (the verifier is most of the start-up); the directory
   * comes on stdin, and the program is attached only then */
  bool later = strcmp(cgroup, "-") == 0;
  struct stat st;
  if (!later && (stat(cgroup, &st) != 0 || !S_ISDIR(st.st_mode))) {
    fprintf(stderr, "capulator-kernel-record: %s: %s\n", cgroup, strerror(errno ? errno : ENOTDIR));
    return 2;
  }
  struct timespec rt, mono;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  rt_offset_ns = (rt.tv_sec - mono.tv_sec) * 1000000000LL + (rt.tv_nsec - mono.tv_nsec);
  /* the runtime that started us owns the run: when it dies, drain and go (no program stays attached) */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;
  struct sigaction sa = { .sa_handler = on_stop };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  libbpf_set_print(libbpf_quiet);

  /* a spare loads (~75 ms of CPU, mostly the verifier) beside runs that want the CPU now: it does
   * so at nice 19, and the runtime gives it back the default priority when a run takes it */
  if (later) setpriority(PRIO_PROCESS, 0, 19);
  struct cap_record_bpf *skel = cap_record_bpf__open();
  if (!skel) { fprintf(stderr, "capulator-kernel-record: cannot open the BPF object: %s\n", strerror(errno)); return 1; }
  unsigned long long lo[KREC_NOAUDIT_FNS] = {0}, hi[KREC_NOAUDIT_FNS] = {0};
  int nna = noaudit_ranges(lo, hi);
  if (nna < 0) { fprintf(stderr, "capulator-kernel-record: cannot read probe-only callers from /proc/kallsyms\n"); return 1; }
  for (int i = 0; i < nna; i++) { skel->rodata->noaudit_lo[i] = lo[i]; skel->rodata->noaudit_hi[i] = hi[i]; }
  {
    /* vm_enough_memory runs in these (its CAP_SYS_ADMIN probe): per architecture */
    const int vm[] = {
#ifdef SYS_brk
      SYS_brk,
#endif
#ifdef SYS_mmap
      SYS_mmap,
#endif
#ifdef SYS_mremap
      SYS_mremap,
#endif
#ifdef SYS_mprotect
      SYS_mprotect,
#endif
#ifdef SYS_execve
      SYS_execve,
#endif
#ifdef SYS_execveat
      SYS_execveat,
#endif
#ifdef SYS_shmat
      SYS_shmat,
#endif
#ifdef SYS_fork
      SYS_fork,
#endif
#ifdef SYS_vfork
      SYS_vfork,
#endif
    };
    for (int i = 0; i < KREC_VM_SYSCALLS; i++) skel->rodata->vm_syscalls[i] = i < (int)(sizeof vm / sizeof vm[0]) ? vm[i] : -1;
    skel->rodata->clone_nr = SYS_clone;
#ifdef SYS_clone3
    skel->rodata->clone3_nr = SYS_clone3;
#endif
  }
  {
    /* CAPULATOR_KERNEL_RECORD_RING_BYTES: the ring's size (a power of two, at least a page; default
     * KREC_RING_BYTES). A larger one rides out longer bursts; a small one lets tests fill it. */
    const char *rb_env = getenv("CAPULATOR_KERNEL_RECORD_RING_BYTES");
    if (rb_env && *rb_env) {
      char *end;
      unsigned long long v = strtoull(rb_env, &end, 10);
      if (*end || v < 4096 || v > (1ull << 30) || (v & (v - 1))) {
        fprintf(stderr, "capulator-kernel-record: CAPULATOR_KERNEL_RECORD_RING_BYTES=%s: want a power of two from 4096 to 1073741824\n", rb_env);
        cap_record_bpf__destroy(skel);
        return 2;
      }
      bpf_map__set_max_entries(skel->maps.ring, (__u32)v);   /* (wake-ups still wait for 256 KiB: a smaller ring is drained every 20 ms) */
    }
  }
  int err = cap_record_bpf__load(skel);
  if (err) {
    fprintf(stderr, "capulator-kernel-record: cannot load tp_btf/cap_capable: %s\n", strerror(-err));
    cap_record_bpf__destroy(skel);
    return 1;
  }
  /* one run after another: the program stays loaded and attached; between runs it records nothing
   * (target_cgroup 0) and each run has a generation of its own */
  struct ring_buffer *rb = NULL;
  bool stdin_open = later;
  for (;;) {
    if (later) {
      static char dir[4096];
      if (next_line(dir, sizeof dir, true) != 1 || stopping) break;   /* no (further) run: done */
      if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "capulator-kernel-record: %s: %s\n", dir, strerror(errno ? errno : ENOTDIR));
        if (rb) ring_buffer__free(rb);
        cap_record_bpf__destroy(skel);
        return 2;
      }
    }
    skel->bss->target_cgroup = st.st_ino; /* a cgroup v2 directory's inode number is its id */
    if (!rb) {
      err = cap_record_bpf__attach(skel);
      if (err) {
        fprintf(stderr, "capulator-kernel-record: cannot load or attach tp_btf/cap_capable: %s\n", strerror(-err));
        cap_record_bpf__destroy(skel);
        return 1;
      }
      rb = ring_buffer__new(bpf_map__fd(skel->maps.ring), on_record, NULL, NULL);
      if (!rb) { fprintf(stderr, "capulator-kernel-record: ring buffer: %s\n", strerror(errno)); return 1; }
    }
    oprintf("{\"type\":\"ready\",\"protocol\":%d,\"mechanism\":\"tp_btf/cap_capable\",\"cgroupId\":%llu,\"pid\":%d}\n", PROTOCOL,
            (unsigned long long)st.st_ino, getpid());
    oflush();
    /* batched wake-ups: the program wakes us only when the ring fills; otherwise drain every 20 ms.
     * With stdin open, `end` ends the run (the runtime's word that the container is gone). */
    struct pollfd pf[2] = { { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN }, { .fd = 0, .events = POLLIN } };
    bool ended = false;
    unsigned long long said_lost_granted = 0;
    while (!stopping && !ended) {
      int n = poll(pf, stdin_open ? 2 : 1, 20);
      if (n < 0 && errno != EINTR) break;
      ring_buffer__consume(rb);
      flush_aggregates();
      /* a granted check the ring had no room for is a use of privilege with no record: said at once */
      unsigned long long lg = skel->bss->lost_granted;
      if (lg != said_lost_granted) {
        said_lost_granted = lg;
        oprintf("{\"type\":\"lost\",\"granted\":%llu,\"lost\":%llu}\n", lg, (unsigned long long)skel->bss->lost);
        oflush();
      }
      if (stdin_open && n > 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
        char cmd[64];
        int l;
        while ((l = next_line(cmd, sizeof cmd, false)) == 1) if (strcmp(cmd, "end") == 0) ended = true;
        if (l == 0) stdin_open = false; /* the runtime closed it: SIGTERM ends this run, and no other follows */
      }
    }
    /* nothing more of this run's group; what is in the ring still is */
    skel->bss->target_cgroup = 0;
    __sync_synchronize();
    skel->bss->generation = skel->bss->generation + 1;
    ring_buffer__consume(rb);
    flush_aggregates();
    oprintf("{\"type\":\"exit\",\"lines\":%llu,\"checks\":%llu,\"recorded\":%llu,\"lost\":%llu,\"noaudit\":%llu,\"borrowed\":%llu,\"setup\":%llu,\"oomKills\":%llu,\"started\":%s}\n",
            lines, (unsigned long long)skel->bss->checks, recorded, (unsigned long long)skel->bss->lost,
            (unsigned long long)skel->bss->noaudit, (unsigned long long)skel->bss->borrowed, (unsigned long long)skel->bss->setup_checks,
            (unsigned long long)skel->bss->oom_kills, started_pid ? "true" : "false");
    oflush();
    if (!ended || !stdin_open) break;
    /* ready for the next run: a record of this one that comes late is dropped by its generation */
    cur_gen = skel->bss->generation;
    skel->bss->recording = 0;
    skel->bss->joined = 0;
    skel->bss->lost_granted = 0;
    skel->bss->lost = skel->bss->noaudit = skel->bss->checks = skel->bss->setup_checks = skel->bss->borrowed = skel->bss->oom_kills = 0;
    forget_run();
  }
  if (rb) ring_buffer__free(rb);
  cap_record_bpf__destroy(skel);
  return 0;
}

/* Which mechanisms this kernel offers: each is tried, never assumed. */
static const char *try_prog(const char *name)
{
  struct probe_bpf *p = probe_bpf__open();
  if (!p) return "error";
  struct bpf_program *prog;
  bpf_object__for_each_program(prog, p->obj) bpf_program__set_autoload(prog, strcmp(bpf_program__name(prog), name) == 0);
  int err = probe_bpf__load(p);
  if (!err) err = probe_bpf__attach(p);
  probe_bpf__destroy(p);
  static char buf[64];
  if (!err) return "ok";
  snprintf(buf, sizeof buf, "%s", strerrorname_np(-err) ? strerrorname_np(-err) : "error");
  return buf;
}
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1ULL
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW('!', 4, __u64)
#endif
/* Installs an allow-all filter with a listener in a child (filters are permanent); exit status:
 * 0 ok, 1 no user notification, 2 flag refused */
static const char *try_seccomp(unsigned long flags, bool sync_wake)
{
  pid_t c = fork();
  if (c < 0) return "error";
  if (c == 0) {
    struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { .len = 1, .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(1);
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER | flags, &prog);
    if (fd < 0) _exit(flags ? 2 : 1);
    if (sync_wake && ioctl((int)fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0) _exit(2);
    _exit(0);
  }
  int st = 0;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return "error";
  return WEXITSTATUS(st) == 0 ? "ok" : WEXITSTATUS(st) == 1 ? "unsupported" : "EINVAL";
}
static int probe(void)
{
  libbpf_set_print(libbpf_quiet);
  printf("{\"seccomp/user_notif\":\"%s\",", try_seccomp(0, false));
  printf("\"seccomp/SYNC_WAKE_UP\":\"%s\",", try_seccomp(0, true));
  printf("\"seccomp/WAIT_KILLABLE_RECV\":\"%s\",", try_seccomp(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, false));
  printf("\"tp_btf/cap_capable\":\"%s\",", try_prog("probe_tp"));
  printf("\"tp_btf/sched_process_exec\":\"%s\",", try_prog("probe_exec"));
  printf("\"fentry/cap_capable\":\"%s\",", try_prog("probe_fentry"));
  printf("\"lsm/capable\":\"%s\"}\n", try_prog("probe_lsm"));
  return 0;
}

int main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "probe") == 0) return probe();
  fprintf(stderr, "usage: capulator-kernel-record serve --cgroup DIR|- [--events-fd N] | probe\n");
  return 2;
}
