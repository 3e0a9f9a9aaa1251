/* Thread exits of the subject cache's threads, by a BPF program (exit-watch.h). The program is 24
 * instructions built here, loaded with bpf(2) directly: no libbpf and no BTF, so loading it takes
 * under a millisecond (the attach aside: agent.c watch_exits) and the agent links nothing new. */
#include "exit-watch.h"
#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The array map's one value, shared with the program: the count, then one flag byte per slot. */
struct shared {
  uint64_t count;
  uint8_t flag[];
};
static struct shared *sh;
static unsigned nslots;                              /* the caller's slots; one more is the self-test's */
static size_t sh_len;                                /* the mapping's length */
static int watched_fd = -1, shared_fd = -1, prog_fd = -1, link_fd = -1;

static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LD_MAP_FD(r, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, r, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

static int load_program(char *log, size_t loglen) {
  struct bpf_insn p[] = {
    /*  0 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_pid_tgid),
    /*  1 */ INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_0, -4, 0),       /* key = tid (low half) */
    /*  2 */ LD_MAP_FD(BPF_REG_1, watched_fd),
    /*  4 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
    /*  5 */ INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
    /*  6 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
    /*  7 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 15, 0),                 /* not watched: out */
    /*  8 */ INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_0, 0, 0),          /* r6 = slot */
    /*  9 */ INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -8, 0),
    /* 10 */ LD_MAP_FD(BPF_REG_1, shared_fd),
    /* 12 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
    /* 13 */ INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8),
    /* 14 */ INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
    /* 15 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 7, 0),
    /* 16 */ INSN(BPF_JMP | BPF_JGE | BPF_K, BPF_REG_6, 0, 3, (int)nslots + 1),    /* no such slot: count only */
    /* 17 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_0, 0, 0),
    /* 18 */ INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
    /* 19 */ INSN(BPF_ST | BPF_MEM | BPF_B, BPF_REG_1, 0, (short)offsetof(struct shared, flag), 1),
    /* 20 */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
    /* 21 */ INSN(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD),   /* after the flag */
    /* 22 */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
    /* 23 */ INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
  a.insns = (uintptr_t)p;
  a.insn_cnt = sizeof p / sizeof p[0];
  a.license = (uintptr_t) "GPL";
  a.log_buf = (uintptr_t)log;
  a.log_size = (unsigned)loglen;
  a.log_level = 1;
  int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0) {                                     /* without the log (a full log buffer is ENOSPC) */
    a.log_buf = 0; a.log_size = 0; a.log_level = 0;
    fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  }
  return fd;
}

static int map_create(unsigned type, unsigned key, unsigned value, unsigned entries, unsigned flags) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type; a.key_size = key; a.value_size = value; a.max_entries = entries; a.map_flags = flags;
  return (int)sys_bpf(BPF_MAP_CREATE, &a);
}

bool exit_watch_add(int tid, unsigned slot) {
  if (!sh) return false;
  uint32_t k = (uint32_t)tid, v = slot;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (unsigned)watched_fd; a.key = (uintptr_t)&k; a.value = (uintptr_t)&v; a.flags = BPF_ANY;
  return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0;
}

void exit_watch_del(int tid) {
  if (!sh) return;
  uint32_t k = (uint32_t)tid;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (unsigned)watched_fd; a.key = (uintptr_t)&k;
  sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

uint64_t exit_watch_count(void) { return __atomic_load_n(&sh->count, __ATOMIC_ACQUIRE); }

bool exit_watch_take(unsigned slot) {
  return __atomic_load_n(&sh->flag[slot], __ATOMIC_RELAXED) && __atomic_exchange_n(&sh->flag[slot], 0, __ATOMIC_ACQ_REL);
}

static int self_test_tid;
static void *self_test_thread(void *arg) {
  self_test_tid = (int)syscall(SYS_gettid);
  *(bool *)arg = exit_watch_add(self_test_tid, nslots);
  return NULL;
}

static void close_all(void) {
  if (sh) munmap(sh, sh_len);
  sh = NULL;
  if (link_fd >= 0) close(link_fd);
  if (prog_fd >= 0) close(prog_fd);
  if (shared_fd >= 0) close(shared_fd);
  if (watched_fd >= 0) close(watched_fd);
  link_fd = prog_fd = shared_fd = watched_fd = -1;
}

static bool fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
  close_all();
  return false;
}

/* The initial pid namespace's inode number (the kernel's PROC_PID_INIT_INO): the program sees
 * tids as that namespace numbers them, and so must the agent. */
#define PID_NS_INIT_INO 0xEFFFFFFCu

bool exit_watch_open(unsigned slots, char *err, size_t errlen) {
  struct stat ns;
  if (stat("/proc/self/ns/pid", &ns) != 0 || ns.st_ino != PID_NS_INIT_INO) {
    snprintf(err, errlen, "the agent is not in the initial pid namespace");
    return false;
  }
  nslots = slots;
  size_t value = (offsetof(struct shared, flag) + slots + 1 + 7) & ~(size_t)7;
  size_t len = (value + 4095) & ~(size_t)4095;
  watched_fd = map_create(BPF_MAP_TYPE_HASH, 4, 4, 2 * slots + 2, 0);
  if (watched_fd < 0) return fail(err, errlen, "bpf map");
  shared_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, (unsigned)value, 1, BPF_F_MMAPABLE);
  if (shared_fd < 0) return fail(err, errlen, "bpf map");
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd, 0);
  if (m == MAP_FAILED) return fail(err, errlen, "mmap of the bpf map");
  sh = m;
  sh_len = len;
  char log[4096] = "";
  prog_fd = load_program(log, sizeof log);
  if (prog_fd < 0) {
    int e = errno;
    char *nl = strrchr(log, '\n');
    while (nl && nl > log && nl[1] == 0) { *nl = 0; nl = strrchr(log, '\n'); }
    snprintf(err, errlen, "bpf program: %s%s%s", strerror(e), nl ? ": " : "", nl ? nl + 1 : "");
    close_all();
    return false;
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.raw_tracepoint.name = (uintptr_t) "sched_process_exit";
  a.raw_tracepoint.prog_fd = (unsigned)prog_fd;
  link_fd = (int)sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
  if (link_fd < 0) return fail(err, errlen, "attach to sched_process_exit");
  /* the proof: a thread of ours, watched under its own tid, is seen exiting within 50 ms (the
   * tracepoint may fire just after pthread_join returns: the tid is cleared earlier in do_exit) */
  bool added = false;
  pthread_t t;
  if (pthread_create(&t, NULL, self_test_thread, &added)) return fail(err, errlen, "self-test thread");
  pthread_join(t, NULL);
  if (!added) return fail(err, errlen, "bpf map update");
  struct timespec start, now, ts = {0, 20000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (exit_watch_count() == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > 50000000L) break;
    nanosleep(&ts, NULL);
  }
  if (exit_watch_count() != 1 || !exit_watch_take(slots)) {
    snprintf(err, errlen, "the exit of a watched thread was not seen");
    close_all();
    return false;
  }
  exit_watch_del(self_test_tid);
  return true;
}
