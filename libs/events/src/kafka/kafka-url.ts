import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KafkaConfig } from 'kafkajs';
import { EventStoreError } from '../errors';
import { fsErrorText } from '@capulator/host';

/** The environment variable that holds the SASL password (never the URL: argv and logs show it). */
export const KAFKA_PASSWORD_ENV = 'CAPULATOR_KAFKA_PASSWORD';

export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/**
 * How to reach the brokers: their addresses and, for a secured cluster, TLS (the CA to trust, a
 * client certificate) and SASL credentials. The fields are in the form kafkajs takes them, so a
 * client is `new Kafka({ clientId, ...kafkaClientConfig(conn), … })`.
 */
export interface KafkaConnection {
  brokers: string[];
  /** TLS to every broker: true for the system's CAs, or the PEM texts read from the URL's files */
  ssl?: true | { ca?: string[]; cert?: string; key?: string };
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
}

export interface KafkaBus extends KafkaConnection {
  /** the event log's topic, when the URL names one (default capulator.events) */
  topic?: string;
}

const GRAMMAR = 'kafka[s]://HOST:PORT[,HOST:PORT…][/TOPIC][?sasl=MECHANISM&user=NAME&ca=FILE…]';
const PARAMS = ['tls', 'ca', 'cert', 'key', 'sasl', 'user', 'password-file'];
const MECHANISMS: KafkaSaslMechanism[] = ['scram-sha-512', 'scram-sha-256', 'plain'];

function bad(msg: string): EventStoreError {
  return new EventStoreError('INVALID_EVENT', msg);
}

/**
 * Parses `kafka://HOST:PORT[,HOST:PORT…][/TOPIC][?PARAM=VALUE&…]`: the brokers, the event log's
 * topic when given (default capulator.events), and how to authenticate (docs/scale-out.md
 * "A secured cluster"):
 *   kafkas://… or ?tls   TLS, trusting the system's CAs; ?ca=FILE trusts the CAs of a PEM file
 *   ?cert=FILE&key=FILE  a client certificate (PEM) for clusters that ask for one (mutual TLS)
 *   ?sasl=scram-sha-512|scram-sha-256|plain&user=NAME  SASL; the password comes from
 *                        $CAPULATOR_KAFKA_PASSWORD or ?password-file=FILE, never from the URL
 * Files are read here, so a missing one is reported where the URL is given.
 */
export function parseKafkaBus(url: string, env: NodeJS.ProcessEnv = process.env): KafkaBus {
  const tlsScheme = url.startsWith('kafkas://');
  const rest = tlsScheme ? url.slice('kafkas://'.length) : url.startsWith('kafka://') ? url.slice('kafka://'.length) : url;
  const q = rest.indexOf('?');
  const addr = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  const slash = addr.indexOf('/');
  const hosts = slash < 0 ? addr : addr.slice(0, slash);
  const topic = slash < 0 ? '' : addr.slice(slash + 1);
  const brokers = hosts.split(',').map((s) => s.trim()).filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.\-_[\]:]+:\d+$/.test(b))) {
    throw bad(`bad Kafka address ${JSON.stringify(url)}: expected ${GRAMMAR}`);
  }
  if (topic !== '' && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
    throw bad(`bad Kafka topic ${JSON.stringify(topic)} in ${JSON.stringify(url)}: letters, digits, '.', '_' and '-'`);
  }
  const bus: KafkaBus = { brokers };
  if (topic) bus.topic = topic;
  const p = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(query)) {
    if (k === 'password') throw bad(`the Kafka password does not go in the URL (process lists and logs show it): set ${KAFKA_PASSWORD_ENV} or password-file=FILE`);
    if (!PARAMS.includes(k)) throw bad(`unknown Kafka URL parameter ${JSON.stringify(k)}: expected ${PARAMS.join(', ')}`);
    if (p.has(k)) throw bad(`Kafka URL parameter ${k} given twice`);
    p.set(k, v);
  }
  const file = (k: string): string => {
    const path = p.get(k)!;
    if (path === '') throw bad(`Kafka URL parameter ${k} needs a file`);
    try {
      return readFileSync(resolve(path), 'utf8');
    } catch (e) {
      throw bad(`cannot read the Kafka ${k} file ${path}: ${fsErrorText(e)}`);
    }
  };
  const tlsFlag = p.get('tls');
  if (tlsFlag !== undefined && !['', '1', 'true'].includes(tlsFlag)) throw bad(`Kafka URL parameter tls takes no value (or 1/true), not ${JSON.stringify(tlsFlag)}`);
  if (p.has('cert') !== p.has('key')) throw bad('a Kafka client certificate needs both cert=FILE and key=FILE');
  if (tlsScheme || tlsFlag !== undefined || p.has('ca') || p.has('cert')) {
    const ssl: { ca?: string[]; cert?: string; key?: string } = {};
    if (p.has('ca')) ssl.ca = [file('ca')];
    if (p.has('cert')) {
      ssl.cert = file('cert');
      ssl.key = file('key');
    }
    bus.ssl = Object.keys(ssl).length ? ssl : true;
  }
  if (p.has('sasl') || p.has('user') || p.has('password-file')) {
    const mechanism = (p.get('sasl') ?? 'scram-sha-512') as KafkaSaslMechanism;
    if (!MECHANISMS.includes(mechanism)) throw bad(`unknown SASL mechanism ${JSON.stringify(mechanism)}: expected ${MECHANISMS.join(', ')}`);
    if (mechanism === 'plain' && !bus.ssl) throw bad('SASL plain sends the password as it is: use it over TLS (kafkas://) or use scram-sha-512');
    const username = p.get('user');
    if (!username) throw bad(`SASL needs user=NAME in the Kafka URL`);
    let password: string;
    if (p.has('password-file')) password = file('password-file').replace(/\r?\n$/, '');
    else if (env[KAFKA_PASSWORD_ENV]) password = env[KAFKA_PASSWORD_ENV]!;
    else throw bad(`SASL user ${username} needs a password: set ${KAFKA_PASSWORD_ENV} or password-file=FILE`);
    bus.sasl = { mechanism, username, password };
  }
  return bus;
}

/** The fields of a kafkajs client's configuration that say where and how to connect. */
export function kafkaClientConfig(conn: KafkaConnection): KafkaConnection & Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'> {
  return { brokers: conn.brokers, ...(conn.ssl ? { ssl: conn.ssl } : {}), ...(conn.sasl ? { sasl: conn.sasl } : {}) } as KafkaConnection & Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;
}
