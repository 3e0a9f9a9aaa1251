/* The run's spool and count file (agent/PROTOCOL.md "Spool"): what the agent has decided
 * outlives the runtime. Only the recorder thread writes the spool; the notification loop only
 * stores its count into a shared mapping (no syscall). */
#include "spool.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct spool_count *spool_count;
static int spool_fd = -1;
static bool torn;                 /* the last write ended inside a line: terminate it before the next */
static atomic_bool unsynced;
static atomic_int sync_errno;     /* the first fdatasync error of the sync thread */
static atomic_int sync_stop;
static pthread_t sync_thread;
static bool sync_running;
/* the sync thread waits on this between syncs: spool_sync_stop wakes it at once (a sleep there
 * held up every run's end by up to its length) */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cv;

static uint64_t mono_ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

bool spool_enabled(void) { return spool_fd >= 0; }

bool spool_open(const char *path, const char *count_path, char *err, size_t errlen) {
  spool_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (spool_fd < 0) { snprintf(err, errlen, "spool %s: %s", path, strerror(errno)); return false; }
  if (!count_path) return true;
  int fd = open(count_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) { snprintf(err, errlen, "count file %s: %s", count_path, strerror(errno)); return false; }
  /* real blocks before mapping: a store into the mapping must never need an allocation
   * (SIGBUS on a full disk) */
  char zero[SPOOL_COUNT_SIZE] = {0};
  memcpy(zero, SPOOL_COUNT_MAGIC, 8);
  if (write(fd, zero, sizeof zero) != (ssize_t)sizeof zero || fdatasync(fd)) {
    snprintf(err, errlen, "count file %s: %s", count_path, strerror(errno ? errno : EIO));
    close(fd); return false;
  }
  void *m = mmap(NULL, SPOOL_COUNT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) { snprintf(err, errlen, "count file %s: %s", count_path, strerror(errno)); return false; }
  spool_count = m;
  return true;
}

int spool_write(const char *buf, size_t len, size_t *written) {
  *written = 0;
  if (torn) {
    if (write(spool_fd, "\n", 1) != 1) return errno ? errno : EIO;
    torn = false;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(spool_fd, buf + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      /* whole lines written count as written; a torn tail line does not */
      while (off > 0 && buf[off - 1] != '\n') { torn = true; off--; }
      *written = off;
      return e;
    }
    off += (size_t)w;
  }
  atomic_store(&unsynced, true);
  *written = off;
  return 0;
}

/* The sync thread: fdatasync once a second when lines were written since the last one. It has a
 * thread of its own so that a slow disk never holds up the recorder (whose ring would fill). */
static void *syncer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&sync_mu);
  while (!atomic_load(&sync_stop)) {
    uint64_t next = mono_ns() + SPOOL_SYNC_NS;
    struct timespec dl = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
    while (!atomic_load(&sync_stop) && mono_ns() < next) pthread_cond_timedwait(&sync_cv, &sync_mu, &dl);
    if (atomic_load(&sync_stop)) break;
    pthread_mutex_unlock(&sync_mu);
    if (atomic_exchange(&unsynced, false) && fdatasync(spool_fd)) {
      int zero = 0;
      atomic_compare_exchange_strong(&sync_errno, &zero, errno ? errno : EIO);
    }
    pthread_mutex_lock(&sync_mu);
  }
  pthread_mutex_unlock(&sync_mu);
  return NULL;
}

bool spool_sync_start(void) {
  if (spool_fd < 0) return true;
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&sync_cv, &a);
  pthread_condattr_destroy(&a);
  sync_running = pthread_create(&sync_thread, NULL, syncer, NULL) == 0;
  return sync_running;
}

void spool_sync_stop(void) {
  if (!sync_running) return;
  pthread_mutex_lock(&sync_mu);
  atomic_store(&sync_stop, 1);
  pthread_cond_signal(&sync_cv);
  pthread_mutex_unlock(&sync_mu);
  pthread_join(sync_thread, NULL);
  sync_running = false;
}

int spool_sync_error(void) { return atomic_load(&sync_errno); }

int spool_sync_now(void) {
  if (spool_fd < 0) return 0;
  atomic_store(&unsynced, false);
  return fdatasync(spool_fd) ? errno : 0;
}

size_t count_lines(const char *buf, size_t len) {
  size_t n = 0;
  for (const char *p = buf, *end = buf + len; p < end; p++) {
    p = memchr(p, '\n', (size_t)(end - p));
    if (!p) break;
    n++;
  }
  return n;
}

/* ---------- supervision ---------- */
static int container_pidfd = -1;
void supervise_container(int pid) {
  if (pid > 0) container_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
}
void stop_container(const char *why) {
  if (container_pidfd < 0) return;
  fprintf(stderr, "capulator-agent: %s: stopping the container\n", why);
  /* the container's init: killing it ends every process of its pid namespace */
  syscall(SYS_pidfd_send_signal, container_pidfd, SIGKILL, NULL, 0);
}
