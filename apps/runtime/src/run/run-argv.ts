/**
 * The program a run starts, with its arguments, as `docker run [--entrypoint E] IMAGE [ARG…]`
 * makes it: the entrypoint (the image's Entrypoint, or E, which may be empty) followed by ARG…,
 * or, when no ARG is given, by the image's Cmd, unless the entrypoint is not the image's (a new
 * entrypoint drops the image's Cmd, as docker's does).
 */
export function runArgv(config: { Entrypoint?: string[] | null; Cmd?: string[] | null }, o: { entrypoint?: string[]; args?: string[] }): string[] {
  const entrypoint = o.entrypoint ?? config.Entrypoint ?? [];
  const args = o.args && o.args.length > 0 ? o.args : o.entrypoint === undefined ? (config.Cmd ?? []) : [];
  return [...entrypoint, ...args];
}
