/* syscall + decoded arguments → priv(9) privileges: a C mirror of libs/abi classify()
 * (libs/abi/src/classify.ts; the same branches in the same order). The tables come from
 * abi.generated.h; agent-differential.int-spec.ts compares the two implementations. */
#include "agent.h"
#include "abi.generated.h"
#include <stdlib.h>
#include <string.h>

#define N(t) (sizeof t / sizeof t[0])
const char *const *CAPNAMES = GEN_CAPNAMES;
const int NCAPS = GEN_NCAPS;

const char *gen_name(const void *table, size_t n, long v) {
  const struct gname *t = table;
  for (size_t i = 0; i < n; i++) if (t[i].v == v) return t[i].n;
  return NULL;
}
const char *priv_name(int number) {
  for (size_t i = 0; i < N(GEN_PRIVS); i++) if (GEN_PRIVS[i].number == number) return GEN_PRIVS[i].name;
  return "PRIV_UNKNOWN";
}
int priv_number(const char *name) {
  for (size_t i = 0; i < N(GEN_PRIVS); i++) if (!strcmp(GEN_PRIVS[i].name, name)) return GEN_PRIVS[i].number;
  return -1;
}
int cap_number(const char *name) {
  for (int i = 0; name && i < GEN_NCAPS; i++) if (!strcmp(GEN_CAPNAMES[i], name)) return i;
  return -1;
}
const char *lookup_af(long v) { return gen_name(GEN_AF, N(GEN_AF), v); }
const char *lookup_sock(long v) { return gen_name(GEN_SOCK, N(GEN_SOCK), v); }
const char *lookup_sol(long v) { return gen_name(GEN_SOL, N(GEN_SOL), v); }
const char *lookup_option(const char *level, long v) {
  if (!level) return NULL;
  if (!strcmp(level, "SOL_SOCKET")) return gen_name(GEN_SO, N(GEN_SO), v);
  if (!strcmp(level, "SOL_IP")) return gen_name(GEN_IP_OPTIONS, N(GEN_IP_OPTIONS), v);
  if (!strcmp(level, "SOL_IPV6")) return gen_name(GEN_IPV6_OPTIONS, N(GEN_IPV6_OPTIONS), v);
  if (!strcmp(level, "SOL_TCP")) return gen_name(GEN_TCP_OPTIONS, N(GEN_TCP_OPTIONS), v);
  return NULL;
}
const char *lookup_prctl(long v) { return gen_name(GEN_PRCTL, N(GEN_PRCTL), v); }
const char *lookup_rlimit(long v) { return gen_name(GEN_RLIMIT, N(GEN_RLIMIT), v); }
const char *lookup_sioc(long v) { return gen_name(GEN_SIOC, N(GEN_SIOC), v); }
const char *lookup_sched(long v) { return gen_name(GEN_SCHED, N(GEN_SCHED), v); }
const char *lookup_clock(long v) { return gen_name(GEN_CLOCKS, N(GEN_CLOCKS), v); }
const char *lookup_ptrace(long v) { return gen_name(GEN_PTRACE, N(GEN_PTRACE), v); }

static void add_priv(struct classification *c, const char *priv) {
  int n = priv_number(priv);
  for (int i = 0; i < c->nprivs; i++) if (c->privs[i] == n) return;
  if (c->nprivs < MAX_PRIVS) c->privs[c->nprivs++] = n;
}
static void privileged(struct classification *c, const char *priv, const char *cap) {
  if (priv) add_priv(c, priv);
  c->capability = cap; c->unprivileged = false;
}
static bool is(const char *a, const char *b) { return a && b && !strcmp(a, b); }
static const char *sarg(const struct args *a, const char *n) {
  const struct arg *x = args_get(a, n);
  return x && x->kind == ARG_STR ? x->str : NULL;
}
static bool narg(const struct args *a, const char *n, int64_t *v) {
  const struct arg *x = args_get(a, n);
  if (!x || (x->kind != ARG_NUM && x->kind != ARG_BOOL)) return false;
  *v = x->num; return true;
}
static int barg(const struct args *a, const char *n) {   /* -1 unknown, 0 false, 1 true */
  const struct arg *x = args_get(a, n);
  if (!x) return -1;
  if (x->kind == ARG_BOOL || x->kind == ARG_NUM) return x->num == 0 ? 0 : x->num == 1 ? 1 : -1;
  if (x->kind == ARG_STR) return !strcmp(x->str, "true") ? 1 : !strcmp(x->str, "false") ? 0 : -1;
  return -1;
}
static bool nochange(int64_t v) { return v == -1 || v == 0xffffffffLL; }

/* growth: the privileges of the capabilities being added (capset, PR_CAP_AMBIENT_RAISE) */
static void growth(struct classification *c, const char *const *caps, int n) {
  int known = 0;
  for (int i = 0; i < n; i++) {
    int cn = cap_number(caps[i]);
    if (cn < 0) continue;
    if (known++ == 0) c->capability = GEN_CAPNAMES[cn];
    char buf[4096]; strncpy(buf, GEN_CAPPRIVS[cn], sizeof buf - 1); buf[sizeof buf - 1] = 0;
    char *save = NULL;
    for (char *p = strtok_r(buf, " ", &save); p; p = strtok_r(NULL, " ", &save)) add_priv(c, p);
  }
  if (n > 0) c->unprivileged = false;
}

static void cred(struct classification *c, const char *priv, const char *cap, const int64_t *t, int nt, bool known,
                 const long *allowed, int na) {
  if (!known) { privileged(c, priv, cap); return; }
  bool any = false;
  for (int i = 0; i < nt; i++) {
    if (nochange(t[i])) continue;
    any = true;
    bool ok = false;
    for (int j = 0; j < na; j++) if (t[i] == allowed[j]) ok = true;
    if (!ok) { privileged(c, priv, cap); return; }
  }
  (void)any;
}

static int other_owner(const struct args *a, const struct subject *s) {  /* -1 unknown */
  int64_t tu, te;
  if (!narg(a, "target_uid", &tu)) return -1;
  if (!narg(a, "target_euid", &te)) te = tu;
  (void)s;
  return !(tu == s->euid || te == s->euid);
}

void classify(const char *sc, const struct args *a, const struct subject *s, struct classification *c) {
  memset(c, 0, sizeof *c);
  c->unprivileged = true;
  int64_t v, w;
  if (is(sc, "capget")) return;
  if (is(sc, "capset")) {
    const struct arg *x = args_get(a, "caps");
    if (x && x->kind == ARG_STRS) growth(c, x->strs, x->n);
    return;
  }
  if (is(sc, "prctl")) {
    const char *o = sarg(a, "option_name");
    if (is(o, "PR_CAPBSET_DROP") || is(o, "PR_SET_SECUREBITS")) privileged(c, "PRIV_LINUX_SETPCAP", "CAP_SETPCAP");
    else if (is(o, "PR_CAP_AMBIENT") && is(sarg(a, "ambient_op"), "PR_CAP_AMBIENT_RAISE")) {
      const char *cap = sarg(a, "cap");
      if (cap) growth(c, &cap, 1); else { c->unprivileged = false; c->capability = NULL; }
    }
    return;
  }
  if (is(sc, "mknod") || is(sc, "mknodat")) {
    if (!narg(a, "mode", &v)) { privileged(c, "PRIV_VFS_MKNOD_DEV", "CAP_MKNOD"); return; }
    int64_t type = v & 0170000;
    if (type == 0020000 && narg(a, "dev", &w) && w == 0) return;
    if (type == 0020000 || type == 0060000) privileged(c, "PRIV_VFS_MKNOD_DEV", "CAP_MKNOD");
    return;
  }
  if (is(sc, "chown") || is(sc, "fchown") || is(sc, "lchown") || is(sc, "fchownat")) {
    bool hu = narg(a, "uid", &v), hg = narg(a, "gid", &w);
    bool un = hu && nochange(v), gn = hg && nochange(w);
    if (un && gn) return;
    int64_t ou, og;
    if (narg(a, "owner_uid", &ou) && s->fsuid == ou && hu && hg) {
      bool uok = un || v == ou;
      bool gok = gn || (narg(a, "owner_gid", &og) && w == og) || w == s->fsgid;
      if (uok && gok) return;
    }
    privileged(c, "PRIV_VFS_CHOWN", "CAP_CHOWN");
    return;
  }
  if (is(sc, "chroot")) { privileged(c, "PRIV_VFS_CHROOT", "CAP_SYS_CHROOT"); return; }
  if (is(sc, "mount") || is(sc, "pivot_root") || is(sc, "fsopen") || is(sc, "fsmount") || is(sc, "fspick") || is(sc, "move_mount") ||
      is(sc, "mount_setattr") || is(sc, "fsconfig")) { privileged(c, "PRIV_VFS_MOUNT", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "open_tree")) {
    if (narg(a, "flags", &v) && !(v & 1)) return;                 /* no OPEN_TREE_CLONE: an O_PATH open */
    privileged(c, "PRIV_VFS_MOUNT", "CAP_SYS_ADMIN"); return;
  }
  if (is(sc, "unshare") || is(sc, "clone")) {                    /* CLONE_NEW* except CLONE_NEWUSER */
    if (narg(a, "flags", &v) && !(v & (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000 | 0x00000080))) return;
    privileged(c, "PRIV_JAIL_SET", "CAP_SYS_ADMIN"); return;
  }
  if (is(sc, "setns")) { privileged(c, "PRIV_JAIL_ATTACH", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "io_uring_setup") || is(sc, "io_uring_enter") || is(sc, "io_uring_register")) {
    c->unprivileged = false; c->capability = NULL; return;       /* the ring itself: only a rule naming it allows it */
  }
  if (is(sc, "umount2") || is(sc, "umount")) { privileged(c, "PRIV_VFS_UNMOUNT", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "setuid") || is(sc, "setgid")) {
    bool u = sc[3] == 'u';
    bool k = narg(a, u ? "uid" : "gid", &v);
    long al[2] = {u ? s->ruid : s->rgid, u ? s->suid : s->sgid};
    cred(c, u ? "PRIV_CRED_SETUID" : "PRIV_CRED_SETGID", u ? "CAP_SETUID" : "CAP_SETGID", &v, 1, k, al, 2);
    return;
  }
  if (is(sc, "setreuid") || is(sc, "setregid")) {
    bool u = sc[5] == 'u';
    const char *priv = u ? "PRIV_CRED_SETREUID" : "PRIV_CRED_SETREGID", *cap = u ? "CAP_SETUID" : "CAP_SETGID";
    long r = u ? s->ruid : s->rgid, e = u ? s->euid : s->egid, sv = u ? s->suid : s->sgid;
    bool hr = narg(a, u ? "ruid" : "rgid", &v), he = narg(a, u ? "euid" : "egid", &w);
    if (hr || he) {
      bool rok = !hr || nochange(v) || v == r || v == e;
      bool eok = !he || nochange(w) || w == r || w == e || w == sv;
      if (!(rok && eok)) privileged(c, priv, cap);
      return;
    }
    const struct arg *x = args_get(a, u ? "uids" : "gids");
    long al[3] = {r, e, sv};
    cred(c, priv, cap, x ? x->nums : NULL, x ? x->n : 0, x && x->kind == ARG_NUMS, al, 3);
    return;
  }
  if (is(sc, "setresuid") || is(sc, "setresgid")) {
    bool u = sc[6] == 'u';
    const struct arg *x = args_get(a, u ? "uids" : "gids");
    long al[3] = {u ? s->ruid : s->rgid, u ? s->euid : s->egid, u ? s->suid : s->sgid};
    cred(c, u ? "PRIV_CRED_SETRESUID" : "PRIV_CRED_SETRESGID", u ? "CAP_SETUID" : "CAP_SETGID", x ? x->nums : NULL, x ? x->n : 0,
         x && x->kind == ARG_NUMS, al, 3);
    return;
  }
  if (is(sc, "setfsuid") || is(sc, "setfsgid")) {
    bool u = sc[5] == 'u';
    bool k = narg(a, u ? "uid" : "gid", &v);
    long al[4] = {u ? s->ruid : s->rgid, u ? s->euid : s->egid, u ? s->suid : s->sgid, u ? s->fsuid : s->fsgid};
    cred(c, u ? "PRIV_CRED_SETEUID" : "PRIV_CRED_SETEGID", u ? "CAP_SETUID" : "CAP_SETGID", &v, 1, k, al, 4);
    return;
  }
  if (is(sc, "setgroups")) { privileged(c, "PRIV_CRED_SETGROUPS", "CAP_SETGID"); return; }
  if (is(sc, "socket")) {
    const char *fam = sarg(a, "family"), *ty = sarg(a, "type");
    int64_t proto = -1; narg(a, "protocol", &proto);
    bool inet = is(fam, "AF_INET") || is(fam, "AF_INET6");
    if (is(fam, "AF_PACKET") || is(ty, "SOCK_PACKET")) privileged(c, "PRIV_NET_RAW", "CAP_NET_RAW");
    else if (inet && is(ty, "SOCK_RAW")) privileged(c, "PRIV_NETINET_RAW", "CAP_NET_RAW");
    else if (is(fam, "AF_KEY")) privileged(c, "PRIV_NETINET_IPSEC", "CAP_NET_ADMIN");
    return;
  }
  if (is(sc, "bind")) {
    const char *fam = sarg(a, "family");
    if (fam && !is(fam, "AF_INET") && !is(fam, "AF_INET6")) return;
    if (narg(a, "port", &v) && v > 0 && v < 1024) privileged(c, "PRIV_NETINET_RESERVEDPORT", "CAP_NET_BIND_SERVICE");
    return;
  }
  if (is(sc, "setsockopt")) {
    const char *l = sarg(a, "level"), *o = sarg(a, "option");
    bool hv = narg(a, "value", &v);
    if (is(l, "SOL_SOCKET")) {
      if (is(o, "SO_MARK")) privileged(c, "PRIV_LINUX_SO_MARK", "CAP_NET_RAW");
      else if (is(o, "SO_PRIORITY")) { if (!(hv && v >= 0 && v <= 6)) privileged(c, "PRIV_LINUX_SO_PRIORITY", "CAP_NET_RAW"); }
      else if (is(o, "SO_BINDTODEVICE") || is(o, "SO_BINDTOIFINDEX")) { if (barg(a, "bound_to_device") == 1) privileged(c, "PRIV_LINUX_SO_BINDTODEVICE", "CAP_NET_RAW"); }
      else if (is(o, "SO_DEBUG")) { if (!(hv && v == 0)) privileged(c, "PRIV_LINUX_SO_DEBUG", "CAP_NET_ADMIN"); }
      else if (is(o, "SO_SNDBUFFORCE") || is(o, "SO_RCVBUFFORCE")) privileged(c, "PRIV_LINUX_SOCKBUF_FORCE", "CAP_NET_ADMIN");
    } else if (is(l, "SOL_IP")) {
      if (is(o, "IP_TRANSPARENT")) { if (!(hv && v == 0)) privileged(c, "PRIV_NETINET_BINDANY", "CAP_NET_RAW"); }
      else if (is(o, "IP_IPSEC_POLICY") || is(o, "IP_XFRM_POLICY")) privileged(c, "PRIV_NETINET_IPSEC", "CAP_NET_ADMIN");
      else if (o && !strncmp(o, "MRT_", 4) && !is(o, "MRT_INIT")) privileged(c, "PRIV_NETINET_MROUTE", "CAP_NET_ADMIN");
    } else if (is(l, "SOL_IPV6")) {
      if (is(o, "IPV6_TRANSPARENT")) { if (!(hv && v == 0)) privileged(c, "PRIV_NETINET_BINDANY", "CAP_NET_RAW"); }
      else if (is(o, "IPV6_HOPOPTS") || is(o, "IPV6_RTHDRDSTOPTS") || is(o, "IPV6_DSTOPTS")) privileged(c, "PRIV_NETINET_SETHDROPTS", "CAP_NET_RAW");
      else if (is(o, "IPV6_IPSEC_POLICY") || is(o, "IPV6_XFRM_POLICY")) privileged(c, "PRIV_NETINET_IPSEC", "CAP_NET_ADMIN");
    } else if (is(l, "SOL_TCP")) {
      if (is(o, "TCP_REPAIR")) privileged(c, "PRIV_LINUX_TCP_REPAIR", "CAP_NET_ADMIN");
    }
    return;
  }
  if (is(sc, "ioctl")) {
    const char *r = sarg(a, "request");
    if (is(r, "TIOCSTI") || (narg(a, "request", &v) && v == 0x5412)) { privileged(c, "PRIV_TTY_STI", "CAP_SYS_ADMIN"); return; }
    for (size_t i = 0; r && i < N(GEN_IOCTL_PRIVS); i++) if (!strcmp(GEN_IOCTL_PRIVS[i].request, r)) { privileged(c, GEN_IOCTL_PRIVS[i].priv, "CAP_NET_ADMIN"); return; }
    return;
  }
  if (is(sc, "sethostname") || is(sc, "setdomainname")) { privileged(c, "PRIV_SYSCTL_WRITE", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "settimeofday")) { privileged(c, "PRIV_SETTIMEOFDAY", "CAP_SYS_TIME"); return; }
  if (is(sc, "clock_settime")) { privileged(c, "PRIV_CLOCK_SETTIME", "CAP_SYS_TIME"); return; }
  if (is(sc, "adjtimex") || is(sc, "clock_adjtime")) {
    if (!narg(a, "modes", &v)) { privileged(c, "PRIV_NTP_ADJTIME", "CAP_SYS_TIME"); return; }
    if (v & 0x8000) { if (!(v & 0x2000)) privileged(c, "PRIV_ADJTIME", "CAP_SYS_TIME"); return; }
    if (v != 0) privileged(c, "PRIV_NTP_ADJTIME", "CAP_SYS_TIME");
    return;
  }
  if (is(sc, "reboot") || is(sc, "kexec_load") || is(sc, "kexec_file_load")) { privileged(c, "PRIV_REBOOT", "CAP_SYS_BOOT"); return; }
  if (is(sc, "swapon")) { privileged(c, "PRIV_SWAPON", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "swapoff")) { privileged(c, "PRIV_SWAPOFF", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "acct")) { privileged(c, "PRIV_ACCT", "CAP_SYS_PACCT"); return; }
  if (is(sc, "open_by_handle_at")) { privileged(c, "PRIV_VFS_FHOPEN", "CAP_DAC_READ_SEARCH"); return; }
  if (is(sc, "iopl") || is(sc, "ioperm")) {
    if ((narg(a, "level_io", &v) || narg(a, "turn_on", &v)) && v == 0) return;
    privileged(c, "PRIV_IO", "CAP_SYS_RAWIO"); return;
  }
  if (is(sc, "syslog")) {
    if ((narg(a, "action", &v) || narg(a, "type", &v)) && (v == 0 || v == 1)) return;
    privileged(c, "PRIV_MSGBUF", "CAP_SYSLOG"); return;
  }
  if (is(sc, "init_module") || is(sc, "finit_module")) { privileged(c, "PRIV_KLD_LOAD", "CAP_SYS_MODULE"); return; }
  if (is(sc, "delete_module")) { privileged(c, "PRIV_KLD_UNLOAD", "CAP_SYS_MODULE"); return; }
  if (is(sc, "kill") || is(sc, "tkill") || is(sc, "tgkill") || is(sc, "rt_sigqueueinfo") || is(sc, "rt_tgsigqueueinfo") ||
      is(sc, "pidfd_send_signal")) {
    if ((is(sc, "kill") || is(sc, "rt_sigqueueinfo")) && narg(a, "target_pid", &v) && v <= 0) return;
    int64_t tu, ts;
    if (!narg(a, "target_uid", &tu)) { privileged(c, "PRIV_SIGNAL_DIFFCRED", "CAP_KILL"); return; }
    if (!narg(a, "target_suid", &ts)) ts = tu;
    if (tu == s->ruid || tu == s->euid || ts == s->ruid || ts == s->euid) return;
    privileged(c, "PRIV_SIGNAL_DIFFCRED", "CAP_KILL");
    return;
  }
  if (is(sc, "setpriority")) {
    if (other_owner(a, s) == 1) privileged(c, "PRIV_SCHED_DIFFCRED", "CAP_SYS_NICE");
    int64_t cur = 0; narg(a, "current_nice", &cur);
    bool hn = narg(a, "nice", &v) || narg(a, "priority", &v) || narg(a, "prio", &v);
    if (!hn || v < cur) privileged(c, "PRIV_SCHED_SETPRIORITY", "CAP_SYS_NICE");
    return;
  }
  if (is(sc, "sched_setscheduler")) {
    if (other_owner(a, s) == 1) privileged(c, "PRIV_SCHED_DIFFCRED", "CAP_SYS_NICE");
    const char *p = sarg(a, "policy");
    if (is(p, "SCHED_FIFO") || is(p, "SCHED_RR") || is(p, "SCHED_DEADLINE")) privileged(c, "PRIV_SCHED_SETPOLICY", "CAP_SYS_NICE");
    else if (!p) privileged(c, "PRIV_SCHED_SETPOLICY", "CAP_SYS_NICE");
    int64_t cur = 0; narg(a, "current_nice", &cur);
    if (narg(a, "nice", &v) && v < cur) privileged(c, "PRIV_SCHED_SETPRIORITY", "CAP_SYS_NICE");
    return;
  }
  if (is(sc, "setrlimit") || is(sc, "prlimit64")) {
    int r = barg(a, "raises_hard");
    if (r == 0) return;
    privileged(c, "PRIV_PROC_SETRLIMIT", "CAP_SYS_RESOURCE");
    return;
  }
  if (is(sc, "ptrace") || is(sc, "process_vm_readv") || is(sc, "process_vm_writev") || is(sc, "pidfd_getfd") || is(sc, "kcmp")) {
    const char *q = is(sc, "ptrace") ? sarg(a, "request") : NULL;
    if (is(q, "PTRACE_TRACEME")) return;
    if (q && !is(q, "PTRACE_ATTACH") && !is(q, "PTRACE_SEIZE")) return;
    int64_t tu, te, ts, tg, teg, tsg;
    int same = -1;
    if (narg(a, "target_uid", &tu)) {
      if (!narg(a, "target_euid", &te)) te = tu;
      if (!narg(a, "target_suid", &ts)) ts = tu;
      bool uok = tu == s->ruid && te == s->ruid && ts == s->ruid;
      bool gok = true;
      if (narg(a, "target_gid", &tg)) {
        if (!narg(a, "target_egid", &teg)) teg = tg;
        if (!narg(a, "target_sgid", &tsg)) tsg = tg;
        gok = tg == s->rgid && teg == s->rgid && tsg == s->rgid;
      }
      same = uok && gok;
    }
    if (same == 1) {
      if (barg(a, "target_dumpable") == 0) privileged(c, "PRIV_DEBUG_DENIED", "CAP_SYS_PTRACE");
      return;
    }
    privileged(c, "PRIV_DEBUG_DIFFCRED", "CAP_SYS_PTRACE");
    return;
  }
}
