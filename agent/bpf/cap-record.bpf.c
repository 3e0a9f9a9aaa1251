// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel-side record of one capulator run (agent/PROTOCOL.md "Kernel record"): every
 * capability check the kernel makes for a task of the run's cgroup v2 group, with its result,
 * from the container program's first exec on (runc's own set-up in the same group is not
 * recorded). Probe-only checks (CAP_OPT_NOAUDIT: vm_enough_memory on every execve/brk/mmap,
 * *_noaudit callers) are recognised by their caller and counted, never recorded as use.
 * Built with CO-RE against vmlinux.h, generated at build time from /sys/kernel/btf/vmlinux.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "cap-record.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
/* the run's cgroup v2 id, set by user space after the load and before the attach (a program can
 * be loaded ahead of its run: capulator-kernel-record serve --cgroup -) */
__u64 target_cgroup = 0;
/* the run being recorded: user space counts it up at each run's end, after clearing target_cgroup.
 * Each program reads it before target_cgroup, so a program that saw the old group carries the old
 * generation; map entries and records carry it, and an entry of another generation counts as none */
__u32 generation = 0;

/* `generation`, read before anything else of the program (target_cgroup above all): a volatile load
 * and a compiler barrier, so that clang cannot move the read of target_cgroup ahead of it (x86
 * keeps two loads in program order) */
static __always_inline __u32 current_generation(void)
{
  __u32 g = *(volatile __u32 *)&generation;
  asm volatile("" ::: "memory");
  return g;
}
const volatile __u64 noaudit_lo[KREC_NOAUDIT_FNS] = {};
const volatile __u64 noaudit_hi[KREC_NOAUDIT_FNS] = {};
const volatile __u32 wakeup_bytes = 256 * 1024;
/* syscalls whose CAP_SYS_ADMIN checks are vm_enough_memory's probe (-1 = unused slot) */
const volatile __s32 vm_syscalls[KREC_VM_SYSCALLS] = {};
const volatile __s32 clone_nr = -1, clone3_nr = -1;

/* 0 until the container program's first exec (pid 1 of its pid namespace, in the group). */
__u32 recording = 0;
__u64 lost = 0;        /* records the ring had no room for */
__u64 lost_granted = 0; /* of those, granted checks: uses of privilege that went unrecorded (user space fails closed) */
__u64 noaudit = 0;     /* probe-only checks seen (not recorded) */
__u64 checks = 0;      /* checks recorded */
__u64 setup_checks = 0; /* checks in the group before the first exec (runc's set-up) */
__u64 borrowed = 0;    /* checks of credentials the task borrowed (override_creds: overlayfs mounter, …) */
__u64 joined = 0;      /* processes that joined the group after the start (runc exec's init) */
__u64 oom_kills = 0;   /* processes of the group the kernel's OOM killer chose: any OOM (a limit's, an
                        * ancestor group's, the host's), not only the run's --memory */

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, KREC_RING_BYTES);
} ring SEC(".maps");

/* exe files already described to user space (key: hash of the inode's device and number) */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u32);            /* the generation it was described in */
} exes SEC(".maps");

/* probe-only verdicts by (exe, syscall, capability, result): the stack is walked once per key */
struct verdict_key { __u64 exe; __s32 nr, cap, ret, pad; };
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, struct verdict_key);
  __type(value, __u32);            /* generation << 2 | verdict (1 probe-only, 2 a use) */
} verdicts SEC(".maps");

/*
 * Processes that joined the group while it records (runc exec's init, moved in by `runc exec`) and
 * have not exec'd since: their checks are runc's set-up of the exec'd process (setuid, chdir with
 * the container's sets, …), not the container's, like the set-up before the first exec. A child
 * they fork before exec is set-up too (key: tgid).
 */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u32);            /* the generation it joined in */
} joining SEC(".maps");

/* scratch for path building */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct krec_exe);
} scratch SEC(".maps");

static __always_inline void submit(void *e)
{
  __u64 avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
  bpf_ringbuf_submit(e, avail >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* The exe's path as the task sees it (dentry names up to its root, crossing mounts). */
static __always_inline void describe_exe(struct file *f, __u64 key, __u32 gen)
{
  __u32 z = 0;
  struct krec_exe *x = bpf_map_lookup_elem(&scratch, &z);
  if (!x) return;
  x->kind = KREC_EXE;
  x->key = key;
  x->len = 0;
  x->gen = gen;
  struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
  struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
  struct mount *m = container_of(vm, struct mount, mnt);
  struct dentry *root = BPF_CORE_READ(bpf_get_current_task_btf(), fs, root.dentry);
  /* components are written from the end of the buffer backwards */
  __u32 pos = KREC_PATH_MAX - 1;
  x->path[pos] = 0;
  for (int i = 0; i < KREC_PATH_DEPTH; i++) {
    if (d == root) break;
    struct dentry *mroot = BPF_CORE_READ(m, mnt.mnt_root);
    if (d == mroot) {
      struct mount *parent = BPF_CORE_READ(m, mnt_parent);
      if (parent == m) break;
      d = BPF_CORE_READ(m, mnt_mountpoint);
      m = parent;
      continue;
    }
    struct qstr q = BPF_CORE_READ(d, d_name);
    __u32 n = q.len;
    if (n > 255) n = 255;
    if (n + 1 > pos) break;
    pos -= n;
    pos &= KREC_PATH_MAX - 1;
    if (bpf_probe_read_kernel(&x->path[pos], n & 255, q.name) < 0) break;
    pos -= 1;
    pos &= KREC_PATH_MAX - 1;
    x->path[pos] = '/';
    d = BPF_CORE_READ(d, d_parent);
  }
  x->start = pos;
  struct krec_exe *e = bpf_ringbuf_reserve(&ring, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&lost, 1);
    return;
  }
  __builtin_memcpy(e, x, sizeof(*e));
  submit(e);
  bpf_map_update_elem(&exes, &key, &gen, BPF_ANY);
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(on_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
  __u32 gen = current_generation();
  if (!recording) return 0;
  /* the unified (v2) hierarchy only: a v1 hierarchy's ids are numbered on their own */
  if (BPF_CORE_READ(dst, root, hierarchy_id) != 0 || BPF_CORE_READ(dst, kn, id) != target_cgroup) return 0;
  __u32 tgid = BPF_CORE_READ(task, tgid);
  bpf_map_update_elem(&joining, &tgid, &gen, BPF_ANY);
  __sync_fetch_and_add(&joined, 1);
  return 0;
}

/* The OOM killer marked a victim (mm/oom_kill.c, before its SIGKILL): one of the group's? The victim's
 * unified (v2) group, not the current task's: the killer runs in whichever task failed to allocate. */
SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *task, uid_t uid)
{
  __u32 gen = current_generation();
  (void)gen;
  __u64 target = target_cgroup;
  if (!target || BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id) != target) return 0;
  __sync_fetch_and_add(&oom_kills, 1);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
  __u32 gen = current_generation();
  if (!joined || bpf_get_current_cgroup_id() != target_cgroup) return 0;
  __u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
  if (ptgid == ctgid) return 0;
  __u32 *j = bpf_map_lookup_elem(&joining, &ptgid);
  if (!j || *j != gen) return 0;
  bpf_map_update_elem(&joining, &ctgid, &gen, BPF_ANY);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
  __u32 gen = current_generation();
  if (bpf_get_current_cgroup_id() != target_cgroup) return 0;
  if (recording) {
    /* a joined process's exec: from here on its checks are the container's */
    if (joined) {
      __u32 tgid = BPF_CORE_READ(p, tgid);
      bpf_map_delete_elem(&joining, &tgid);
    }
    return 0;
  }
  struct pid *tp = BPF_CORE_READ(p, thread_pid);
  unsigned int level = BPF_CORE_READ(tp, level);
  int nr = 0;
  bpf_core_read(&nr, sizeof(nr), &tp->numbers[level & 31].nr);
  if (level == 0 || nr != 1) return 0;
  recording = 1;
  struct krec_start *e = bpf_ringbuf_reserve(&ring, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&lost, 1);
    return 0;
  }
  e->kind = KREC_START;
  e->pid = BPF_CORE_READ(p, tgid);
  e->ktime = bpf_ktime_get_ns();
  e->gen = gen;
  e->pad = 0;
  bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
  return 0;
}

/* Walks the kernel stack (bpf_get_stack: several µs, so rarely) for a CAP_OPT_NOAUDIT wrapper. */
static __always_inline bool noaudit_on_stack(void *ctx)
{
  __u64 ips[KREC_STACK];
  long n = bpf_get_stack(ctx, ips, sizeof(ips), 0);
  for (int i = 0; i < KREC_STACK; i++) {
    if (i * 8 >= n) break;
    for (int j = 0; j < KREC_NOAUDIT_FNS; j++)
      if (ips[i] >= noaudit_lo[j] && ips[i] < noaudit_hi[j]) return true;
  }
  return false;
}

#define CLONE_NEW_ANY 0x7E020080ULL /* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME */

/*
 * Is this check a probe (CAP_OPT_NOAUDIT), not a use? The tracepoint does not carry cap_capable's
 * opts, so it is told by the caller, cheaply where the volume is:
 * - CAP_SYS_ADMIN inside brk/mmap/mremap/mprotect/execve/shmat/fork and clone without CLONE_NEW*:
 *   vm_enough_memory's probe, on every accountable mapping (no other CAP_SYS_ADMIN check happens there);
 *   clone's flags are a register the kernel saved at entry, which the caller cannot change;
 * - clone with CLONE_NEW*, and clone3 always: the stack, every time. clone3's flags are in memory the
 *   caller can rewrite after the kernel copied them, so they are never read here (namespace creation
 *   and set_tid are rare and must not be hidden; a fork through clone3 pays a walk per accountable mapping);
 * - anything else: the stack once per (program, syscall, capability, result), then that verdict.
 *   A granted check whose key was judged a probe is looked at again: one call site's probe (a
 *   /proc/PID/stat read's ptrace check) must not hide another site's use under the same key (a
 *   /proc/PID/mem open's). A known use is recorded at once; a refused check known as a probe is not.
 */
static __always_inline bool probe_only(void *ctx, struct pt_regs *regs, __u64 exe, int nr, int cap, int ret, __u32 gen, bool *seen)
{
  if (cap == 21 /* CAP_SYS_ADMIN */ && nr >= 0) {
    for (int i = 0; i < KREC_VM_SYSCALLS; i++)
      if (vm_syscalls[i] == nr) return true;
    if (nr == clone3_nr) return noaudit_on_stack(ctx);
    if (nr == clone_nr) {
#if defined(__TARGET_ARCH_x86)
      __u64 flags = regs ? BPF_CORE_READ(regs, di) : CLONE_NEW_ANY;
#elif defined(__TARGET_ARCH_arm64)
      __u64 flags = regs ? BPF_CORE_READ(regs, orig_x0) : CLONE_NEW_ANY;
#else
      __u64 flags = CLONE_NEW_ANY;
#endif
      if (!(flags & CLONE_NEW_ANY)) return true;
      return noaudit_on_stack(ctx);
    }
  }
  struct verdict_key k = { .exe = exe, .nr = nr, .cap = cap, .ret = ret };
  __u32 *v = bpf_map_lookup_elem(&verdicts, &k);
  if (v && (*v >> 2) == (gen & 0x3fffffff)) {
    *seen = true;
    if ((*v & 3) == 2) return false;
    if (ret != 0) return true;
    return noaudit_on_stack(ctx);
  }
  __u32 verdict = noaudit_on_stack(ctx) ? 1 : 2;
  __u32 value = gen << 2 | verdict;
  bpf_map_update_elem(&verdicts, &k, &value, BPF_ANY);
  return verdict == 1;
}

SEC("tp_btf/cap_capable")
int BPF_PROG(on_cap, const struct cred *cred, struct user_namespace *target_ns, const struct user_namespace *capable_ns, int cap, int ret)
{
  __u32 gen = current_generation();
  if (bpf_get_current_cgroup_id() != target_cgroup) return 0;
  if (!recording) {
    __sync_fetch_and_add(&setup_checks, 1);
    return 0;
  }
  if (joined) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u32 *j = bpf_map_lookup_elem(&joining, &tgid);
    if (j && *j == gen) {
      __sync_fetch_and_add(&setup_checks, 1);
      return 0;
    }
  }
  struct task_struct *t = bpf_get_current_task_btf();
  /* override_creds() (overlayfs checking with its mounter's credentials, nfsd, …) changes only
   * the subjective cred: such a check is the kernel's, on someone else's credentials */
  if ((void *)cred != (void *)BPF_CORE_READ(t, real_cred)) {
    __sync_fetch_and_add(&borrowed, 1);
    return 0;
  }
  int nr = -1;
  struct pt_regs *regs = 0;
  if (!(BPF_CORE_READ(t, flags) & 0x00200000 /* PF_KTHREAD: no syscall */)) {
    regs = (struct pt_regs *)bpf_task_pt_regs(t);
#if defined(__TARGET_ARCH_x86)
    if (regs) nr = BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
    if (regs) nr = BPF_CORE_READ(regs, syscallno);
#endif
  }
  /* the program's identity: its inode (device, number), not the struct file, whose address a later
   * exec may reuse */
  struct file *f = BPF_CORE_READ(t, mm, exe_file);
  __u64 key = 0;
  if (f) {
    struct inode *ino = BPF_CORE_READ(f, f_inode);
    key = (BPF_CORE_READ(ino, i_ino) * 0x9E3779B97F4A7C15ULL) ^ BPF_CORE_READ(ino, i_sb, s_dev);
  }
  /* a known verdict means this exe was described when the verdict was made (user space keeps every path) */
  bool seen = false;
  if (probe_only(ctx, regs, key, nr, cap, ret, gen, &seen)) {
    __sync_fetch_and_add(&noaudit, 1);
    return 0;
  }
  if (f && !seen) {
    __u32 *d = bpf_map_lookup_elem(&exes, &key);
    if (!d || *d != gen) describe_exe(f, key, gen);
  }
  struct krec_check *e = bpf_ringbuf_reserve(&ring, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&lost, 1);
    if (ret == 0) __sync_fetch_and_add(&lost_granted, 1);
    return 0;
  }
  __u64 id = bpf_get_current_pid_tgid();
  e->kind = KREC_CHECK;
  e->cap = cap;
  e->ret = ret;
  e->pid = id >> 32;
  e->tid = (__u32)id;
  e->uid = BPF_CORE_READ(cred, euid.val);
  e->gid = BPF_CORE_READ(cred, egid.val);
  e->exe = key;
  e->ktime = bpf_ktime_get_ns();
  e->nr = nr;
  e->gen = gen;
  e->pad = 0;
  __sync_fetch_and_add(&checks, 1);
  /* a capability granted inside a user namespace the run made (none is the container's own): what
   * the policy may not allow, so user space is woken at once rather than at its next drain */
  if (ret == 0 && BPF_CORE_READ(cred, user_ns, level) != 0) bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
  else submit(e);
  return 0;
}
