/* capulator-agent pty ROWS COLS -- COMMAND [ARG...] (PROTOCOL.md "pty")
 *
 * Runs COMMAND (`runc run` of a container with `terminal: true`) as the session leader of a new
 * pseudo-terminal of ROWS x COLS, and relays bytes between it and this process's pipes: stdin to
 * the terminal, the terminal to stdout. This is what a server (`capulator serve`, which has no
 * terminal of its own) gives runc as the "host console" for `run --server -t`: runc makes the
 * container's own pty, sets this one raw and copies between the two, and passes window size
 * changes on (SIGWINCH), as it does for a user's terminal.
 *
 * fd 3, if open, carries window sizes as lines "ROWS COLS\n": each is set on the terminal
 * (TIOCSWINSZ), which signals SIGWINCH to COMMAND. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and
 * SIGUSR2 are passed to COMMAND. End of stdin is not passed on (a terminal has no end of file;
 * docker does the same). Exits as COMMAND did: its exit status, or killed by the same signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int pty_main(int argc, char **argv);

static bool size_arg(const char *s, unsigned short *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v < 1 || v > 10000) return false;
  *out = (unsigned short)v;
  return true;
}

/* Writes all of buf to a blocking fd; false when it is gone. */
static bool write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    buf += w; n -= (size_t)w;
  }
  return true;
}

int pty_main(int argc, char **argv) {
  struct winsize ws = {0};
  if (argc < 6 || strcmp(argv[4], "--") || !size_arg(argv[2], &ws.ws_row) || !size_arg(argv[3], &ws.ws_col)) {
    fprintf(stderr, "usage: capulator-agent pty ROWS COLS -- COMMAND [ARG...]\n");
    return 2;
  }
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0 || grantpt(m) || unlockpt(m)) { perror("capulator-agent pty: posix_openpt"); return 1; }
  const char *slave = ptsname(m);
  if (!slave || ioctl(m, TIOCSWINSZ, &ws)) { perror("capulator-agent pty: ptsname"); return 1; }
  sigset_t fwd;
  sigemptyset(&fwd);
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&fwd, sigs[i]);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &fwd, &old);
  int sfd = signalfd(-1, &fwd, SFD_CLOEXEC);
  if (sfd < 0) { perror("capulator-agent pty: signalfd"); return 1; }
  pid_t pid = fork();
  if (pid < 0) { perror("capulator-agent pty: fork"); return 1; }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    int s = -1;
    if (setsid() < 0 || (s = open(slave, O_RDWR)) < 0 || ioctl(s, TIOCSCTTY, 0) || dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0) {
      perror("capulator-agent pty: the terminal");
      _exit(125);
    }
    if (s > 2) close(s);
    close(3);
    execvp(argv[5], argv + 5);
    fprintf(stderr, "capulator-agent pty: %s: %s\n", argv[5], strerror(errno));
    _exit(127);
  }
  fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
  bool in_open = true, ctl_open = fcntl(3, F_GETFD) >= 0, exited = false;
  int status = 0;
  char pend[4096]; size_t plen = 0, poff = 0;     /* stdin read, not yet taken by the terminal */
  char ctl[256]; size_t clen = 0;
  for (;;) {
    struct pollfd pf[4] = {
      {.fd = m, .events = POLLIN | (plen > poff ? POLLOUT : 0)},
      {.fd = sfd, .events = POLLIN},
      {.fd = in_open && plen == poff ? 0 : -1, .events = POLLIN},
      {.fd = ctl_open ? 3 : -1, .events = POLLIN},
    };
    /* once COMMAND has exited, what it wrote last is read until the terminal is drained */
    int n = poll(pf, 4, exited ? 100 : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t r = read(m, buf, sizeof buf);
      if (r > 0) { if (!write_all(1, buf, (size_t)r)) { /* nobody reads: keep relaying input */ } }
      else if (r == 0 || (errno != EAGAIN && errno != EINTR)) { if (exited) break; if (!(pf[0].revents & POLLIN)) usleep(1000); }
    }
    if ((pf[0].revents & POLLOUT) && plen > poff) {
      ssize_t w = write(m, pend + poff, plen - poff);
      if (w > 0) poff += (size_t)w;
      if (poff == plen) poff = plen = 0;
    }
    if (pf[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
        } else if (!exited) kill(pid, (int)si.ssi_signo);
      }
    }
    if (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(0, pend, sizeof pend);
      if (r > 0) { plen = (size_t)r; poff = 0; }
      else if (r == 0 || errno != EINTR) in_open = false;
    }
    if (pf[3].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(3, ctl + clen, sizeof ctl - 1 - clen);
      if (r <= 0) { if (r == 0 || errno != EINTR) ctl_open = false; }
      else {
        clen += (size_t)r;
        char *nl;
        while ((nl = memchr(ctl, '\n', clen))) {
          *nl = 0;
          unsigned rows, cols;
          if (sscanf(ctl, "%u %u", &rows, &cols) == 2 && rows >= 1 && rows <= 10000 && cols >= 1 && cols <= 10000) {
            struct winsize w = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            ioctl(m, TIOCSWINSZ, &w);
          }
          size_t used = (size_t)(nl - ctl) + 1;
          memmove(ctl, ctl + used, clen - used);
          clen -= used;
        }
        if (clen == sizeof ctl - 1) clen = 0;     /* a line too long: dropped */
      }
    }
  }
  if (!exited) waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigset_t one; sigemptyset(&one); sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    kill(getpid(), sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
