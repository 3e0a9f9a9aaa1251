import { closeSync, constants, openSync } from 'node:fs';

/**
 * Whether this process has a controlling terminal: runc's -t (run and exec, in the foreground)
 * opens /dev/tty to set it raw and follow its size, and fails without one (a pipe, cron, CI);
 * there the agent binary's pty relay (agent/src/pty.c) gives runc one.
 */
export function hasControllingTerminal(): boolean {
  try {
    closeSync(openSync('/dev/tty', constants.O_RDONLY | constants.O_NOCTTY));
    return true;
  } catch {
    return false;
  }
}
