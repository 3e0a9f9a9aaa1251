import { capulatorHome } from '@capulator/host';
import { startGateway } from './gateway.app';
import { parseHostPort } from './gateway.options';

/** Standalone gateway + in-process runtime (the same as `capulator serve`). */
async function main(): Promise<void> {
  const gw = await startGateway({
    home: capulatorHome(),
    http: parseHostPort(process.env.CAPULATOR_HTTP ?? '127.0.0.1:8420'),
    grpc: parseHostPort(process.env.CAPULATOR_GRPC ?? '127.0.0.1:8421'),
  });
  const stop = () => void gw.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) void main();
