/* The compiled policy table (docs/contracts.md, "The compiled table"): a bounded, line-oriented
 * parser, sha256 verification of the `end` line, and first-match evaluation. */
#include "agent.h"
#include "sha256.h"
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limits are libs/policy's TABLE_LIMITS (limits.generated.h), so lint refuses what this refuses. */
#include "limits.generated.h"
#define MAX_FILE TABLE_MAX_BYTES
#define MAX_LINE (TABLE_MAX_LINE_BYTES + 1)
#define MAX_RULES TABLE_MAX_RULES
#define MAX_RANGES TABLE_MAX_RANGES
#define MAX_GLOBS TABLE_MAX_EXE_GLOBS
#define MAX_RPRIVS TABLE_MAX_RULE_PRIVILEGES
#define MAX_RCAPS TABLE_MAX_RULE_CAPABILITIES
#define MAX_WHENS TABLE_MAX_CONDITIONS
#define MAX_TSTR (TABLE_MAX_STRING_BYTES + 1)

struct range { int64_t lo, hi; };
struct ranges { int n; struct range r[MAX_RANGES]; };
#define MAX_VALUES TABLE_MAX_VALUES
struct when {
  char arg[TABLE_MAX_NAME_BYTES + 1];
  enum { W_RANGES, W_VALUES, W_GLOBS } kind;
  int nvalues;
  char *values[MAX_VALUES];         /* =value (any of) or ~glob (any of) */
  struct ranges ranges;
};
struct rule {
  char id[TABLE_MAX_RULE_ID_BYTES + 1];
  enum action action; int err; long ret; enum audit audit;
  bool has_uid, has_gid;
  struct ranges uid, gid;
  int nglobs; char *globs[MAX_GLOBS];
  bool has_privs, has_caps, unknowable;  /* unknowable: image/label conditions the agent cannot see */
  int nprivs; int privs[MAX_RPRIVS];
  int ncaps; int caps[MAX_RCAPS];
  char syscall[TABLE_MAX_NAME_BYTES + 1]; /* from `w syscall`, "" = any */
  int nwhens; struct when whens[MAX_WHENS];
};
struct table {
  char name[TABLE_MAX_POLICY_NAME_BYTES + 1]; char version[TABLE_MAX_POLICY_VERSION_BYTES + 1]; bool learn;
  enum action daction; int derr; long dret; enum audit daudit;
  int nrules; struct rule *rules;
  char hash[72];
};

const char *action_name(enum action a) { return a == ACT_ALLOW ? "allow" : a == ACT_DENY ? "deny" : "emulate"; }
const char *table_policy_name(const struct table *t) { return t->name; }
const char *table_hash(const struct table *t) { return t->hash; }
const char *table_policy_version(const struct table *t) { return t->version; }
bool table_learn(const struct table *t) { return t->learn; }

/* Percent-decode in place-safe copy; fails on bad escapes, NUL or overflow. */
static bool pdecode(const char *in, char *out, size_t outlen) {
  size_t o = 0;
  for (const char *p = in; *p; p++) {
    int c = (unsigned char)*p;
    if (c == '%') {
      int v = 0;
      for (int i = 1; i <= 2; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= h - '0';
        else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
        else return false;
      }
      if (v == 0) return false;
      c = v; p += 2;
    }
    if (o + 1 >= outlen) return false;
    out[o++] = (char)c;
  }
  out[o] = 0;
  return true;
}

static bool parse_int(const char *s, int64_t *v) {
  if (!s || !*s) return false;
  if (strcmp(s, "-") == 0) { *v = 0; return true; }
  char *end; errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end) return false;
  *v = x; return true;
}

static bool parse_ranges(const char *s, struct ranges *r) {
  char buf[MAX_LINE]; if (strlen(s) >= sizeof buf) return false;
  strcpy(buf, s); r->n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (r->n >= MAX_RANGES) return false;
    char *dash = strchr(tok + 1, '-');       /* allow a leading minus on lo */
    int64_t lo, hi;
    if (dash) { *dash = 0; if (!parse_int(tok, &lo) || !parse_int(dash + 1, &hi) || hi < lo) return false; }
    else { if (!parse_int(tok, &lo)) return false; hi = lo; }
    r->r[r->n].lo = lo; r->r[r->n].hi = hi; r->n++;
  }
  return r->n > 0;
}
static bool in_ranges(const struct ranges *r, int64_t v) {
  for (int i = 0; i < r->n; i++) if (v >= r->r[i].lo && v <= r->r[i].hi) return true;
  return false;
}
static bool parse_action(const char *s, enum action *a) {
  if (!strcmp(s, "allow")) *a = ACT_ALLOW; else if (!strcmp(s, "deny")) *a = ACT_DENY;
  else if (!strcmp(s, "emulate")) *a = ACT_EMULATE; else return false;
  return true;
}
static bool parse_audit(const char *s, enum audit *a) {
  if (!strcmp(s, "all")) *a = AUDIT_ALL; else if (!strcmp(s, "denials")) *a = AUDIT_DENIALS;
  else if (!strcmp(s, "none")) *a = AUDIT_NONE; else return false;
  return true;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

struct table *table_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct table *t = NULL; char *data = NULL;
  if (!f) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
  data = malloc(MAX_FILE + 1);
  size_t len = data ? fread(data, 1, MAX_FILE + 1, f) : 0;
  fclose(f);
  if (!data) FAIL("out of memory");
  if (len > MAX_FILE) FAIL("%s: table larger than %d bytes", path, MAX_FILE);
  data[len] = 0;
  if (memchr(data, 0, len)) FAIL("%s: NUL byte in table", path);
  t = calloc(1, sizeof *t);
  if (!t) FAIL("out of memory");
  t->rules = calloc(MAX_RULES, sizeof *t->rules);
  if (!t->rules) FAIL("out of memory");
  bool seen_header = false, seen_default = false, seen_end = false;
  size_t off = 0; int lineno = 0;
  struct rule *cur = NULL;
  while (off < len && !seen_end) {
    size_t start = off;
    char *nl = memchr(data + off, '\n', len - off);
    if (!nl) FAIL("%s:%d: line without newline", path, lineno + 1);
    size_t ll = (size_t)(nl - (data + off));
    off += ll + 1; lineno++;
    if (ll >= MAX_LINE) FAIL("%s:%d: line too long", path, lineno);
    char line[MAX_LINE]; memcpy(line, data + start, ll); line[ll] = 0;
    char *fld[MAX_RPRIVS + 4]; int nf = 0; char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
      if (nf >= (int)(sizeof fld / sizeof fld[0])) FAIL("%s:%d: too many fields", path, lineno);
      fld[nf++] = tok;
    }
    if (nf == 0) FAIL("%s:%d: empty line", path, lineno);
    const char *k = fld[0];
    if (!seen_header) {
      if (nf != 2 || strcmp(k, "CAPTABLE") || strcmp(fld[1], "1")) FAIL("%s:%d: not a CAPTABLE 1 file", path, lineno);
      seen_header = true; continue;
    }
    if (!strcmp(k, "policy")) {
      if (nf != 3 || !pdecode(fld[1], t->name, sizeof t->name) || !pdecode(fld[2], t->version, sizeof t->version)) FAIL("%s:%d: bad policy line", path, lineno);
    } else if (!strcmp(k, "learn")) {
      if (nf != 1 || cur) FAIL("%s:%d: bad learn line", path, lineno);
      t->learn = true;
    } else if (!strcmp(k, "default")) {
      int64_t e, r;
      if (nf != 5 || !parse_action(fld[1], &t->daction) || !parse_int(fld[2], &e) || !parse_int(fld[3], &r) || !parse_audit(fld[4], &t->daudit))
        FAIL("%s:%d: bad default line", path, lineno);
      t->derr = (int)e; t->dret = (long)r; seen_default = true;
    } else if (!strcmp(k, "rule")) {
      int64_t idx, e, r;
      if (t->nrules >= MAX_RULES) FAIL("%s:%d: too many rules", path, lineno);
      cur = &t->rules[t->nrules];
      if (nf != 7 || !parse_int(fld[1], &idx) || !pdecode(fld[2], cur->id, sizeof cur->id) || !parse_action(fld[3], &cur->action) ||
          !parse_int(fld[4], &e) || !parse_int(fld[5], &r) || !parse_audit(fld[6], &cur->audit))
        FAIL("%s:%d: bad rule line", path, lineno);
      cur->err = (int)e; cur->ret = (long)r; t->nrules++;
    } else if (!strcmp(k, "m")) {
      if (!cur || nf != 3) FAIL("%s:%d: bad match line", path, lineno);
      if (!strcmp(fld[1], "uid")) { if (!parse_ranges(fld[2], &cur->uid)) FAIL("%s:%d: bad uid ranges", path, lineno); cur->has_uid = true; }
      else if (!strcmp(fld[1], "gid")) { if (!parse_ranges(fld[2], &cur->gid)) FAIL("%s:%d: bad gid ranges", path, lineno); cur->has_gid = true; }
      else if (!strcmp(fld[1], "exe")) {
        char g[MAX_TSTR];
        if (cur->nglobs >= MAX_GLOBS || !pdecode(fld[2], g, sizeof g)) FAIL("%s:%d: bad exe glob", path, lineno);
        cur->globs[cur->nglobs++] = strdup(g);
      } else if (!strcmp(fld[1], "image") || !strcmp(fld[1], "label")) cur->unknowable = true;
      else FAIL("%s:%d: unknown match %s", path, lineno, fld[1]);
    } else if (!strcmp(k, "p")) {
      if (!cur || cur->has_privs) FAIL("%s:%d: bad privilege line", path, lineno);
      cur->has_privs = true;
      for (int i = 1; i < nf; i++) {
        int64_t v;
        if (cur->nprivs >= MAX_RPRIVS || !parse_int(fld[i], &v)) FAIL("%s:%d: bad privilege number", path, lineno);
        cur->privs[cur->nprivs++] = (int)v;
      }
    } else if (!strcmp(k, "c")) {
      if (!cur || cur->has_caps) FAIL("%s:%d: bad capability line", path, lineno);
      cur->has_caps = true;
      for (int i = 1; i < nf; i++) {
        int64_t v;
        if (cur->ncaps >= MAX_RCAPS || !parse_int(fld[i], &v)) FAIL("%s:%d: bad capability number", path, lineno);
        cur->caps[cur->ncaps++] = (int)v;
      }
    } else if (!strcmp(k, "w")) {
      if (!cur || nf < 3) FAIL("%s:%d: bad when line", path, lineno);
      if (!strcmp(fld[1], "syscall")) {
        if (nf != 3) FAIL("%s:%d: bad when syscall", path, lineno);
        if (!pdecode(fld[2], cur->syscall, sizeof cur->syscall)) FAIL("%s:%d: bad syscall", path, lineno);
      } else {
        if (cur->nwhens >= MAX_WHENS) FAIL("%s:%d: too many when conditions", path, lineno);
        struct when *w = &cur->whens[cur->nwhens];
        if (!pdecode(fld[1], w->arg, sizeof w->arg)) FAIL("%s:%d: bad argument name", path, lineno);
        if (fld[2][0] == '=' || fld[2][0] == '~') {
          w->kind = fld[2][0] == '=' ? W_VALUES : W_GLOBS;
          for (int i = 2; i < nf; i++) {
            char v[MAX_TSTR];
            if (w->nvalues >= MAX_VALUES || fld[i][0] != fld[2][0] || !pdecode(fld[i] + 1, v, sizeof v)) FAIL("%s:%d: bad value", path, lineno);
            w->values[w->nvalues++] = strdup(v);
          }
        } else if (nf != 3 || !parse_ranges(fld[2], &w->ranges)) FAIL("%s:%d: bad ranges", path, lineno);
        else w->kind = W_RANGES;
        cur->nwhens++;
      }
    } else if (!strcmp(k, "end")) {
      if (nf != 2) FAIL("%s:%d: bad end line", path, lineno);
      const char *want = fld[1];
      if (!strncmp(want, "sha256:", 7)) want += 7;
      struct sha256 s; char got[65];
      sha256_init(&s); sha256_update(&s, data, start); sha256_hex(&s, got);
      if (strcmp(want, got)) FAIL("%s:%d: table hash mismatch (want %s, got %s)", path, lineno, want, got);
      snprintf(t->hash, sizeof t->hash, "sha256:%s", got);
      seen_end = true;
    } else FAIL("%s:%d: unknown record %s", path, lineno, k);
  }
  if (!seen_end) FAIL("%s: missing end line", path);
  if (off != len) FAIL("%s: data after end line", path);
  if (!seen_default) FAIL("%s: missing default line", path);
  free(data);
  return t;
fail:
  free(data);
  if (t) { free(t->rules); free(t); }
  return NULL;
}

static bool value_holds(const struct when *w, const char *v) {
  for (int i = 0; i < w->nvalues; i++)
    if (w->kind == W_VALUES ? !strcmp(w->values[i], v) : fnmatch(w->values[i], v, 0) == 0) return true;
  return false;
}
/* Arrays: every element must satisfy the condition (as libs/policy lookup). */
static bool when_holds(const struct when *w, const struct arg *a) {
  if (!a) return false;
  switch (a->kind) {
  case ARG_NUM: return w->kind == W_RANGES && in_ranges(&w->ranges, a->num);
  case ARG_BOOL: return false;
  case ARG_STR: return w->kind != W_RANGES && value_holds(w, a->str);
  case ARG_NUMS:
    if (w->kind != W_RANGES) return false;
    for (int i = 0; i < a->n; i++) if (!in_ranges(&w->ranges, a->nums[i])) return false;
    return true;
  case ARG_STRS:
    if (w->kind == W_RANGES) return false;
    for (int i = 0; i < a->n; i++) if (!value_holds(w, a->strs[i])) return false;
    return true;
  }
  return false;
}

static bool audit_of(enum audit au, enum action ac) { return au == AUDIT_ALL || (au == AUDIT_DENIALS && ac == ACT_DENY); }

void table_decide(const struct table *t, const char *syscall, const struct args *a, const struct subject *s,
                  const struct classification *c, struct decision *d) {
  d->rested_on_memory = false;
  for (int i = 0; i < t->nrules; i++) {
    const struct rule *r = &t->rules[i];
    if (r->unknowable) continue;
    if (c->unprivileged) {
      if (r->has_privs || !r->syscall[0]) continue;   /* only a rule naming the syscall decides an unprivileged call */
    } else if (c->nprivs > 0) {
      if (r->has_privs) {
        bool any = false;
        for (int j = 0; j < c->nprivs && !any; j++)
          for (int k = 0; k < r->nprivs; k++) if (r->privs[k] == c->privs[j]) { any = true; break; }
        if (!any) continue;
      }
    } else if (r->has_caps) {                     /* a capability with no priv(9) counterpart (CAP_SETPCAP) */
      int cn = cap_number(c->capability);
      bool any = false;
      for (int k = 0; k < r->ncaps; k++) if (r->caps[k] == cn) any = true;
      if (!any) continue;
    }
    if (r->syscall[0] && strcmp(r->syscall, syscall)) continue;
    if (r->has_uid && !in_ranges(&r->uid, s->euid)) continue;
    if (r->has_gid && !in_ranges(&r->gid, s->egid)) continue;
    if (r->nglobs > 0) {
      bool any = false;
      for (int j = 0; j < r->nglobs && !any; j++) any = fnmatch(r->globs[j], s->exe, 0) == 0;
      if (!any) continue;
    }
    bool ok = true;
    for (int j = 0; j < r->nwhens; j++) {
      const struct arg *ar = args_get(a, r->whens[j].arg);
      if (ar && ar->from_memory) d->rested_on_memory = true;
      if (!when_holds(&r->whens[j], ar)) { ok = false; break; }
    }
    if (!ok) continue;
    d->action = r->action; d->rule = i; d->rule_id = r->id; d->err = r->err; d->ret = r->ret;
    d->audit = audit_of(r->audit, r->action);
    return;
  }
  d->rule = -1; d->rule_id = NULL;
  if (c->unprivileged) { d->action = ACT_ALLOW; d->err = 0; d->ret = 0; d->audit = t->daudit != AUDIT_NONE; return; }
  d->action = t->daction; d->err = t->derr; d->ret = t->dret;
  d->audit = audit_of(t->daudit, d->action);
}
