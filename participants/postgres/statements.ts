/**
 * The refusal rule for coordinator-executed statements. Each statement is sent alone over
 * the extended protocol, where the server rejects a string holding several commands
 * (42601), so the leading keyword decides what the statement is. We refuse, before
 * sending, every keyword that could end or split the branch's transaction, change the
 * pooled session beyond the transaction, or hang the protocol:
 *
 * - transaction control: BEGIN START COMMIT END ROLLBACK ABORT SAVEPOINT RELEASE PREPARE
 * - session state: SET (except SET LOCAL and SET TRANSACTION, which end with the
 *   transaction), RESET, DISCARD, EXECUTE, DEALLOCATE, LOAD
 * - notification and copy: LISTEN NOTIFY UNLISTEN COPY
 * - commands that cannot run in a transaction block anyway: VACUUM CHECKPOINT
 *   REINDEX CLUSTER (refused early, with a clearer reason)
 *
 * Anything else that cannot be prepared (temporary tables, WITH HOLD cursors) fails at
 * PREPARE TRANSACTION and votes no; session-level side effects reachable through
 * functions (advisory locks, set_config(…, false)) are undone by DISCARD ALL before the
 * connection returns to the pool.
 */

const refusedKeywords = new Set([
  "begin",
  "start",
  "commit",
  "end",
  "rollback",
  "abort",
  "savepoint",
  "release",
  "prepare",
  "reset",
  "discard",
  "execute",
  "deallocate",
  "load",
  "listen",
  "notify",
  "unlisten",
  "copy",
  "vacuum",
  "checkpoint",
  "reindex",
  "cluster",
]);

/** SET forms whose effect ends with the transaction. */
const transactionScopedSet = new Set(["local", "transaction"]);

/** Words of `sql` after stripping leading whitespace and comments; at most `count`. */
export function leadingWords(sql: string, count: number): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < sql.length && words.length < count) {
    const ch = sql[i]!;
    if (/\s/.test(ch)) {
      i += 1;
    } else if (sql.startsWith("--", i)) {
      const end = sql.indexOf("\n", i);
      i = end === -1 ? sql.length : end + 1;
    } else if (sql.startsWith("/*", i)) {
      i = skipBlockComment(sql, i);
    } else {
      const match = /^[A-Za-z_]+/.exec(sql.slice(i, i + 64));
      if (match === null) break; // a symbol or quote: no further keyword to read
      words.push(match[0].toLowerCase());
      i += match[0].length;
    }
  }
  return words;
}

/** Index just after the block comment that opens at `start`; block comments nest in SQL. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith("/*", i)) {
      depth += 1;
      i += 2;
    } else if (sql.startsWith("*/", i)) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return sql.length; // unterminated: nothing follows
}

/** Why `sql` is refused, or undefined if it may run inside a branch. */
export function statementRefusal(sql: string): string | undefined {
  const [first, second] = leadingWords(sql, 2);
  if (first === undefined) return "empty statement";
  if (first === "set") {
    return second !== undefined && transactionScopedSet.has(second)
      ? undefined
      : "SET outlives the transaction; use SET LOCAL";
  }
  if (refusedKeywords.has(first)) {
    return `${first.toUpperCase()} is transaction-control, session or utility SQL, refused in a branch`;
  }
  return undefined;
}
