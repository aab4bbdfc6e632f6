/**
 * The demo's data, made idempotently before the demo node starts (start.sh): the table
 * `accounts` in verdict_a and verdict_b, accounts 1 to 10 (1,000 each, only when absent, so
 * money moved by hand stays moved across restarts), and the Kafka topic `demo-events` (the
 * broker does not create topics on its own).
 *
 *   npx tsx deploy/demo/setup.ts
 */
import { databases, ensureAccounts, ensureTopic, kafkaClient, pgPool } from "./services.js";

const demoAccountIds = Array.from({ length: 10 }, (_, i) => i + 1);
const demoBalance = 1_000;
const demoTopic = "demo-events";
const demoTopicPartitions = 3;

async function main(): Promise<void> {
  for (const db of databases) {
    const pool = pgPool(db);
    try {
      await ensureAccounts(pool, demoAccountIds, demoBalance, false);
    } finally {
      await pool.end();
    }
  }
  const admin = kafkaClient("demo-setup").admin();
  await admin.connect();
  try {
    await ensureTopic(admin, demoTopic, demoTopicPartitions);
  } finally {
    await admin.disconnect();
  }
  console.log(
    `[demo] accounts 1-10 in ${databases.join(" and ")} (table accounts), Kafka topic ${demoTopic}: ready`,
  );
}

main().catch((err: unknown) => {
  console.error(`[demo] set-up failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
