/**
 * Shared set-up for the PostgreSQL participant tests: a unique marker schema, cluster id
 * and table per test file, direct (non-participant) connections to read the truth, and a
 * cleanup that leaves no prepared transaction behind.
 */
import net from "node:net";
import pg from "pg";
import type { BranchId } from "../../../participants/participant.js";
import {
  createPostgresParticipant,
  type PostgresParticipant,
} from "../../../participants/postgres/participant.js";
import type { PostgresParticipantConfigInput } from "../../../participants/postgres/config.js";
import { branchIds, madeParticipants, suffix } from "../../support/participant-helpers.js";
import { services } from "../../support/services.js";

export { suffix };

export interface Fixture {
  readonly run: string;
  /** Contains `_` and `%` on purpose: recovery must match it exactly, never as a pattern. */
  readonly clusterId: string;
  readonly schema: string;
  readonly table: string;
  readonly url: string;
  readonly direct: pg.Pool;
  readonly participants: PostgresParticipant[];
  branchId(): BranchId;
  participant(overrides?: Partial<PostgresParticipantConfigInput>): PostgresParticipant;
  started(overrides?: Partial<PostgresParticipantConfigInput>): Promise<PostgresParticipant>;
  balance(id: number): Promise<number | undefined>;
  preparedGids(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function createFixture(url: string = services.pgUrlA): Promise<Fixture> {
  const run = suffix();
  const clusterId = `t_%${run}`;
  const schema = `verdict_t_${run}`;
  const table = `accounts_${run}`;
  const direct = new pg.Pool({ connectionString: url, max: 4 });
  await direct.query(`create table ${table} (id int primary key, balance int not null)`);
  await direct.query(`insert into ${table} values (1, 100), (2, 200)`);
  const made = madeParticipants(
    clusterId,
    (overrides: Partial<PostgresParticipantConfigInput> = {}) =>
      createPostgresParticipant({
        name: `pg-test-${run}`,
        connectionString: url,
        schema,
        poolSize: 4,
        inFlightMax: 10,
        ...overrides,
      }),
  );
  const fixture: Fixture = {
    run,
    clusterId,
    schema,
    table,
    url,
    direct,
    participants: made.made,
    branchId: branchIds(clusterId, run),
    participant: made.participant,
    started: made.started,
    async balance(id) {
      const { rows } = await direct.query<{ balance: number }>(
        `select balance from ${table} where id = $1`,
        [id],
      );
      return rows[0]?.balance;
    },
    async preparedGids() {
      const { rows } = await direct.query<{ gid: string }>(
        "select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, $1)",
        [`${clusterId}:`],
      );
      return rows.map((r) => r.gid);
    },
    async cleanup() {
      await made.closeAll();
      for (const gid of await fixture.preparedGids()) {
        await direct.query(`rollback prepared '${gid.replaceAll("'", "''")}'`);
      }
      await direct.query(`drop schema if exists ${schema} cascade`);
      await direct.query(`drop table if exists ${table}`);
      await direct.end();
    },
  };
  return fixture;
}

/** Prepares an empty transaction with `gid` on a direct connection (a foreign or service branch). */
export async function prepareRaw(url: string, gid: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("begin");
    await client.query(`prepare transaction '${gid.replaceAll("'", "''")}'`);
  } finally {
    await client.end();
  }
}

/**
 * A TCP proxy to the real server that the test can cut, to make the participant's server
 * disappear under it (a port with nothing listening once closed).
 */
export async function startProxy(
  targetPort: number,
  /** Each answer from the server is held this long (in order): every round trip costs it. */
  answerDelayMs = 0,
): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => sockets.delete(s));
    }
    inbound.pipe(outbound);
    if (answerDelayMs === 0) outbound.pipe(inbound);
    else {
      outbound.on("data", (chunk: Buffer) => {
        setTimeout(() => inbound.write(chunk), answerDelayMs);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    port: address.port,
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

export const deadlineIn = (ms: number): { deadlineMs: number } => ({ deadlineMs: Date.now() + ms });
export const term = { term: 1, decidedAtMs: 0 };
