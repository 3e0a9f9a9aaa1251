import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaClientConfig, parseKafkaBus, KAFKA_PASSWORD_ENV } from './kafka-url';

describe('the Kafka bus URL', () => {
  let dir: string;
  let ca: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-kafka-url-'));
    ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
    writeFileSync(join(dir, 'client.pem'), 'CERT');
    writeFileSync(join(dir, 'client.key'), 'KEY');
    writeFileSync(join(dir, 'password'), 's3cret\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('without parameters', () => {
    it('gives the brokers and the topic, and no TLS or SASL', () => {
      assert.deepEqual(parseKafkaBus('kafka://127.0.0.1:9092,127.0.0.2:9093', {}), { brokers: ['127.0.0.1:9092', '127.0.0.2:9093'] });
      assert.deepEqual(parseKafkaBus('kafka://b1:9092/capulator.audit', {}), { brokers: ['b1:9092'], topic: 'capulator.audit' });
      assert.deepEqual(kafkaClientConfig(parseKafkaBus('kafka://b1:9092', {})), { brokers: ['b1:9092'] });
    });
  });

  describe('with TLS', () => {
    it('kafkas:// and ?tls trust the system CAs; ?ca trusts a PEM file; ?cert&key add a client certificate', () => {
      assert.equal(parseKafkaBus('kafkas://b1:9093', {}).ssl, true);
      assert.equal(parseKafkaBus('kafka://b1:9093?tls', {}).ssl, true);
      assert.deepEqual(parseKafkaBus(`kafka://b1:9093/t?ca=${encodeURIComponent(ca)}`, {}), { brokers: ['b1:9093'], topic: 't', ssl: { ca: [`-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n`] } });
      const mtls = parseKafkaBus(`kafkas://b1:9093?cert=${join(dir, 'client.pem')}&key=${join(dir, 'client.key')}`, {});
      assert.deepEqual(mtls.ssl, { cert: 'CERT', key: 'KEY' });
    });
  });

  describe('with SASL', () => {
    it('takes the user from the URL and the password from the environment or a file', () => {
      const env = { [KAFKA_PASSWORD_ENV]: 'from-env' };
      assert.deepEqual(parseKafkaBus('kafka://b1:9092?sasl=scram-sha-256&user=capulator', env).sasl, { mechanism: 'scram-sha-256', username: 'capulator', password: 'from-env' });
      // SCRAM-SHA-512 unless named; a password file's trailing newline is not part of the password
      assert.deepEqual(parseKafkaBus(`kafka://b1:9092?user=capulator&password-file=${join(dir, 'password')}`, env).sasl, { mechanism: 'scram-sha-512', username: 'capulator', password: 's3cret' });
      assert.deepEqual(kafkaClientConfig(parseKafkaBus('kafkas://b1:9093?sasl=plain&user=u', env)), { brokers: ['b1:9093'], ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'from-env' } });
    });
  });

  describe('when the URL is wrong', () => {
    const refused: Array<[string, RegExp, NodeJS.ProcessEnv?]> = [
      ['kafka://', /bad Kafka address/],
      ['kafka://host-without-port', /bad Kafka address/],
      ['kafka://b1:9092/bad topic', /bad Kafka topic/],
      ['kafka://b1:9092?password=hunter2&user=u', /does not go in the URL .*CAPULATOR_KAFKA_PASSWORD/],
      ['kafka://b1:9092?sals=scram-sha-512', /unknown Kafka URL parameter "sals"/],
      ['kafka://b1:9092?user=a&user=b', /given twice/],
      ['kafka://b1:9092?sasl=gssapi&user=u', /unknown SASL mechanism "gssapi"/, { [KAFKA_PASSWORD_ENV]: 'x' }],
      ['kafka://b1:9092?sasl=scram-sha-512', /SASL needs user=NAME/],
      ['kafka://b1:9092?user=u', /SASL user u needs a password/],
      ['kafka://b1:9092?sasl=plain&user=u', /plain sends the password as it is/, { [KAFKA_PASSWORD_ENV]: 'x' }],
      ['kafka://b1:9092?ca=/nonexistent/ca.pem', /cannot read the Kafka ca file \/nonexistent\/ca\.pem: no such file or directory/],
      ['kafka://b1:9092?ca=', /ca needs a file/],
      ['kafkas://b1:9092?cert=/x.pem', /needs both cert=FILE and key=FILE/],
      ['kafka://b1:9092?tls=no', /tls takes no value/],
    ];
    for (const [url, why, env] of refused) {
      it(`refuses ${url} and says why`, () => {
        assert.throws(() => parseKafkaBus(url, env ?? {}), (e: Error) => why.test(e.message));
      });
    }
    it('never puts the password in its message', () => {
      assert.throws(() => parseKafkaBus('kafka://b1:9092?password=hunter2', {}), (e: Error) => !e.message.includes('hunter2'));
    });
  });
});
