import { EventStoreError } from '../errors';

/** Parses `kafka://host:port[,host:port]` (or a bare host:port list) into broker addresses. */
export function parseKafkaUrl(url: string): string[] {
  const rest = url.startsWith('kafka://') ? url.slice('kafka://'.length) : url;
  const brokers = rest.replace(/\/.*$/, '').split(',').map((s) => s.trim()).filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.\-_[\]:]+:\d+$/.test(b))) {
    throw new EventStoreError('INVALID_EVENT', `bad Kafka address ${JSON.stringify(url)}: expected kafka://HOST:PORT[,HOST:PORT…]`);
  }
  return brokers;
}
