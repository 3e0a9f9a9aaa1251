/* syscall + decoded arguments → priv(9) privileges. Mirrors libs/abi classify(); the
 * differential spec (apps/runtime/src/run/agent-differential.int-spec.ts) compares the two. */
#include "agent.h"
#include <string.h>

static const struct { const char *name; int number; } PRIVS[] = {
  {"PRIV_REBOOT", 8}, {"PRIV_ADJTIME", 15}, {"PRIV_NTP_ADJTIME", 16}, {"PRIV_CLOCK_SETTIME", 17}, {"PRIV_SETTIMEOFDAY", 18},
  {"PRIV_CRED_SETUID", 50}, {"PRIV_CRED_SETEUID", 51}, {"PRIV_CRED_SETGID", 52}, {"PRIV_CRED_SETEGID", 53},
  {"PRIV_CRED_SETGROUPS", 54}, {"PRIV_CRED_SETREUID", 55}, {"PRIV_CRED_SETREGID", 56}, {"PRIV_CRED_SETRESUID", 57},
  {"PRIV_CRED_SETRESGID", 58}, {"PRIV_DEBUG_DIFFCRED", 80}, {"PRIV_KLD_LOAD", 130}, {"PRIV_KLD_UNLOAD", 131},
  {"PRIV_PROC_SETRLIMIT", 162}, {"PRIV_SCHED_SETPRIORITY", 201}, {"PRIV_SCHED_RTPRIO", 202}, {"PRIV_SIGNAL_DIFFCRED", 230},
  {"PRIV_SYSCTL_WRITEJAIL", 242}, {"PRIV_VFS_CHOWN", 317}, {"PRIV_VFS_CHROOT", 318}, {"PRIV_VFS_MKNOD_DEV", 331},
  {"PRIV_VFS_MOUNT", 333}, {"PRIV_VFS_UNMOUNT", 343}, {"PRIV_NET_RAW", 395}, {"PRIV_NET_SETIFMTU", 398},
  {"PRIV_NET_SETIFFLAGS", 399}, {"PRIV_NET_SETIFCAP", 400}, {"PRIV_NET_SETIFNAME", 401}, {"PRIV_NET_SETIFMETRIC", 402},
  {"PRIV_NET_SETIFPHYS", 403}, {"PRIV_NET_ADDMULTI", 405}, {"PRIV_NET_DELMULTI", 406}, {"PRIV_NET_SETLLADDR", 408},
  {"PRIV_NET_ADDIFADDR", 413}, {"PRIV_NET_DELIFADDR", 414}, {"PRIV_NETINET_RESERVEDPORT", 490}, {"PRIV_NETINET_RAW", 497},
  {"PRIV_NETINET_BINDANY", 506},
};

const char *priv_name(int number) {
  for (size_t i = 0; i < sizeof PRIVS / sizeof PRIVS[0]; i++) if (PRIVS[i].number == number) return PRIVS[i].name;
  return "PRIV_UNKNOWN";
}
int priv_number(const char *name) {
  for (size_t i = 0; i < sizeof PRIVS / sizeof PRIVS[0]; i++) if (!strcmp(PRIVS[i].name, name)) return PRIVS[i].number;
  return -1;
}

static void grant(struct classification *c, const char *priv, const char *cap) {
  if (c->nprivs < MAX_PRIVS) c->privs[c->nprivs++] = priv_number(priv);
  c->capability = cap; c->unprivileged = false;
}
static bool is(const char *a, const char *b) { return a && b && !strcmp(a, b); }
static const char *sarg(const struct args *a, const char *n) {
  const struct arg *x = args_get(a, n);
  return x && x->kind == ARG_STR ? x->str : NULL;
}
static bool narg(const struct args *a, const char *n, int64_t *v) {
  const struct arg *x = args_get(a, n);
  if (!x || x->kind != ARG_NUM) return false;
  *v = x->num; return true;
}
static bool in_ids(int64_t v, long a, long b, long c) { return v == -1 || v == a || v == b || v == c; }

void classify(const char *sc, const struct args *a, const struct subject *s, struct classification *c) {
  memset(c, 0, sizeof *c);
  c->unprivileged = true;
  int64_t v;
  if (is(sc, "capget")) return;
  if (is(sc, "capset")) {
    /* growing the inheritable set beyond the permitted one needs CAP_SETPCAP (no priv(9) counterpart) */
    const struct arg *x = args_get(a, "inheritable_beyond_permitted");
    if (x && x->num) { c->capability = "CAP_SETPCAP"; c->unprivileged = false; }
    return;
  }
  if (is(sc, "prctl")) {
    const char *o = sarg(a, "option_name");
    if (is(o, "PR_CAPBSET_DROP") || is(o, "PR_SET_SECUREBITS")) { c->capability = "CAP_SETPCAP"; c->unprivileged = false; }
    return;
  }
  if (is(sc, "socket")) {
    const char *fam = sarg(a, "family"), *ty = sarg(a, "type");
    if (is(fam, "AF_PACKET")) grant(c, "PRIV_NET_RAW", "CAP_NET_RAW");
    else if ((is(fam, "AF_INET") || is(fam, "AF_INET6")) && is(ty, "SOCK_RAW")) grant(c, "PRIV_NETINET_RAW", "CAP_NET_RAW");
    return;
  }
  if (is(sc, "bind")) {
    const char *fam = sarg(a, "family");
    if ((is(fam, "AF_INET") || is(fam, "AF_INET6")) && narg(a, "port", &v) && v > 0 && v < 1024)
      grant(c, "PRIV_NETINET_RESERVEDPORT", "CAP_NET_BIND_SERVICE");
    return;
  }
  if (is(sc, "setsockopt")) {
    const char *o = sarg(a, "option");
    if (is(o, "IP_TRANSPARENT") || is(o, "IPV6_TRANSPARENT")) grant(c, "PRIV_NETINET_BINDANY", "CAP_NET_RAW");
    else if (is(o, "SO_MARK") || is(o, "SO_RCVBUFFORCE") || is(o, "SO_SNDBUFFORCE")) { c->capability = "CAP_NET_ADMIN"; c->unprivileged = false; }
    return;
  }
  if (is(sc, "setuid")) { if (narg(a, "uid", &v) && !in_ids(v, s->ruid, s->suid, s->ruid)) grant(c, "PRIV_CRED_SETUID", "CAP_SETUID"); return; }
  if (is(sc, "setgid")) { if (narg(a, "gid", &v) && !in_ids(v, s->rgid, s->sgid, s->rgid)) grant(c, "PRIV_CRED_SETGID", "CAP_SETGID"); return; }
  if (is(sc, "setfsuid")) { if (narg(a, "uid", &v) && !in_ids(v, s->ruid, s->euid, s->suid) && v != s->fsuid) grant(c, "PRIV_CRED_SETEUID", "CAP_SETUID"); return; }
  if (is(sc, "setfsgid")) { if (narg(a, "gid", &v) && !in_ids(v, s->rgid, s->egid, s->sgid) && v != s->fsgid) grant(c, "PRIV_CRED_SETEGID", "CAP_SETGID"); return; }
  if (is(sc, "setreuid") || is(sc, "setresuid") || is(sc, "setregid") || is(sc, "setresgid")) {
    bool uid = strstr(sc, "uid") != NULL;
    const struct arg *x = args_get(a, uid ? "uids" : "gids");
    long r = uid ? s->ruid : s->rgid, e = uid ? s->euid : s->egid, sv = uid ? s->suid : s->sgid;
    bool priv = false;
    for (int i = 0; x && i < x->n; i++) if (!in_ids(x->nums[i], r, e, sv)) priv = true;
    if (priv) {
      const char *p = is(sc, "setreuid") ? "PRIV_CRED_SETREUID" : is(sc, "setresuid") ? "PRIV_CRED_SETRESUID"
                    : is(sc, "setregid") ? "PRIV_CRED_SETREGID" : "PRIV_CRED_SETRESGID";
      grant(c, p, uid ? "CAP_SETUID" : "CAP_SETGID");
    }
    return;
  }
  if (is(sc, "setgroups")) { grant(c, "PRIV_CRED_SETGROUPS", "CAP_SETGID"); return; }
  if (is(sc, "chown") || is(sc, "fchown") || is(sc, "lchown") || is(sc, "fchownat")) {
    int64_t g = -1;
    bool uid_change = narg(a, "uid", &v) && v != -1;
    bool gid_change = narg(a, "gid", &g) && g != -1 && g != s->egid;
    if (uid_change || gid_change) grant(c, "PRIV_VFS_CHOWN", "CAP_CHOWN");
    return;
  }
  if (is(sc, "mknod") || is(sc, "mknodat")) {
    if (narg(a, "mode", &v) && ((v & 0170000) == 0020000 || (v & 0170000) == 0060000)) grant(c, "PRIV_VFS_MKNOD_DEV", "CAP_MKNOD");
    return;
  }
  if (is(sc, "chroot")) { grant(c, "PRIV_VFS_CHROOT", "CAP_SYS_CHROOT"); return; }
  if (is(sc, "mount") || is(sc, "pivot_root")) { grant(c, "PRIV_VFS_MOUNT", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "umount2")) { grant(c, "PRIV_VFS_UNMOUNT", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "sethostname") || is(sc, "setdomainname")) { grant(c, "PRIV_SYSCTL_WRITEJAIL", "CAP_SYS_ADMIN"); return; }
  if (is(sc, "settimeofday")) { grant(c, "PRIV_SETTIMEOFDAY", "CAP_SYS_TIME"); return; }
  if (is(sc, "clock_settime")) { grant(c, "PRIV_CLOCK_SETTIME", "CAP_SYS_TIME"); return; }
  if (is(sc, "adjtimex") || is(sc, "clock_adjtime")) {
    if (narg(a, "modes", &v) && v != 0) grant(c, "PRIV_ADJTIME", "CAP_SYS_TIME");
    return;
  }
  if (is(sc, "reboot")) { grant(c, "PRIV_REBOOT", "CAP_SYS_BOOT"); return; }
  if (is(sc, "kill") || is(sc, "tkill") || is(sc, "tgkill")) {
    int64_t tu;
    if (narg(a, "target_uid", &tu) && tu != s->ruid && tu != s->euid) grant(c, "PRIV_SIGNAL_DIFFCRED", "CAP_KILL");
    return;
  }
  if (is(sc, "setpriority")) { if (narg(a, "prio", &v) && v < 0) grant(c, "PRIV_SCHED_SETPRIORITY", "CAP_SYS_NICE"); return; }
  if (is(sc, "sched_setscheduler")) {
    const char *p = sarg(a, "policy");
    if (is(p, "SCHED_FIFO") || is(p, "SCHED_RR")) grant(c, "PRIV_SCHED_RTPRIO", "CAP_SYS_NICE");
    return;
  }
  if (is(sc, "setrlimit") || is(sc, "prlimit64")) {
    const struct arg *x = args_get(a, "raises_hard");
    if (x && x->num) grant(c, "PRIV_PROC_SETRLIMIT", "CAP_SYS_RESOURCE");
    return;
  }
  if (is(sc, "ptrace")) {
    int64_t tu;
    if (narg(a, "target_uid", &tu) && tu != s->euid) grant(c, "PRIV_DEBUG_DIFFCRED", "CAP_SYS_PTRACE");
    return;
  }
  if (is(sc, "init_module") || is(sc, "finit_module")) { grant(c, "PRIV_KLD_LOAD", "CAP_SYS_MODULE"); return; }
  if (is(sc, "delete_module")) { grant(c, "PRIV_KLD_UNLOAD", "CAP_SYS_MODULE"); return; }
  if (is(sc, "ioctl")) {
    const char *r = sarg(a, "request");
    static const struct { const char *req, *priv; } IO[] = {
      {"SIOCSIFFLAGS", "PRIV_NET_SETIFFLAGS"}, {"SIOCSIFPFLAGS", "PRIV_NET_SETIFFLAGS"}, {"SIOCSIFMTU", "PRIV_NET_SETIFMTU"},
      {"SIOCSIFNAME", "PRIV_NET_SETIFNAME"}, {"SIOCSIFMETRIC", "PRIV_NET_SETIFMETRIC"}, {"SIOCSIFHWADDR", "PRIV_NET_SETLLADDR"},
      {"SIOCSIFHWBROADCAST", "PRIV_NET_SETLLADDR"}, {"SIOCSIFADDR", "PRIV_NET_ADDIFADDR"}, {"SIOCSIFDSTADDR", "PRIV_NET_ADDIFADDR"},
      {"SIOCSIFBRDADDR", "PRIV_NET_ADDIFADDR"}, {"SIOCSIFNETMASK", "PRIV_NET_ADDIFADDR"}, {"SIOCDIFADDR", "PRIV_NET_DELIFADDR"},
      {"SIOCADDMULTI", "PRIV_NET_ADDMULTI"}, {"SIOCDELMULTI", "PRIV_NET_DELMULTI"}, {"SIOCSIFMAP", "PRIV_NET_SETIFPHYS"},
      {"SIOCSIFTXQLEN", "PRIV_NET_SETIFCAP"},
    };
    for (size_t i = 0; i < sizeof IO / sizeof IO[0]; i++) if (is(r, IO[i].req)) { grant(c, IO[i].priv, "CAP_NET_ADMIN"); return; }
    return;
  }
}

const char *const CAPNAMES[41] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
  "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
  "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
int cap_number(const char *name) {
  for (int i = 0; name && i < 41; i++) if (!strcmp(CAPNAMES[i], name)) return i;
  return -1;
}
