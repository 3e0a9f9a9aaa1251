#ifndef CAPULATOR_EXIT_WATCH_H
#define CAPULATOR_EXIT_WATCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Thread exits of the subject cache's threads, seen without a system call (PROTOCOL.md "Subjects").
 *
 * A BPF program on the sched_process_exit raw tracepoint looks up each exiting thread's tid in a
 * hash map the agent fills (tid -> cache slot); for a watched thread it sets the slot's flag, then
 * increments a counter, both in an array map the agent has mapped. The tracepoint fires in
 * do_exit() before the tid is released, so a thread that exited before a notification was raised
 * has its flag and count visible once that notification is received (the seccomp notification
 * lock orders them): one load of the counter after each RECV replaces a system call.
 *
 * exit_watch_open() checks that the agent is in the initial pid namespace (the program sees tids
 * as that namespace numbers them), loads and attaches the program, and proves it on a thread of
 * its own; when anything fails the caller keeps its pidfd-per-thread epoll set instead. */
bool exit_watch_open(unsigned slots, char *err, size_t errlen);
/* Watches tid for slot (before the thread's identity is read); false: the map is full or failed. */
bool exit_watch_add(int tid, unsigned slot);
void exit_watch_del(int tid);
/* The exits counted so far (an acquire load: the flags of those exits are visible after it). */
uint64_t exit_watch_count(void);
/* Whether slot's flag was set, clearing it. */
bool exit_watch_take(unsigned slot);

#endif
