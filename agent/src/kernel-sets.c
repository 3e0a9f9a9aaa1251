/*
 * capulator-sets: the two steps of a run's start that the kernel's capability rules need and
 * Node cannot do (docs/policy.md "Who enforces what").
 *
 *   capulator-sets filecap PATH PERMITTED_HEX INHERITABLE_HEX [ROOTID]
 *       Gives PATH (a regular file, not followed if a symlink) the file capabilities PERMITTED
 *       (+ effective bit) and INHERITABLE: security.capability, VFS_CAP_REVISION_2, or
 *       VFS_CAP_REVISION_3 with ROOTID when the container has a user namespace. On an overlay
 *       mount this copies the file up first; the image's layer is never written.
 *
 *   capulator-sets getcap PATH
 *       Prints PATH's security.capability as hex bytes (not following a symlink); exit 1 if none.
 *
 *   capulator-sets noroot-exec PROGRAM ARGS...
 *       Execs PROGRAM (runc) with SECBIT_NOROOT|SECBIT_NOROOT_LOCKED and every capability this
 *       process holds raised in its inheritable and ambient sets, so PROGRAM keeps them through
 *       execve although uid 0 no longer gets capabilities automatically. runc's init inherits
 *       the securebits; the container's processes then hold only their ambient set and what
 *       file capabilities give (capabilities(7)).
 * Exit status: 0 ok, 1 the kernel refused (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static int usage(void) {
  fprintf(stderr, "usage: capulator-sets filecap PATH PERMITTED_HEX INHERITABLE_HEX [ROOTID]\n"
                  "       capulator-sets getcap PATH\n"
                  "       capulator-sets noroot-exec PROGRAM ARGS...\n");
  return 2;
}

static int parse_mask(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 16);
  if (errno || *s == 0 || *end != 0) return -1;
  *out = v;
  return 0;
}

static int filecap(int argc, char **argv) {
  uint64_t perm, inh;
  if (argc < 5 || argc > 6 || parse_mask(argv[3], &perm) || parse_mask(argv[4], &inh)) return usage();
  int fd = open(argv[2], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) { fprintf(stderr, "capulator-sets: %s: %s\n", argv[2], strerror(errno)); return 1; }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { fprintf(stderr, "capulator-sets: %s: not a regular file\n", argv[2]); return 1; }
  struct vfs_ns_cap_data d;
  memset(&d, 0, sizeof d);
  size_t len = XATTR_CAPS_SZ_2;
  uint32_t rev = VFS_CAP_REVISION_2;
  if (argc == 6) {
    char *end;
    unsigned long r = strtoul(argv[5], &end, 10);
    if (*argv[5] == 0 || *end != 0 || r > UINT32_MAX) return usage();
    rev = VFS_CAP_REVISION_3;
    len = XATTR_CAPS_SZ_3;
    d.rootid = (uint32_t)r;
  }
  d.magic_etc = rev | (perm ? VFS_CAP_FLAGS_EFFECTIVE : 0);
  d.data[0].permitted = (uint32_t)perm;
  d.data[1].permitted = (uint32_t)(perm >> 32);
  d.data[0].inheritable = (uint32_t)inh;
  d.data[1].inheritable = (uint32_t)(inh >> 32);
  if (fsetxattr(fd, "security.capability", &d, len, 0)) {
    fprintf(stderr, "capulator-sets: %s: security.capability: %s\n", argv[2], strerror(errno));
    return 1;
  }
  close(fd);
  return 0;
}

static int getcap(int argc, char **argv) {
  if (argc != 3) return usage();
  unsigned char b[64];
  ssize_t n = lgetxattr(argv[2], "security.capability", b, sizeof b);
  if (n < 0) { fprintf(stderr, "capulator-sets: %s: %s\n", argv[2], strerror(errno)); return 1; }
  for (ssize_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
  return 0;
}

static int noroot_exec(int argc, char **argv) {
  if (argc < 3) return usage();
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct c[2];
  if (syscall(SYS_capget, &h, c)) { perror("capulator-sets: capget"); return 1; }
  c[0].inheritable = c[0].permitted;
  c[1].inheritable = c[1].permitted;
  if (syscall(SYS_capset, &h, c)) { perror("capulator-sets: capset"); return 1; }
  for (int cap = 0; cap < 64; cap++) {
    uint32_t bit = 1u << (cap % 32);
    if (!(c[cap / 32].permitted & bit)) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) { fprintf(stderr, "capulator-sets: ambient %d: %s\n", cap, strerror(errno)); return 1; }
  }
  int bits = prctl(PR_GET_SECUREBITS);
  if (bits < 0 || prctl(PR_SET_SECUREBITS, (unsigned long)bits | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED)) {
    perror("capulator-sets: securebits");
    return 1;
  }
  execvp(argv[2], argv + 2);
  fprintf(stderr, "capulator-sets: %s: %s\n", argv[2], strerror(errno));
  return 127;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "filecap")) return filecap(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "getcap")) return getcap(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "noroot-exec")) return noroot_exec(argc, argv);
  return usage();
}
