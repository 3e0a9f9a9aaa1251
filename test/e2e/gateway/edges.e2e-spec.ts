import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import fc from 'fast-check';
import { validateDto } from '../../../apps/gateway/src/validation';
import { SubmitRunDto } from '../../../apps/gateway/src/runs/dto/submit-run.dto';
import { ValidationFailed } from '../../../apps/gateway/src/errors/domain.error';
import { bearer, bootGateway, call, grpcClient, type GrpcClient, type TestGateway } from './harness';

/** Malformed gRPC messages, out-of-range positions, bad image references and non-JSON bodies. */
const ID = '00000000-0000-4000-8000-000000000002';

function raw(address: string, method: string, body: Buffer, md: grpc.Metadata): Promise<grpc.status> {
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    c.makeUnaryRequest(`/capulator.v1.Capulator/${method}`, (b: Buffer) => b, (b: Buffer) => b, body, md, (err) => {
      c.close();
      resolve(err ? (err.code as grpc.status) : grpc.status.OK);
    });
  });
}
/** protobuf: field 1 (image, string) = s */
const str1 = (s: string) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(s)]), Buffer.from(s)]);

describe('gateway edges', () => {
  let t: TestGateway;
  let client: GrpcClient;
  before(async () => {
    t = await bootGateway();
    client = grpcClient(t.gw.grpcAddress!);
  });
  after(async () => {
    client?.close();
    await t?.close();
  });

  describe('when a gRPC message is malformed', () => {
    it('answers INVALID_ARGUMENT for a truncated frame, a wrong wire type, a bad length and trailing garbage', async () => {
      const md = bearer(t.admin);
      const good = str1('busybox:1');
      assert.notEqual(await raw(t.gw.grpcAddress!, 'SubmitRun', good, md), grpc.status.INVALID_ARGUMENT, 'a well-formed message');
      for (const [what, body] of [
        ['truncated', good.subarray(0, good.length - 3)],
        ['wrong wire type (varint for a string)', Buffer.from([0x08, 0x41])],
        ['length past the end', Buffer.from([0x0a, 0x7f, 0x41])],
        ['group wire type', Buffer.from([0x0b, 0x0c])],
        ['not UTF-8', Buffer.from([0x0a, 0x02, 0xc3, 0x28])],
      ] as const) {
        assert.equal(await raw(t.gw.grpcAddress!, 'SubmitRun', body as Buffer, md), grpc.status.INVALID_ARGUMENT, what);
      }
      assert.equal(await raw(t.gw.grpcAddress!, 'GetRun', Buffer.from([0x0a, 0x10, 0x41]), md), grpc.status.INVALID_ARGUMENT, 'GetRun truncated');
    });
    it('still answers UNAUTHENTICATED first without a token', async () => {
      assert.equal(await raw(t.gw.grpcAddress!, 'SubmitRun', Buffer.from([0x08, 0x41]), new grpc.Metadata()), grpc.status.UNAUTHENTICATED);
    });
  });

  describe('when WatchRun asks for a position above 2^53', () => {
    it('answers INVALID_ARGUMENT instead of replaying from 0', async () => {
      const code = await new Promise<number>((resolve) => {
        const s = client.WatchRun({ id: ID, after: '18446744073709551615' }, bearer(t.admin));
        s.on('data', () => undefined);
        s.on('error', (e: { code: number }) => resolve(e.code));
        s.on('end', () => resolve(grpc.status.OK));
      });
      assert.equal(code, grpc.status.INVALID_ARGUMENT);
    });
  });

  describe('when a run names an image that is not a reference', () => {
    it('is refused at submission on both APIs', async () => {
      for (const image of ['../../etc/passwd', 'a b', 'x@sha256:zz', ':tag', 'é:1']) {
        const r = await request(t.url).post('/v1/runs').set({ Authorization: `Bearer ${t.admin}` }).send({ image }).expect(400);
        assert.equal(r.body.error.details[0].field, 'image', image);
        await assert.rejects(call(client, 'SubmitRun', { image }, bearer(t.admin)), (e: { code: number }) => e.code === grpc.status.INVALID_ARGUMENT);
      }
    });
  });

  describe('when a JSON route gets another content type', () => {
    it('answers 415', async () => {
      for (const path of ['/v1/runs', '/v1/replays', '/v1/images/pull']) {
        const r = await request(t.url).post(path).set({ Authorization: `Bearer ${t.admin}` }).set('Content-Type', 'text/plain').send('{"image":"busybox"}');
        assert.equal(r.status, 415, path);
        assert.equal(r.body.error.code, 'unsupported_media_type');
      }
    });
  });

  describe('when SubmitRunDto gets arbitrary JSON (fuzz)', () => {
    it('validates or refuses with ValidationFailed, never throws anything else', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.jsonValue(), fc.record({ image: fc.oneof(fc.string(), fc.jsonValue()), mounts: fc.jsonValue(), env: fc.jsonValue(), command: fc.jsonValue(), learn: fc.jsonValue() }, { requiredKeys: [] })), async (v) => {
          try {
            await validateDto(SubmitRunDto, v as Record<string, unknown>);
          } catch (e) {
            if (!(e instanceof ValidationFailed)) throw e;
          }
        }),
        { numRuns: 300, seed: 16 },
      );
    });
  });
});
