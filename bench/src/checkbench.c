// Times N calls that each make one capability check and nothing else of note:
// sethostname(2) with the name the UTS namespace already has (ns_capable(CAP_SYS_ADMIN)).
// Run it in its own UTS namespace (bench/kernel-record.sh does).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  char name[64];
  if (gethostname(name, sizeof name) != 0) return 1;
  size_t len = strlen(name);
  double t0 = now();
  for (long i = 0; i < n; i++) if (sethostname(name, len) != 0) { perror("sethostname"); return 1; }
  double t1 = now();
  for (long i = 0; i < n; i++) getppid();
  double t2 = now();
  printf("check_ns=%.0f getppid_ns=%.0f\n", (t1 - t0) / n, (t2 - t1) / n);
  return 0;
}
