/**
 * The bench's accounts: `bench_accounts(id, balance)` in both databases, recreated per run,
 * and the checks made on them afterwards (money conserved, nothing left prepared).
 */
import pg from "pg";

export const accountsTable = "bench_accounts";
/** Prefix of the gids the direct (no coordinator) scenarios prepare with. */
export const directGidPrefix = "verdict-bench-";

const queryTimeoutMs = 30_000;

export async function connect(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString,
    query_timeout: queryTimeoutMs,
    connectionTimeoutMillis: 5_000,
  });
  await client.connect();
  return client;
}

/** Runs `work` on a fresh connection to `url`, and closes it. */
export async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Rolls back prepared transactions that a crashed earlier bench run left behind (they hold
 * row locks on the accounts table, so it could not be dropped). Answers how many.
 */
export async function rollBackStaleDirect(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const gids = await preparedGidsOn(c, directGidPrefix);
    for (const gid of gids) await c.query(`rollback prepared ${literal(gid)}`);
    return gids.length;
  });
}

export async function createAccounts(
  url: string,
  accounts: number,
  balanceStart: number,
): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`drop table if exists ${accountsTable}`);
    await c.query(`create table ${accountsTable} (id int primary key, balance bigint not null)`);
    await c.query(
      `insert into ${accountsTable} (id, balance) select g, $2 from generate_series(1, $1) g`,
      [accounts, balanceStart],
    );
    await c.query(`analyze ${accountsTable}`);
  });
}

export async function totalBalance(url: string): Promise<bigint> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ total: string }>(
      `select coalesce(sum(balance), 0)::text as total from ${accountsTable}`,
    );
    return BigInt(rows[0]?.total ?? "0");
  });
}

/** Gids of prepared transactions in `url`'s database that start with `prefix`. */
export async function preparedWithPrefix(url: string, prefix: string): Promise<string[]> {
  return withClient(url, (c) => preparedGidsOn(c, prefix));
}

async function preparedGidsOn(c: pg.Client, prefix: string): Promise<string[]> {
  const { rows } = await c.query<{ gid: string }>(
    "select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, $1)",
    [prefix],
  );
  return rows.map((r) => r.gid);
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new RangeError(`bad schema name ${schema}`);
  await withClient(url, (c) => c.query(`drop schema if exists ${schema} cascade`));
}

/** A gid as an SQL string literal (utility statements take no parameters). */
export function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** A uniformly random account id in 1..accounts. */
export function randomAccount(accounts: number): number {
  return 1 + Math.floor(Math.random() * accounts);
}

/** Two distinct random account ids, lower first (so that two updates never deadlock). */
export function randomPair(accounts: number): readonly [number, number] {
  const a = randomAccount(accounts);
  let b = randomAccount(accounts - 1);
  if (b >= a) b++;
  return a < b ? [a, b] : [b, a];
}

/** A transfer amount: 1..100. */
export function randomAmount(): number {
  return 1 + Math.floor(Math.random() * 100);
}
