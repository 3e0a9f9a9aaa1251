/**
 * Builds small synthetic ELF images for tests: a header, program headers, and the bytes they
 * point at (interpreter, notes, dynamic section), in either class and byte order.
 */
export interface BuildNote {
  name: string;
  type: number;
  desc: Uint8Array | number[];
}
export interface BuildOptions {
  class?: 32 | 64;
  le?: boolean;
  type?: number;
  machine?: number;
  osabi?: number;
  interp?: string;
  notes?: BuildNote[];
  /** 8: a .note.gnu.property-style 8-aligned note segment. */
  noteAlign?: 4 | 8;
  dynamic?: Array<[number, number]>;
  entry?: number;
}

export const ET = { REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;

export function u32s(le: boolean, ...vals: number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 4);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, le));
  return b;
}

export function buildElf(o: BuildOptions = {}): Uint8Array {
  const is64 = (o.class ?? 64) === 64;
  const le = o.le ?? true;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const blobs: Array<{ ptype: number; data: Uint8Array; align: number }> = [];
  if (o.interp !== undefined) blobs.push({ ptype: 3, data: new TextEncoder().encode(o.interp + '\0'), align: 1 });
  if (o.notes && o.notes.length) {
    const a = o.noteAlign ?? 4;
    const parts: number[] = [];
    for (const n of o.notes) {
      const name = [...new TextEncoder().encode(n.name), 0];
      const desc = [...n.desc];
      parts.push(...u32s(le, name.length, desc.length, n.type));
      parts.push(...name);
      while (parts.length % a) parts.push(0);
      parts.push(...desc);
      while (parts.length % a) parts.push(0);
    }
    blobs.push({ ptype: 4, data: Uint8Array.from(parts), align: a });
  }
  if (o.dynamic) {
    const ent = is64 ? 16 : 8;
    const d = new Uint8Array((o.dynamic.length + 1) * ent);
    const dv = new DataView(d.buffer);
    o.dynamic.forEach(([tag, val], i) => {
      if (is64) {
        dv.setBigUint64(i * ent, BigInt(tag), le);
        dv.setBigUint64(i * ent + 8, BigInt(val), le);
      } else {
        dv.setUint32(i * ent, tag, le);
        dv.setUint32(i * ent + 4, val, le);
      }
    });
    blobs.push({ ptype: 2, data: d, align: 8 });
  }
  const phoff = ehsize;
  let off = phoff + blobs.length * phentsize;
  const placed = blobs.map((b) => {
    off = Math.ceil(off / 8) * 8;
    const at = off;
    off += b.data.length;
    return { ...b, at };
  });
  const out = new Uint8Array(off);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1, o.osabi ?? 0]);
  dv.setUint16(16, o.type ?? ET.EXEC, le);
  dv.setUint16(18, o.machine ?? 62, le);
  dv.setUint32(20, 1, le);
  if (is64) {
    dv.setBigUint64(24, BigInt(o.entry ?? 0x401000), le);
    dv.setBigUint64(32, BigInt(blobs.length ? phoff : 0), le);
    dv.setBigUint64(40, 0n, le);
  } else {
    dv.setUint32(24, o.entry ?? 0x8048000, le);
    dv.setUint32(28, blobs.length ? phoff : 0, le);
    dv.setUint32(32, 0, le);
  }
  const p = is64 ? 52 : 40;
  dv.setUint16(p, ehsize, le);
  dv.setUint16(p + 2, phentsize, le);
  dv.setUint16(p + 4, blobs.length, le);
  dv.setUint16(p + 6, is64 ? 64 : 40, le);
  placed.forEach((b, i) => {
    const o2 = phoff + i * phentsize;
    out.set(b.data, b.at);
    if (is64) {
      dv.setUint32(o2, b.ptype, le);
      dv.setUint32(o2 + 4, 4, le);
      dv.setBigUint64(o2 + 8, BigInt(b.at), le);
      dv.setBigUint64(o2 + 16, BigInt(b.at), le);
      dv.setBigUint64(o2 + 24, BigInt(b.at), le);
      dv.setBigUint64(o2 + 32, BigInt(b.data.length), le);
      dv.setBigUint64(o2 + 40, BigInt(b.data.length), le);
      dv.setBigUint64(o2 + 48, BigInt(b.align), le);
    } else {
      dv.setUint32(o2, b.ptype, le);
      dv.setUint32(o2 + 4, b.at, le);
      dv.setUint32(o2 + 8, b.at, le);
      dv.setUint32(o2 + 12, b.at, le);
      dv.setUint32(o2 + 16, b.data.length, le);
      dv.setUint32(o2 + 20, b.data.length, le);
      dv.setUint32(o2 + 24, 4, le);
      dv.setUint32(o2 + 28, b.align, le);
    }
  });
  return out;
}

/** Offsets of the header fields tests like to corrupt. */
export function headerOffsets(is64: boolean): { phoff: number; phentsize: number; phnum: number; shoff: number; shnum: number } {
  return is64 ? { phoff: 32, phentsize: 54, phnum: 56, shoff: 40, shnum: 60 } : { phoff: 28, phentsize: 42, phnum: 44, shoff: 32, shnum: 48 };
}
