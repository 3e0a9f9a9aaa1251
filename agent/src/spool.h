#ifndef CAPULATOR_SPOOL_H
#define CAPULATOR_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The count file (--count FILE, PROTOCOL.md "Spool"): 64 bytes, little-endian, shared-mapped.
 * `decided` is the last seq the loop numbered, stored after each audited decision; `done` is set
 * once the exit line is in the spool. */
#define SPOOL_COUNT_MAGIC "capcnt1\n"
#define SPOOL_COUNT_SIZE 64
struct spool_count {
  char magic[8];
  volatile uint64_t decided;      /* audited decisions numbered (seq) */
  volatile uint64_t dropped;      /* numbered but never written to the spool */
  volatile uint64_t audit_errno;  /* the first error writing the spool (0: none) */
  volatile uint64_t done;         /* 1: the exit line is in the spool */
};
extern struct spool_count *spool_count;

#define SPOOL_SYNC_NS 1000000000ull   /* fdatasync the spool at most once a second while running */

bool spool_open(const char *path, const char *count_path, char *err, size_t errlen);
bool spool_enabled(void);
/* Appends whole lines; returns 0 or the errno. A torn line left by a failed write is terminated
 * before the next write, so it reads as one malformed line. */
int spool_write(const char *buf, size_t len, size_t *written);
/* A thread that fdatasyncs the spool once a second while lines are written (never the recorder). */
bool spool_sync_start(void);
void spool_sync_stop(void);
/* The first error of that thread (0: none). */
int spool_sync_error(void);
/* fdatasync now (at exit); returns 0 or the errno. */
int spool_sync_now(void);
size_t count_lines(const char *buf, size_t len);

/* The container's init (host pid), held as a pidfd from `attached` on. */
void supervise_container(int pid);
void stop_container(const char *why);
#endif
