#ifndef CAPULATOR_AGENT_H
#define CAPULATOR_AGENT_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MAX_ARGS 10
#define MAX_ARR 48
#define MAX_STR 256
#define MAX_PRIVS 128

/* A decoded argument (names shared with libs/abi, libs/policy and the events). */
enum argkind { ARG_NUM, ARG_STR, ARG_NUMS, ARG_STRS, ARG_BOOL };
struct arg {
  const char *name;                 /* static string */
  enum argkind kind;
  int64_t num;
  char str[MAX_STR];
  int n;                            /* ARG_NUMS / ARG_STRS count */
  int64_t nums[MAX_ARR];
  const char *strs[MAX_ARR];        /* static strings (CAP names) */
  bool from_memory;                 /* decoded from tracee memory (TOCTOU-sensitive) */
};
struct args { int n; struct arg a[MAX_ARGS]; };

struct arg *args_add_num(struct args *a, const char *name, int64_t v, bool mem);
struct arg *args_add_str(struct args *a, const char *name, const char *v, bool mem);
struct arg *args_add_bool(struct args *a, const char *name, bool v);
const struct arg *args_get(const struct args *a, const char *name);

/* Who made the call. */
struct subject {
  int pid, tid;
  long ruid, euid, suid, fsuid, rgid, egid, sgid, fsgid;
  char exe[MAX_STR];
};

/* Classification (mirror of libs/abi classify). */
struct classification {
  int nprivs;
  int privs[MAX_PRIVS];             /* priv(9) numbers */
  const char *capability;           /* CAP_* or NULL */
  bool unprivileged;
};
void classify(const char *syscall, const struct args *a, const struct subject *s, struct classification *out);
const char *priv_name(int number);
int priv_number(const char *name);

/* The compiled table (docs/contracts.md). */
enum action { ACT_ALLOW, ACT_DENY, ACT_EMULATE };
enum audit { AUDIT_ALL, AUDIT_DENIALS, AUDIT_NONE };
struct decision {
  enum action action;
  int rule;                         /* index into table rules, -1 = default */
  const char *rule_id;              /* NULL = default */
  int err;
  long ret;
  bool audit;
  bool rested_on_memory;            /* a condition that decided (or could have) read tracee memory */
};
struct table;
struct table *table_load(const char *path, char *err, size_t errlen);
void table_decide(const struct table *t, const char *syscall, const struct args *a, const struct subject *s,
                  const struct classification *c, struct decision *d);
const char *table_policy_name(const struct table *t);
const char *table_hash(const struct table *t);
const char *table_policy_version(const struct table *t);
bool table_learn(const struct table *t);
int cap_number(const char *name);
extern const char *const *CAPNAMES;
extern const int NCAPS;
const char *lookup_af(long v);
const char *lookup_sock(long v);
const char *lookup_sol(long v);
const char *lookup_option(const char *level, long v);
const char *lookup_prctl(long v);
const char *lookup_rlimit(long v);
const char *lookup_sioc(long v);
const char *lookup_sched(long v);
const char *lookup_clock(long v);
const char *lookup_ptrace(long v);

const char *action_name(enum action a);
/* `capulator-agent pty` (pty.c) */
int pty_main(int argc, char **argv);
#endif
