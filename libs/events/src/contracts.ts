import type { CapabilitySets } from '@capulator/abi';
export type { CapabilitySets };
/**
 * Event contracts: data only. Every event that crosses a process boundary (agent → runtime →
 * store → gateway/Kafka) is declared here once, with a stable `type` string and a
 * `schemaVersion`. Dates are ISO-8601 strings. Streams: `run-<id>`, `policy-<name>`,
 * `image-<digest>`.
 */

export type DecisionOutcome = 'allow' | 'deny' | 'emulate';

/** How a trapped call was answered by the agent (see apps/runtime/README: per-operation table). */
export type AnsweredBy =
  | 'continue' // SECCOMP_USER_NOTIF_FLAG_CONTINUE: the decision rested on register arguments only
  | 'performed' // the agent performed the call itself with the copy it checked (pointer arguments)
  | 'errno' // denied with an errno
  | 'emulated' // a return value without running the call
  | 'abandoned' // the target's call was interrupted (ENOENT from SEND / ID_VALID) — recorded, not answered
  | 'kernel' // denied, and the caller does not hold the capability: continued so that Linux refuses it itself, with its own errno
  | 'granted' // source 'kernel': the kernel's capability check succeeded
  | 'refused'; // source 'kernel': the kernel's capability check failed (the capability is not in the task's sets)

export interface PolicyRef {
  name: string;
  version: number;
  /** sha256:<hex> of the compiled table */
  hash: string;
}


export interface Subject {
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  exe: string;
}

/** The common body of CapabilitiesQueried, CapabilitiesChangeRequested and PrivilegeChecked. */
export interface DecisionPayload {
  runId: string;
  /** per-run sequence number assigned by the agent, 1, 2, 3, … with no gaps */
  seq: number;
  /** idempotency key: the same syscall instance notified twice (SA_RESTART) carries the same key */
  key: string;
  at: string;
  subject: Subject;
  arch: 'x86_64' | 'aarch64';
  syscall: string;
  nr: number;
  /** decoded arguments, e.g. {family: 'AF_INET', type: 'SOCK_RAW', protocol: 1} or {port: 80} */
  args: Record<string, string | number | boolean | string[]>;
  privileges: string[];
  capability: string | null;
  decision: DecisionOutcome;
  errno?: number;
  return?: number;
  ruleId: string | null;
  policy: PolicyRef;
  answeredBy: AnsweredBy;
  latencyNs: number;
  learn?: boolean;
  /**
   * Schema 2. Who saw the call: absent or 'agent' for the seccomp agent's decisions; 'kernel' for
   * a capability check recorded where the kernel makes it (tp_btf/cap_capable, agent/PROTOCOL.md
   * "Kernel record"). A kernel row's `seq` is the seq of the agent's decision of the same call
   * (same thread and syscall) when there is one, else 0; `decision`/`ruleId` are the policy's
   * decision for the capability's privileges; `answeredBy` is the kernel's result.
   */
  source?: 'agent' | 'kernel';
  kernel?: KernelCheck;
}

/** How a run was recorded and enforced (RunStarted). */
export interface RunMechanisms {
  /** capability checks recorded where the kernel makes them (tp_btf/cap_capable), or not at all */
  kernelRecord: 'tp_btf' | 'none';
  /** a seccomp notification filter with the agent behind it, or no filter (native syscall speed) */
  seccomp: 'notify' | 'none';
  /** why the policy needs the filter (libs/policy seccompNeed) */
  seccompReasons?: string[];
  /** why the kernel record could not run (the agent alone records the run) */
  kernelRecordUnavailable?: string;
}

/** What the kernel record adds to a `source: 'kernel'` PrivilegeChecked. */
export interface KernelCheck {
  result: 'granted' | 'refused';
  /** identical checks (same thread, program, syscall, capability, result, ids) this row stands for */
  count: number;
  /** the kernel record's own line number, 1, 2, 3… (a gap is a lost record) */
  kseq: number;
  /** granted by the kernel although the policy denies every privilege of the capability: the run is stopped */
  violation?: boolean;
}

export interface EventTypes {
  PolicyPublished: { name: string; version: number; hash: string; yaml: string; description?: string };
  ImageImported: {
    digest: string;
    tags: string[];
    layers: string[];
    platform: { os: string; architecture: string; variant?: string };
    sizeBytes: number;
    source: string;
  };
  RunRequested: {
    runId: string;
    image: string;
    /** the entrypoint, replacing the image's (whose Cmd is then not used), as docker run --entrypoint; empty: the image's */
    command: string[];
    /** the arguments after the entrypoint, replacing the image's Cmd (docker run IMAGE ARG…); absent in runs requested before it existed, whose `command` was the whole argv */
    args?: string[];
    env: string[];
    policy: PolicyRef;
    learn: boolean;
    mounts: Array<{ source: string; destination: string; readonly: boolean }>;
    requestedBy?: string;
    /** what differs from the defaults: network, published ports, limits, user, workdir, … (apps/runtime workload.ts) */
    workload?: Record<string, unknown>;
    /**
     * Where a runtime that lacks the image fetches it (Kafka workers): the registry reference the
     * submitting gateway pulled it from, pinned by manifest digest (`host/repo@sha256:…`), and
     * the image's config digest, which the fetched image must have.
     */
    imageSource?: { ref: string; digest: string };
  };
  /**
   * A runtime worker took the run (Kafka bus): appended with the stream version the worker
   * read, so exactly one worker wins; a worker that finds a claim without an outcome after its
   * claimant left records RunFailed ("worker lost") instead of running it again.
   */
  RunClaimed: { runId: string; worker: string };
  RunStarted: {
    runId: string;
    imageDigest: string;
    user: { uid: number; gid: number };
    capabilities: CapabilitySets;
    /** for each granted capability, the rule ids that granted it */
    provenance: Record<string, string[]>;
    policy: PolicyRef;
    pid: number;
    /** which mechanisms recorded and enforced the run (absent before the kernel record existed) */
    mechanisms?: RunMechanisms;
  };
  CapabilitiesQueried: DecisionPayload;
  CapabilitiesChangeRequested: DecisionPayload & { requested?: Partial<CapabilitySets> };
  PrivilegeChecked: DecisionPayload;
  RunExited: {
    runId: string;
    exitCode: number | null;
    signal: string | null;
    counts: { allow: number; deny: number; emulate: number };
    /** decision events the agent numbered but the store never received */
    lostEvents: number;
    lostReason?: string;
    durationMs: number;
    /** the kernel's OOM killer killed a process of the container (memory limit reached) */
    oomKilled?: boolean;
    /** files kept after the run, e.g. `core` (capulator cp RUN:core .) */
    artifacts?: Array<{ name: string; bytes: number; source?: string }>;
  };
  /**
   * The one terminal event of a failed run (never followed by RunExited). When the container had
   * started, what is known of its end is kept beside the reason (all optional: absent when the
   * run failed before it started).
   */
  RunFailed: {
    runId: string;
    reason: string;
    stage: RunFailureStage;
    exitCode?: number | null;
    signal?: string | null;
    counts?: { allow: number; deny: number; emulate: number };
    lostEvents?: number;
    lostReason?: string;
    durationMs?: number;
  };
  /**
   * Decisions recovered after the run had already ended: a runtime that died mid-run finds, when
   * it starts again, that someone else closed the run (a Kafka worker's run recorded "worker
   * lost" by another worker). The spool's decisions not yet in the store are appended after the
   * terminal event, then this event, which says how many were recovered and how many are still
   * lost (it replaces the terminal event's lostEvents). Not a terminal event: a run has exactly
   * one RunExited or RunFailed whatever follows.
   */
  RunRecordCompleted: {
    runId: string;
    /** decision events appended after the run's end */
    recovered: number;
    /** decision events the agent numbered that the store still lacks */
    lostEvents: number;
    lostReason?: string;
  };
}

export type EventType = keyof EventTypes;

/** Where a run failed; `audit`: its record could not be written (disk full, I/O error). */
export type RunFailureStage = 'image' | 'policy' | 'start' | 'agent' | 'runtime' | 'audit';

export const SCHEMA_VERSIONS: { [K in EventType]: number } = {
  PolicyPublished: 1,
  ImageImported: 1,
  RunRequested: 1,
  RunClaimed: 1,
  RunStarted: 1,
  CapabilitiesQueried: 1,
  CapabilitiesChangeRequested: 1,
  PrivilegeChecked: 2,
  RunExited: 1,
  RunFailed: 1,
  RunRecordCompleted: 1,
};

/** What a producer hands to the store. */
export interface NewEvent<T extends EventType = EventType> {
  type: T;
  schemaVersion?: number;
  at: string;
  payload: EventTypes[T];
  /**
   * The payload's JSON text when the producer already has it (the agent's decision lines, see
   * TextEvent): stored and hashed exactly as given, so the store neither parses nor re-serialises it.
   */
  payloadText?: string;
}

/**
 * A NewEvent that arrives as JSON text (the agent writes each decision's payload; the runtime
 * passes it on untouched). The payload is parsed only if someone reads it; JSON.stringify of a
 * TextEvent gives the ordinary {type, at, payload} form.
 */
export class TextEvent<T extends EventType = EventType> implements NewEvent<T> {
  /** the payload once parsed: a private field, so that reading it leaves the event equal (deepEqual) to an unread twin */
  #parsed: EventTypes[T] | undefined;
  constructor(
    readonly type: T,
    readonly at: string,
    readonly payloadText: string,
    /** set when the event was written under an older schema (read back from a Kafka proposal) */
    readonly schemaVersion?: number,
  ) {}
  get payload(): EventTypes[T] {
    return (this.#parsed ??= JSON.parse(this.payloadText) as EventTypes[T]);
  }
  toJSON(): NewEvent<T> {
    return this.schemaVersion === undefined
      ? { type: this.type, at: this.at, payload: this.payload }
      : { type: this.type, schemaVersion: this.schemaVersion, at: this.at, payload: this.payload };
  }
}

/** What the store hands back: the envelope of DESIGN.md ("Events"). */
export interface StoredEvent<T extends EventType = EventType> {
  position: number;
  streamId: string;
  streamVersion: number;
  type: T;
  schemaVersion: number;
  at: string;
  payload: EventTypes[T];
  prevHash: string;
  hash: string;
}

/** A StoredEvent whose payload is parsed from its stored text on first read (appends of TextEvents). */
export class StoredTextEvent<T extends EventType = EventType> implements StoredEvent<T> {
  constructor(
    readonly position: number,
    readonly streamId: string,
    readonly streamVersion: number,
    readonly type: T,
    readonly schemaVersion: number,
    readonly at: string,
    private readonly source: NewEvent<T>,
    readonly prevHash: string,
    readonly hash: string,
  ) {}
  get payload(): EventTypes[T] {
    return this.source.payload;
  }
  /** the payload's JSON text exactly as stored and hashed */
  get payloadText(): string {
    return this.source.payloadText ?? JSON.stringify(this.source.payload);
  }
  toJSON(): StoredEvent<T> {
    const { position, streamId, streamVersion, type, schemaVersion, at, payload, prevHash, hash } = this;
    return { position, streamId, streamVersion, type, schemaVersion, at, payload, prevHash, hash };
  }
}

/**
 * About how many bytes an event takes in an append's record (its payload's JSON text plus its type
 * and time), without parsing or re-serialising a TextEvent: what limits on an append's size count.
 */
export function recordBytes(e: NewEvent): number {
  return (e.payloadText ?? JSON.stringify(e.payload) ?? '').length + e.type.length + e.at.length + 8;
}

/** The payload's JSON text as it was hashed: a text event's own text, else JSON.stringify of the payload. */
export function payloadTextOf(e: StoredEvent): string {
  return e instanceof StoredTextEvent ? e.payloadText : JSON.stringify(e.payload);
}

export const runStream = (runId: string) => `run-${runId}`;
export const policyStream = (name: string) => `policy-${name}`;
export const imageStream = (digest: string) => `image-${digest}`;
