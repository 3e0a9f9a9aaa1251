import * as protobuf from 'protobufjs';

/**
 * A strict reading of a protobuf message before it is decoded: every tag's wire type must be
 * the one its field's type is encoded with, every length must fit in what is left, nested
 * messages are checked the same way, and nothing may be left over. protobufjs' own decoder reads a
 * field by its declared type whatever wire type arrives, so without this a wrong wire type decodes
 * to garbage (or an error the server would answer with INTERNAL).
 */
const VARINT = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool']);
const FIXED64 = new Set(['fixed64', 'sfixed64', 'double']);
const FIXED32 = new Set(['fixed32', 'sfixed32', 'float']);

function wireTypeOf(f: protobuf.Field): number {
  if (f.resolvedType instanceof protobuf.Enum) return 0;
  if (f.resolvedType instanceof protobuf.Type) return 2;
  if (VARINT.has(f.type)) return 0;
  if (FIXED64.has(f.type)) return 1;
  if (FIXED32.has(f.type)) return 5;
  return 2; // string, bytes
}

export class WireError extends Error {}

export function checkWire(type: protobuf.Type, buf: Uint8Array, depth = 0): void {
  if (depth > 32) throw new WireError('messages nest too deep');
  const r = protobuf.Reader.create(buf);
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const id = tag >>> 3;
      const wt = tag & 7;
      if (id === 0) throw new WireError('field number 0');
      const f = type.fieldsById[id];
      if (!f) {
        if (wt === 3 || wt === 4 || wt > 5) throw new WireError(`unknown field ${id} with wire type ${wt}`);
        r.skipType(wt);
        continue;
      }
      f.resolve();
      const want = f instanceof protobuf.MapField ? 2 : wireTypeOf(f);
      const packable = f.repeated && want !== 2;
      if (wt !== want && !(packable && wt === 2)) throw new WireError(`field "${f.name}" has wire type ${wt}; its type ${f.type} is sent with ${want}`);
      if (wt === 2) {
        const bytes = r.bytes();
        if (f instanceof protobuf.MapField) continue; // map entries: keys/values are scalars or messages decoded below
        if (f.resolvedType instanceof protobuf.Type) checkWire(f.resolvedType, bytes, depth + 1);
        else if (f.type === 'string' && !isUtf8(bytes)) throw new WireError(`field "${f.name}" is not valid UTF-8`);
      } else r.skipType(wt);
    }
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(`truncated or malformed message (${(e as Error).message})`);
  }
  if (r.pos !== r.len) throw new WireError('trailing bytes after the message');
}

function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}
