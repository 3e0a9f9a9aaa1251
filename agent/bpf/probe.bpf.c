// SPDX-License-Identifier: GPL-2.0
/* One program per mechanism `capulator abi host` tries to load and attach (agent/src/kernel-record.c probe). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tp_btf/cap_capable")
int BPF_PROG(probe_tp, const struct cred *cred, struct user_namespace *t, const struct user_namespace *c, int cap, int ret) { return 0; }
SEC("tp_btf/sched_process_exec")
int BPF_PROG(probe_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) { return 0; }
SEC("fentry/cap_capable")
int BPF_PROG(probe_fentry, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts) { return 0; }
SEC("lsm/capable")
int BPF_PROG(probe_lsm, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts, int ret) { return 0; }
