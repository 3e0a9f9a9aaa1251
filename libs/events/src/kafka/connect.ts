import type { KafkaEventStore, KafkaEventStoreOptions } from './kafka-event-store';

export type { KafkaEventStore, KafkaEventStoreOptions } from './kafka-event-store';
export { parseKafkaBus, kafkaClientConfig, KAFKA_PASSWORD_ENV, type KafkaConnection, type KafkaBus } from './kafka-url';

/** Opens the Kafka adapter; kafkajs is loaded only when a Kafka bus is actually used. */
export async function connectKafkaEventStore(opts: KafkaEventStoreOptions): Promise<KafkaEventStore> {
  const m = await import('./kafka-event-store');
  return m.KafkaEventStore.connect(opts);
}
