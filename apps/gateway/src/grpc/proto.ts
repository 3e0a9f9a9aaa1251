import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { repoRoot } from '@capulator/host';

/** proto/capulator.proto, loaded at run time from the repository (not from dist/). */
export function protoPath(): string {
  return join(repoRoot(), 'proto', 'capulator.proto');
}

export const PROTO_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true };

export function loadCapulatorService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(protoPath(), PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { capulator: { v1: { Capulator: grpc.ServiceClientConstructor } } };
  return pkg.capulator.v1.Capulator;
}
