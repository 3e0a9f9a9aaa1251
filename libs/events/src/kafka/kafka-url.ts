import { EventStoreError } from '../errors';

/** Parses `kafka://host:port[,host:port]` (or a bare host:port list) into broker addresses. */
export function parseKafkaUrl(url: string): string[] {
  return parseKafkaBus(url).brokers;
}

/**
 * Parses `kafka://HOST:PORT[,HOST:PORT…][/TOPIC]`: the brokers and, when given, the event log's
 * topic (default capulator.events).
 */
export function parseKafkaBus(url: string): { brokers: string[]; topic?: string } {
  const rest = url.startsWith('kafka://') ? url.slice('kafka://'.length) : url;
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const topic = slash < 0 ? '' : rest.slice(slash + 1);
  const brokers = hosts.split(',').map((s) => s.trim()).filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.\-_[\]:]+:\d+$/.test(b))) {
    throw new EventStoreError('INVALID_EVENT', `bad Kafka address ${JSON.stringify(url)}: expected kafka://HOST:PORT[,HOST:PORT…][/TOPIC]`);
  }
  if (topic !== '' && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
    throw new EventStoreError('INVALID_EVENT', `bad Kafka topic ${JSON.stringify(topic)} in ${JSON.stringify(url)}: letters, digits, '.', '_' and '-'`);
  }
  return topic ? { brokers, topic } : { brokers };
}
