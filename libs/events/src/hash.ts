import * as crypto from 'node:crypto';

/** The prevHash of the first event in a store. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The canonical JSON of an envelope without its hash: keys in this fixed order, strings and numbers
 * as JSON.stringify writes them, and the payload as the exact JSON text stored for it (written once
 * by JSON.stringify at append, never re-serialised).
 */
export function envelopeText(
  position: number,
  streamIdJson: string,
  streamVersion: number,
  type: string,
  schemaVersion: number,
  at: string,
  payloadText: string,
): string {
  return (
    '{"position":' + position +
    ',"streamId":' + streamIdJson +
    ',"streamVersion":' + streamVersion +
    ',"type":' + JSON.stringify(type) +
    ',"schemaVersion":' + schemaVersion +
    ',"at":' + JSON.stringify(at) +
    ',"payload":' + payloadText + '}'
  );
}

/**
 * sha256(prevHash + canonical envelope) in hex, the form the chain links by (stored as 32 raw
 * bytes). crypto.hash (Node >= 20.12) is one call instead of a Hash object per event, and its hex
 * output is about 4× faster than its Buffer output on Node 20 (1.2 µs vs 4.6 µs for a 500-byte
 * decision).
 */
export function chainHash(prevHashHex: string, envelope: string): string {
  return oneShot ? oneShot('sha256', prevHashHex + envelope, 'hex') : crypto.createHash('sha256').update(prevHashHex).update(envelope).digest('hex');
}

const oneShot = (crypto as unknown as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
