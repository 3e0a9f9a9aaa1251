/* Records shared by cap-record.bpf.c (kernel) and kernel-record.c (user space). */
#ifndef CAPULATOR_CAP_RECORD_H
#define CAPULATOR_CAP_RECORD_H
#define KREC_RING_BYTES (4 * 1024 * 1024)
#define KREC_PATH_MAX 512          /* power of two: the BPF program masks offsets with it */
#define KREC_PATH_DEPTH 24
#define KREC_STACK 8
#define KREC_NOAUDIT_FNS 8
#define KREC_VM_SYSCALLS 10

enum krec_kind { KREC_START = 1, KREC_CHECK = 2, KREC_EXE = 3 };

/* `gen`: the record's run (the program's `generation` when it made it); user space drops a record
 * of an earlier run that arrives after that run's end (a record process serves runs one after
 * another) */
struct krec_start {
  __u32 kind;
  __u32 pid;                       /* host tgid of the container program */
  __u64 ktime;
  __u32 gen;
  __u32 pad;
};
struct krec_check {
  __u32 kind;
  __s32 cap;
  __s32 ret;                       /* 0 granted, else -EPERM */
  __u32 pid, tid, uid, gid;
  __s32 nr;                        /* the task's current syscall, -1 none */
  __u64 exe;                       /* key of a krec_exe sent before */
  __u64 ktime;
  __u32 gen;
  __u32 pad;
};
struct krec_exe {
  __u32 kind;
  __u32 start;                     /* path = path + start, NUL-terminated */
  __u32 len;
  __u32 gen;
  __u64 key;
  char path[KREC_PATH_MAX + 256];  /* slack: the verifier bounds offset + length separately */
};
#endif
