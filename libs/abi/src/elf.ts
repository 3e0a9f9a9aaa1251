/**
 * A small, defensive ELF reader: header, program headers, notes, interpreter, dynamic section.
 *
 * Pure: it is handed the bytes (the CLI and the runtime read the file). Everything read from the
 * file is bounds-checked and every count is capped, so a truncated or lying file gives an
 * ElfError with a one-line message, never an exception from a typed array, a huge allocation
 * or a long loop. Both byte orders and both classes are supported.
 *
 * Brand (which OS ABI the binary is for), in the order FreeBSD's image activator trusts them:
 * an ABI note (NT_FREEBSD_ABI_TAG "FreeBSD"; NT_GNU_ABI_TAG "GNU" with os 0 Linux, 1 Hurd,
 * 2 Solaris, 3 kFreeBSD), then EI_OSABI (9 FreeBSD, 3 Linux/GNU, 0 System V, …).
 */

export type ElfType = 'none' | 'rel' | 'exec' | 'dyn' | 'core' | 'unknown';
export type ElfLinkage = 'static' | 'static-pie' | 'dynamic' | 'shared-library' | 'none';

export interface ElfProgramHeader {
  type: number;
  typeName: string;
  flags: number;
  offset: number;
  vaddr: bigint;
  filesz: number;
  memsz: bigint;
  align: bigint;
}

export interface ElfNote {
  name: string;
  type: number;
  descsz: number;
  /** Where it was found: a PT_NOTE segment or a SHT_NOTE section (named when the name is readable). */
  source: string;
}

export interface ElfInfo {
  class: 32 | 64;
  data: 'lsb' | 'msb';
  type: ElfType;
  typeNumber: number;
  machine: string;
  machineNumber: number;
  osabi: number;
  osabiName: string;
  abiVersion: number;
  /** linux | freebsd | sysv | netbsd | openbsd | hurd | solaris | kfreebsd | … */
  brand: string;
  /** What decided the brand: 'note:GNU', 'note:FreeBSD', 'osabi'. */
  brandSource: string;
  /** NT_GNU_ABI_TAG contents: OS and minimum kernel version. */
  gnuAbiTag: { os: number; osName: string; major: number; minor: number; patch: number } | null;
  /** NT_FREEBSD_ABI_TAG contents: __FreeBSD_version the binary was built for. */
  freebsdAbiTag: number | null;
  entry: bigint;
  interpreter: string | null;
  /** No interpreter is needed to run it (static, or static-pie). */
  static: boolean;
  staticPie: boolean;
  linkage: ElfLinkage;
  /** DT_NEEDED count (dynamic section), null without one. */
  needed: number | null;
  programHeaders: ElfProgramHeader[];
  notes: ElfNote[];
  /** Core files: descsz of the NT_PRSTATUS notes (one per thread), null when none. */
  prstatusSize: number | null;
  prstatusCount: number;
}

export type ElfErrorCode =
  | 'not-elf'
  | 'truncated'
  | 'bad-class'
  | 'bad-data'
  | 'bad-version'
  | 'bad-header'
  | 'bad-program-headers'
  | 'bad-section-headers'
  | 'bad-interpreter'
  | 'bad-note'
  | 'bad-dynamic'
  | 'too-many';

export class ElfError extends Error {
  override readonly name = 'ElfError';
  constructor(readonly code: ElfErrorCode, message: string) {
    super(message);
  }
}

/** Limits that keep a hostile file from costing much. */
export const ELF_LIMITS = Object.freeze({
  // Cores of big processes have one PT_LOAD per mapping and several notes per thread, so the
  // caps are generous; every table must also fit inside the file, which bounds the work.
  maxProgramHeaders: 1 << 20,
  maxSectionHeaders: 1 << 22,
  maxNotes: 1 << 20,
  maxDynamicEntries: 65536,
  maxInterpreter: 4096,
  maxNoteName: 256,
});

const PT: Record<number, string> = {
  0: 'NULL', 1: 'LOAD', 2: 'DYNAMIC', 3: 'INTERP', 4: 'NOTE', 5: 'SHLIB', 6: 'PHDR', 7: 'TLS',
  0x6474e550: 'GNU_EH_FRAME', 0x6474e551: 'GNU_STACK', 0x6474e552: 'GNU_RELRO', 0x6474e553: 'GNU_PROPERTY',
  0x65041580: 'PAX_FLAGS', 0x6ffffffa: 'SUNWBSS', 0x6ffffffb: 'SUNWSTACK', 0x70000001: 'PROC_1',
};
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PT_NOTE = 4;
const SHT_NOTE = 7;

export const ELF_MACHINES: Readonly<Record<number, string>> = Object.freeze({
  0: 'none', 2: 'sparc', 3: 'i386', 4: 'm68k', 8: 'mips', 20: 'ppc', 21: 'ppc64', 22: 's390', 40: 'arm',
  42: 'superh', 43: 'sparcv9', 50: 'ia64', 62: 'x86_64', 183: 'aarch64', 243: 'riscv', 247: 'bpf', 258: 'loongarch',
});

export const ELF_OSABIS: Readonly<Record<number, string>> = Object.freeze({
  0: 'sysv', 1: 'hpux', 2: 'netbsd', 3: 'linux', 4: 'hurd', 6: 'solaris', 7: 'aix', 8: 'irix', 9: 'freebsd',
  10: 'tru64', 11: 'modesto', 12: 'openbsd', 13: 'openvms', 14: 'nsk', 15: 'aros', 16: 'fenixos',
  17: 'cloudabi', 97: 'arm', 255: 'standalone',
});

const TYPES: Record<number, ElfType> = { 0: 'none', 1: 'rel', 2: 'exec', 3: 'dyn', 4: 'core' };
const GNU_ABI_OS = ['linux', 'hurd', 'solaris', 'kfreebsd', 'knetbsd'];
const NT_GNU_ABI_TAG = 1;
const NT_FREEBSD_ABI_TAG = 1;
const NT_PRSTATUS = 1;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_SONAME = 14;
const DT_FLAGS_1 = 0x6ffffffb;
const DF_1_PIE = 0x08000000;

class Reader {
  readonly dv: DataView;
  constructor(readonly bytes: Uint8Array, readonly le: boolean, readonly is64: boolean) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get size(): number {
    return this.bytes.length;
  }
  need(off: number, len: number, code: ElfErrorCode, what: string): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.size) {
      throw new ElfError(code, `${what} (offset ${off}, ${len} bytes) lies outside the ${this.size}-byte file`);
    }
  }
  u8(off: number): number {
    return this.dv.getUint8(off);
  }
  u16(off: number): number {
    return this.dv.getUint16(off, this.le);
  }
  u32(off: number): number {
    return this.dv.getUint32(off, this.le);
  }
  u64(off: number): bigint {
    return this.dv.getBigUint64(off, this.le);
  }
  /** A word: u32 (ELF32) or u64 (ELF64). */
  word(off: number): bigint {
    return this.is64 ? this.u64(off) : BigInt(this.u32(off));
  }
}

/** A file offset or size as a safe number; values beyond the file make it fail later, in `need`. */
function toNum(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function cstring(bytes: Uint8Array, off: number, max: number): string | undefined {
  const end = Math.min(bytes.length, off + max);
  for (let i = off; i < end; i++) {
    if (bytes[i] === 0) return latin1(bytes.subarray(off, i));
  }
  return undefined;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** True when the bytes start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Reads an ELF image; throws ElfError (with a one-line message) on anything it cannot trust. */
export function readElf(bytes: Uint8Array): ElfInfo {
  if (!(bytes instanceof Uint8Array)) throw new ElfError('not-elf', 'input is not a byte array');
  if (bytes.length < 4 || !isElf(bytes)) throw new ElfError('not-elf', 'not an ELF file (bad magic)');
  if (bytes.length < 16) throw new ElfError('truncated', `truncated ELF identification (${bytes.length} bytes)`);
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) throw new ElfError('bad-class', `bad ELF class ${cls} (expected 1 for 32-bit or 2 for 64-bit)`);
  const data = bytes[5];
  if (data !== 1 && data !== 2) throw new ElfError('bad-data', `bad ELF data encoding ${data} (expected 1 LSB or 2 MSB)`);
  if (bytes[6] !== 1) throw new ElfError('bad-version', `bad ELF identification version ${bytes[6]}`);
  const is64 = cls === 2;
  const r = new Reader(bytes, data === 1, is64);
  const ehsize = is64 ? 64 : 52;
  if (bytes.length < ehsize) throw new ElfError('truncated', `truncated ELF header (${bytes.length} of ${ehsize} bytes)`);

  const typeNumber = r.u16(16);
  const machineNumber = r.u16(18);
  const version = r.u32(20);
  if (version !== 1) throw new ElfError('bad-version', `bad ELF version ${version}`);
  const entry = r.word(24);
  const phoff = toNum(r.word(is64 ? 32 : 28));
  const shoff = toNum(r.word(is64 ? 40 : 32));
  const p = is64 ? 52 : 40;
  const eh = r.u16(p);
  const phentsize = r.u16(p + 2);
  let phnum = r.u16(p + 4);
  const shentsize = r.u16(p + 6);
  let shnum = r.u16(p + 8);
  let shstrndx = r.u16(p + 10);
  if (eh !== 0 && eh < ehsize) throw new ElfError('bad-header', `e_ehsize ${eh} is smaller than the ${ehsize}-byte header`);

  // Section headers: only needed for PN_XNUM / SHN_XINDEX and for notes of files without segments.
  const shMin = is64 ? 64 : 40;
  const sections: Array<{ type: number; name: number; offset: number; size: number; align: number }> = [];
  let sh0Info = 0;
  let sh0Size = 0;
  if (shoff !== 0) {
    if (shentsize < shMin) throw new ElfError('bad-section-headers', `e_shentsize ${shentsize} is smaller than a section header (${shMin})`);
    r.need(shoff, shentsize, 'bad-section-headers', 'section header table');
    sh0Size = toNum(r.word(shoff + (is64 ? 32 : 20)));
    sh0Info = r.u32(shoff + (is64 ? 44 : 28));
    if (shstrndx === 0xffff) shstrndx = r.u32(shoff + (is64 ? 40 : 24)); // SHN_XINDEX: the index is in sh_link of section 0
    if (shnum === 0) shnum = sh0Size;
    if (shnum > ELF_LIMITS.maxSectionHeaders) throw new ElfError('too-many', `${shnum} section headers (limit ${ELF_LIMITS.maxSectionHeaders})`);
    r.need(shoff, shnum * shentsize, 'bad-section-headers', `section header table of ${shnum} entries`);
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      sections.push({
        name: r.u32(o),
        type: r.u32(o + 4),
        offset: toNum(r.word(o + (is64 ? 24 : 16))),
        size: toNum(r.word(o + (is64 ? 32 : 20))),
        align: toNum(r.word(o + (is64 ? 48 : 32))),
      });
    }
  }
  if (phnum === 0xffff) {
    if (shoff === 0) throw new ElfError('bad-program-headers', 'e_phnum is PN_XNUM but there is no section header 0 holding the count');
    phnum = sh0Info;
  }

  // Program headers.
  const phMin = is64 ? 56 : 32;
  const programHeaders: ElfProgramHeader[] = [];
  if (phnum > 0) {
    if (phnum > ELF_LIMITS.maxProgramHeaders) throw new ElfError('too-many', `${phnum} program headers (limit ${ELF_LIMITS.maxProgramHeaders})`);
    if (phentsize < phMin) throw new ElfError('bad-program-headers', `e_phentsize ${phentsize} is smaller than a program header (${phMin})`);
    if (phoff === 0) throw new ElfError('bad-program-headers', `${phnum} program headers at offset 0`);
    r.need(phoff, phnum * phentsize, 'bad-program-headers', `program header table of ${phnum} entries`);
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      const type = r.u32(o);
      const ph: ElfProgramHeader = is64
        ? { type, typeName: '', flags: r.u32(o + 4), offset: toNum(r.u64(o + 8)), vaddr: r.u64(o + 16), filesz: toNum(r.u64(o + 32)), memsz: r.u64(o + 40), align: r.u64(o + 48) }
        : { type, typeName: '', offset: r.u32(o + 4), vaddr: BigInt(r.u32(o + 8)), filesz: r.u32(o + 16), memsz: BigInt(r.u32(o + 20)), flags: r.u32(o + 24), align: BigInt(r.u32(o + 28)) };
      ph.typeName = PT[type] ?? `0x${type.toString(16)}`;
      programHeaders.push(ph);
    }
  }

  // Interpreter.
  let interpreter: string | null = null;
  const interps = programHeaders.filter((ph) => ph.type === PT_INTERP);
  if (interps.length > 1) throw new ElfError('bad-interpreter', `${interps.length} PT_INTERP segments`);
  if (interps.length === 1) {
    const ph = interps[0];
    if (ph.filesz === 0 || ph.filesz > ELF_LIMITS.maxInterpreter) throw new ElfError('bad-interpreter', `PT_INTERP size ${ph.filesz} is out of range`);
    r.need(ph.offset, ph.filesz, 'bad-interpreter', 'PT_INTERP');
    const s = cstring(bytes, ph.offset, ph.filesz);
    if (s === undefined) throw new ElfError('bad-interpreter', 'PT_INTERP is not NUL-terminated');
    interpreter = s;
  }

  // Notes.
  const notes: Array<ElfNote & { desc: Uint8Array }> = [];
  const readNotes = (off: number, size: number, align: number, source: string) => {
    r.need(off, size, 'bad-note', `${source}`);
    const a = align === 8 ? 8 : 4;
    // Name and descriptor start at offsets aligned (relative to the note area) to 4, or to 8 for
    // 8-aligned note segments such as .note.gnu.property.
    const up = (at: number) => off + Math.ceil((at - off) / a) * a;
    let pos = off;
    const end = off + size;
    while (pos + 12 <= end) {
      if (notes.length >= ELF_LIMITS.maxNotes) throw new ElfError('too-many', `more than ${ELF_LIMITS.maxNotes} notes`);
      const namesz = r.u32(pos);
      const descsz = r.u32(pos + 4);
      const type = r.u32(pos + 8);
      const nameOff = pos + 12;
      const descOff = up(nameOff + namesz);
      const next = up(descOff + descsz);
      if (namesz > ELF_LIMITS.maxNoteName || descOff > end || descOff + descsz > end) {
        throw new ElfError('bad-note', `note at offset ${pos} in ${source} overruns it (namesz ${namesz}, descsz ${descsz})`);
      }
      let name = latin1(bytes.subarray(nameOff, nameOff + namesz));
      if (name.endsWith('\0')) name = name.slice(0, -1);
      notes.push({ name, type, descsz, source, desc: bytes.subarray(descOff, descOff + descsz) });
      if (next <= pos) break;
      pos = next;
    }
  };
  const notePhs = programHeaders.filter((ph) => ph.type === PT_NOTE);
  if (notePhs.length > 0) {
    for (const ph of notePhs) readNotes(ph.offset, ph.filesz, toNum(ph.align), 'PT_NOTE');
  } else {
    let strtab: { offset: number; size: number } | undefined;
    if (shstrndx !== 0 && shstrndx < sections.length) strtab = sections[shstrndx];
    for (const sh of sections) {
      if (sh.type !== SHT_NOTE) continue;
      let name = 'SHT_NOTE';
      if (strtab && sh.name < strtab.size && strtab.offset + sh.name < bytes.length) {
        name = cstring(bytes, strtab.offset + sh.name, Math.min(256, strtab.size - sh.name)) ?? name;
      }
      readNotes(sh.offset, sh.size, sh.align, name);
    }
  }

  // Brand.
  const osabi = bytes[7];
  const osabiName = ELF_OSABIS[osabi] ?? `osabi-${osabi}`;
  let gnuAbiTag: ElfInfo['gnuAbiTag'] = null;
  let freebsdAbiTag: number | null = null;
  for (const n of notes) {
    if (n.name === 'GNU' && n.type === NT_GNU_ABI_TAG && n.descsz >= 16 && !gnuAbiTag) {
      const dv = new DataView(n.desc.buffer, n.desc.byteOffset, 16);
      const os = dv.getUint32(0, r.le);
      gnuAbiTag = { os, osName: GNU_ABI_OS[os] ?? `gnu-os-${os}`, major: dv.getUint32(4, r.le), minor: dv.getUint32(8, r.le), patch: dv.getUint32(12, r.le) };
    }
    if (n.name === 'FreeBSD' && n.type === NT_FREEBSD_ABI_TAG && n.descsz >= 4 && freebsdAbiTag === null) {
      freebsdAbiTag = new DataView(n.desc.buffer, n.desc.byteOffset, 4).getUint32(0, r.le);
    }
  }
  let brand: string;
  let brandSource: string;
  if (freebsdAbiTag !== null) {
    brand = 'freebsd';
    brandSource = 'note:FreeBSD';
  } else if (gnuAbiTag) {
    brand = gnuAbiTag.osName;
    brandSource = 'note:GNU';
  } else {
    brand = osabiName;
    brandSource = 'osabi';
  }
  // A note can only confirm an OS the header does not contradict: EI_OSABI FreeBSD wins over a GNU note.
  if (osabi === 9 && brand !== 'freebsd') {
    brand = 'freebsd';
    brandSource = 'osabi';
  }

  // Dynamic section.
  let needed: number | null = null;
  let soname = false;
  let pieFlag = false;
  const dyn = programHeaders.find((ph) => ph.type === PT_DYNAMIC);
  if (dyn) {
    const entSize = is64 ? 16 : 8;
    r.need(dyn.offset, dyn.filesz, 'bad-dynamic', 'PT_DYNAMIC');
    const count = Math.min(Math.floor(dyn.filesz / entSize), ELF_LIMITS.maxDynamicEntries);
    needed = 0;
    for (let i = 0; i < count; i++) {
      const o = dyn.offset + i * entSize;
      const tag = r.word(o);
      const val = r.word(o + entSize / 2);
      if (tag === BigInt(DT_NULL)) break;
      if (tag === BigInt(DT_NEEDED)) needed++;
      else if (tag === BigInt(DT_SONAME)) soname = true;
      else if (tag === BigInt(DT_FLAGS_1) && (val & BigInt(DF_1_PIE)) !== 0n) pieFlag = true;
    }
  }

  const type = TYPES[typeNumber] ?? 'unknown';
  let linkage: ElfLinkage;
  if (type !== 'exec' && type !== 'dyn') linkage = 'none';
  else if (interpreter !== null) linkage = type === 'dyn' && soname && !pieFlag ? 'shared-library' : 'dynamic';
  else if (!dyn) linkage = 'static';
  else if (type === 'exec') linkage = needed ? 'dynamic' : 'static';
  else if (pieFlag || (!soname && !needed)) linkage = 'static-pie';
  else linkage = 'shared-library';

  const prstatus = notes.filter((n) => n.name === 'CORE' && n.type === NT_PRSTATUS);
  return {
    class: is64 ? 64 : 32,
    data: r.le ? 'lsb' : 'msb',
    type,
    typeNumber,
    machine: ELF_MACHINES[machineNumber] ?? `em-${machineNumber}`,
    machineNumber,
    osabi,
    osabiName,
    abiVersion: bytes[8],
    brand,
    brandSource,
    gnuAbiTag,
    freebsdAbiTag,
    entry,
    interpreter,
    static: linkage === 'static' || linkage === 'static-pie',
    staticPie: linkage === 'static-pie',
    linkage,
    needed,
    programHeaders,
    notes: notes.map(({ name, type: t, descsz, source }) => ({ name, type: t, descsz, source })),
    prstatusSize: prstatus.length ? prstatus[0].descsz : null,
    prstatusCount: prstatus.length,
  };
}

/** The CLI's summary of an ElfInfo (the `capulator abi elf --json` shape). */
export function elfSummary(info: ElfInfo): {
  class: 32 | 64; machine: string; type: ElfType; brand: string; interpreter: string | null; static: boolean;
  staticPie: boolean; linkage: ElfLinkage; data: 'lsb' | 'msb'; osabi: number; prstatusSize: number | null;
} {
  return {
    class: info.class,
    machine: info.machine,
    type: info.type,
    brand: info.brand,
    interpreter: info.interpreter,
    static: info.static,
    staticPie: info.staticPie,
    linkage: info.linkage,
    data: info.data,
    osabi: info.osabi,
    prstatusSize: info.prstatusSize,
  };
}
