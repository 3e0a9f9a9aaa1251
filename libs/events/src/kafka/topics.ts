import type { Admin, ITopicConfig } from 'kafkajs';

/**
 * Creates the topics that are missing and waits until every partition of each has a leader.
 * Several processes may start at once: a topic another one just created ("already exists"), or
 * whose partitions are not hosted yet ("does not host this topic-partition", leader not
 * available), is waited for rather than reported. Returns each topic's partition count.
 */
export async function ensureTopics(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<Map<string, number>> {
  const have = new Set(await admin.listTopics());
  const want = topics.filter((t) => !have.has(t.topic));
  if (want.length > 0) {
    try {
      await admin.createTopics({ waitForLeaders: false, topics: want.map((t) => ({ replicationFactor: -1, ...t })) });
    } catch (err) {
      if (!/already exists/i.test(String((err as Error).message))) throw err;
    }
  }
  const out = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
      const ready = meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (ready && meta.topics.length === topics.length) {
        for (const t of meta.topics) out.set(t.name, t.partitions.length);
        return out;
      }
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`Kafka topics ${topics.map((t) => t.topic).join(', ')} have no leaders after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
