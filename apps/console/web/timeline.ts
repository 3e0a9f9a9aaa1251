/**
 * The privilege timeline: time (x) × program (one lane per executable), each check or decision a
 * mark coloured by outcome. Drawn on a canvas from typed arrays; marks are aggregated per pixel
 * column and lane (the most severe outcome of the column wins its colour, denials and violations
 * drawn larger and last), so 100,000 marks cost one pass. Wheel or +/- zooms, drag or arrows pan,
 * double-click or 0 resets. Hovering a mark shows what it was.
 */
export interface Mark {
  position: number;
  t: number; // ms since the run started
  exe: string;
  outcome: 'allow' | 'emulate' | 'deny' | 'violation';
  label: string; // one line: syscall, privileges, capability, rule
}

const SEV: Record<Mark['outcome'], number> = { allow: 0, emulate: 1, deny: 2, violation: 3 };
const COLOURS = ['#1a7f37', '#0550ae', '#cf222e', '#8250df'];
const LANE = 24;
const AXIS = 22;
const LEFT = 160;

export class Timeline {
  readonly canvas: HTMLCanvasElement;
  readonly el: HTMLElement;
  private readonly tip: HTMLElement;
  private marks: Mark[] = [];
  private t: Float64Array = new Float64Array(0);
  private lane: Uint16Array = new Uint16Array(0);
  private sev: Uint8Array = new Uint8Array(0);
  private lanes: string[] = [];
  private laneIdx = new Map<string, number>();
  /** per lane, mark indices sorted by time */
  private byLane: number[][] = [];
  private t0 = 0;
  private t1 = 1;
  private v0 = 0;
  private v1 = 1;
  lastDrawMs = 0;
  private dirty = false;

  constructor(readonly summary: (text: string) => void) {
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.tabIndex = 0;
    this.canvas.id = 'timeline-canvas';
    this.tip = document.createElement('div');
    this.tip.className = 'tip';
    this.tip.hidden = true;
    this.tip.id = 'timeline-tip';
    this.el = document.createElement('div');
    this.el.className = 'timeline';
    this.el.append(this.canvas, this.tip);
    this.bind();
  }

  /** Replaces all marks (sorted by position). */
  set(marks: Mark[]): void {
    this.marks = [];
    this.lanes = [];
    this.laneIdx.clear();
    this.byLane = [];
    this.add(marks, true);
  }

  /** Appends marks (a live run); redraws on the next frame. */
  add(marks: Mark[], reset = false): void {
    const n0 = this.marks.length;
    const n = n0 + marks.length;
    const t = new Float64Array(n), lane = new Uint16Array(n), sev = new Uint8Array(n);
    t.set(this.t.subarray(0, n0)); lane.set(this.lane.subarray(0, n0)); sev.set(this.sev.subarray(0, n0));
    for (let i = 0; i < marks.length; i++) {
      const m = marks[i];
      let li = this.laneIdx.get(m.exe);
      if (li === undefined) {
        li = this.lanes.length;
        this.lanes.push(m.exe);
        this.laneIdx.set(m.exe, li);
        this.byLane.push([]);
      }
      t[n0 + i] = m.t; lane[n0 + i] = li; sev[n0 + i] = SEV[m.outcome];
      this.byLane[li].push(n0 + i);
      this.marks.push(m);
    }
    this.t = t; this.lane = lane; this.sev = sev;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { if (t[i] < lo) lo = t[i]; if (t[i] > hi) hi = t[i]; }
    if (n === 0) { lo = 0; hi = 1; }
    if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.02;
    lo -= pad; hi += pad;
    const wasFull = reset || (this.v0 === this.t0 && this.v1 === this.t1);
    this.t0 = lo; this.t1 = hi;
    if (wasFull) { this.v0 = lo; this.v1 = hi; }
    // keep each lane's indices time-sorted (hit() binary-searches them). Live marks mostly arrive
    // in order, but not always: the kernel's checks come on their own stream, and one batch can
    // hold an earlier mark anywhere in it, not only at its end
    for (const l of this.byLane) {
      for (let k = 1; k < l.length; k++) {
        if (t[l[k]] < t[l[k - 1]]) {
          l.sort((a, b) => t[a] - t[b]);
          break;
        }
      }
    }
    this.request();
  }

  get size(): number {
    return this.marks.length;
  }

  private request(): void {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      this.draw();
    });
  }

  private xOf(t: number, w: number): number {
    return LEFT + ((t - this.v0) / (this.v1 - this.v0)) * (w - LEFT - 8);
  }

  /** Draws everything now; returns the time it took (ms). */
  draw(): number {
    const start = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const cssW = Math.max(320, this.el.clientWidth || 800);
    const cssH = AXIS + Math.max(1, this.lanes.length) * LANE + 6;
    this.el.style.height = `${cssH}px`;
    if (this.canvas.width !== Math.round(cssW * dpr) || this.canvas.height !== Math.round(cssH * dpr)) {
      this.canvas.width = Math.round(cssW * dpr);
      this.canvas.height = Math.round(cssH * dpr);
    }
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = '12px "DejaVu Sans", sans-serif';
    ctx.textBaseline = 'middle';
    // lanes
    for (let l = 0; l < this.lanes.length; l++) {
      const y = AXIS + l * LANE;
      ctx.fillStyle = l % 2 ? '#f6f8fa' : '#ffffff';
      ctx.fillRect(0, y, cssW, LANE);
      ctx.fillStyle = '#1b1f24';
      const name = this.lanes[l];
      ctx.fillText(name.length > 24 ? '…' + name.slice(-23) : name, 4, y + LANE / 2);
    }
    // axis
    ctx.fillStyle = '#57606a';
    ctx.strokeStyle = '#d0d7de';
    const span = this.v1 - this.v0;
    const step = niceStep(span / 6);
    for (let v = Math.ceil(this.v0 / step) * step; v <= this.v1; v += step) {
      const x = this.xOf(v, cssW);
      ctx.beginPath(); ctx.moveTo(x, AXIS - 4); ctx.lineTo(x, cssH); ctx.stroke();
      ctx.fillText(fmtMs(v), x + 2, 10);
    }
    // marks, binned per pixel column and lane: the most severe outcome of a cell wins
    const w = Math.ceil(cssW);
    const lanes = Math.max(1, this.lanes.length);
    const cells = new Uint8Array(w * lanes); // severity + 1, 0 = empty
    const counts = new Uint32Array(w * lanes);
    const t = this.t, lane = this.lane, sev = this.sev;
    const scale = (w - LEFT - 8) / (this.v1 - this.v0);
    for (let i = 0; i < t.length; i++) {
      const tv = t[i];
      if (tv < this.v0 || tv > this.v1) continue;
      const x = (LEFT + (tv - this.v0) * scale) | 0;
      const c = lane[i] * w + x;
      counts[c]++;
      if (sev[i] + 1 > cells[c]) cells[c] = sev[i] + 1;
    }
    for (let s = 1; s <= 4; s++) {
      ctx.fillStyle = COLOURS[s - 1];
      const big = s >= 3;
      for (let l = 0; l < lanes; l++) {
        const y = AXIS + l * LANE;
        const row = l * w;
        for (let x = LEFT; x < w; x++) {
          if (cells[row + x] !== s) continue;
          const many = counts[row + x] > 1;
          if (big) ctx.fillRect(x - 2, y + 2, 5, LANE - 4);
          else ctx.fillRect(x - 1, y + (many ? 5 : 7), 3, LANE - (many ? 10 : 14));
        }
      }
    }
    const ms = performance.now() - start;
    this.lastDrawMs = ms;
    const d = this.marks.reduce((a, m) => a + (m.outcome === 'deny' || m.outcome === 'violation' ? 1 : 0), 0);
    const text = `Privilege timeline: ${this.marks.length} checks by ${this.lanes.length} program(s), ${d} denied or violations, ${fmtMs(this.v0)}–${fmtMs(this.v1)}`;
    this.canvas.setAttribute('aria-label', text);
    this.summary(text);
    return ms;
  }

  /** The marks drawn under canvas point (x, y) (within 4 px: one aggregated cell), most severe first. */
  hit(x: number, y: number): Mark[] {
    const l = Math.floor((y - AXIS) / LANE);
    if (l < 0 || l >= this.lanes.length) return [];
    const w = this.el.clientWidth || 800;
    const idx = this.byLane[l];
    const span = this.v1 - this.v0;
    const per = span / (w - LEFT - 8);
    const tLo = this.v0 + (x - 4 - LEFT) * per, tHi = this.v0 + (x + 4 - LEFT) * per;
    let lo = 0, hi = idx.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.t[idx[mid]] < tLo) lo = mid + 1; else hi = mid; }
    const out: number[] = [];
    for (let k = lo; k < idx.length && this.t[idx[k]] <= tHi; k++) out.push(idx[k]);
    out.sort((a, b) => this.sev[b] - this.sev[a] || this.t[a] - this.t[b]);
    return out.map((i) => this.marks[i]);
  }

  /** Where a mark is drawn, in canvas CSS pixels (for tests and keyboard focus). */
  locate(pred: (m: Mark) => boolean): { x: number; y: number; mark: Mark } | undefined {
    const w = this.el.clientWidth || 800;
    const i = this.marks.findIndex(pred);
    if (i < 0) return undefined;
    return { x: this.xOf(this.t[i], w), y: AXIS + this.lane[i] * LANE + LANE / 2, mark: this.marks[i] };
  }

  private bind(): void {
    const c = this.canvas;
    c.addEventListener('mousemove', (ev) => {
      const r = c.getBoundingClientRect();
      const x = ev.clientX - r.left, y = ev.clientY - r.top;
      if (drag) {
        const span = this.v1 - this.v0;
        const dt = ((drag.x - x) / (r.width - LEFT - 8)) * span;
        this.pan(drag.v0 + dt - this.v0);
        return;
      }
      const ms = this.hit(x, y);
      if (ms.length === 0) { this.tip.hidden = true; return; }
      const lines = ms.slice(0, 6).map((m) => `${m.outcome.toUpperCase()} at ${fmtMs(m.t)} · ${m.exe} · ${m.label}`);
      if (ms.length > 6) lines.push(`… and ${ms.length - 6} more here (zoom in)`);
      this.tip.textContent = lines.join('\n');
      this.tip.hidden = false;
      this.tip.style.left = `${Math.min(x + 12, r.width - 300)}px`;
      this.tip.style.top = `${y + 12}px`;
    });
    c.addEventListener('mouseleave', () => (this.tip.hidden = true));
    let drag: { x: number; v0: number } | undefined;
    c.addEventListener('mousedown', (ev) => (drag = { x: ev.clientX - c.getBoundingClientRect().left, v0: this.v0 }));
    window.addEventListener('mouseup', () => (drag = undefined));
    c.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const r = c.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (ev.clientX - r.left - LEFT) / (r.width - LEFT - 8)));
      this.zoom(ev.deltaY < 0 ? 0.8 : 1.25, frac);
    }, { passive: false });
    c.addEventListener('dblclick', () => this.reset());
    c.addEventListener('keydown', (ev) => {
      const span = this.v1 - this.v0;
      if (ev.key === '+' || ev.key === '=') this.zoom(0.8, 0.5);
      else if (ev.key === '-') this.zoom(1.25, 0.5);
      else if (ev.key === 'ArrowLeft') this.pan(-span * 0.1);
      else if (ev.key === 'ArrowRight') this.pan(span * 0.1);
      else if (ev.key === '0') this.reset();
      else return;
      ev.preventDefault();
    });
    window.addEventListener('resize', () => this.request());
  }

  zoom(factor: number, frac: number): void {
    const span = this.v1 - this.v0;
    const at = this.v0 + span * frac;
    const ns = Math.min(this.t1 - this.t0, Math.max(0.001, span * factor));
    this.v0 = Math.max(this.t0, at - ns * frac);
    this.v1 = Math.min(this.t1, this.v0 + ns);
    this.request();
  }
  pan(dt: number): void {
    const span = this.v1 - this.v0;
    this.v0 = Math.min(this.t1 - span, Math.max(this.t0, this.v0 + dt));
    this.v1 = this.v0 + span;
    this.request();
  }
  reset(): void {
    this.v0 = this.t0; this.v1 = this.t1;
    this.request();
  }
}

function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-6))));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}
export function fmtMs(ms: number): string {
  if (Math.abs(ms) < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (Math.abs(ms) < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
