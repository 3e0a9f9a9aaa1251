import { writeAnchor, type Anchor, type AnchorPaths } from './anchor';

/** Events between automatic anchors while a run is recorded (one more is written at its end). */
export const ANCHOR_EVERY_EVENTS = 10_000;

/**
 * Writes anchors at sensible points for a writer: every ANCHOR_EVERY_EVENTS appended events and
 * when asked (at a run's end). A failure to anchor is reported to `warn`, never thrown: the log
 * itself is intact, only its outside witness is late.
 */
export class Anchorer {
  private since = 0;
  private lastPosition = 0;

  constructor(
    private readonly paths: AnchorPaths,
    private readonly head: () => { position: number; hash: string },
    private readonly warn: (message: string) => void,
    private readonly every = ANCHOR_EVERY_EVENTS,
  ) {}

  appended(n: number): void {
    this.since += n;
    if (this.since >= this.every) this.anchor();
  }

  anchor(): Anchor | undefined {
    this.since = 0;
    try {
      const h = this.head();
      if (h.position === 0 || h.position === this.lastPosition) return undefined;
      this.lastPosition = h.position;
      return writeAnchor(this.paths, h);
    } catch (err) {
      this.warn(`cannot write an anchor to ${this.paths.file}: ${(err as Error).message}`);
      return undefined;
    }
  }
}
