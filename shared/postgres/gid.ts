/**
 * Global transaction ids (gids) as SQL literals. `PREPARE TRANSACTION`, `COMMIT PREPARED`
 * and `ROLLBACK PREPARED` are utility statements and take no `$1`, so the gid is written
 * into the SQL text: it must be validated and escaped here, and only here. Shared by the
 * PostgreSQL participant and the SDK (a service prepares its own branch with the gid).
 */

/** PostgreSQL's GIDSIZE is 200 bytes including the terminating NUL. */
export const gidBytesMax = 199;

/**
 * Printable ASCII without backslash: with a backslash the literal's meaning would depend
 * on `standard_conforming_strings`; non-ASCII bytes would make the byte limit depend on
 * the client encoding.
 */
const gidPattern = /^[\x20-\x5b\x5d-\x7e]+$/;

/** Why `gid` cannot be used, or undefined if it can. */
export function gidProblem(gid: string): string | undefined {
  if (!gidPattern.test(gid)) return "a gid is printable ASCII without backslash, and not empty";
  if (gid.length > gidBytesMax) return `a gid is at most ${gidBytesMax} bytes, got ${gid.length}`;
  return undefined;
}

/**
 * The gid as a quoted SQL string literal. Throws on an invalid gid: branch ids are built
 * by the coordinator from a validated cluster id, so a bad one is a broken invariant.
 */
export function gidLiteral(gid: string): string {
  const problem = gidProblem(gid);
  if (problem !== undefined) throw new Error(`invalid gid ${JSON.stringify(gid)}: ${problem}`);
  return `'${gid.replaceAll("'", "''")}'`;
}

/** The prefix every gid of `clusterId` starts with; recovery matches it exactly. */
export function clusterGidPrefix(clusterId: string): string {
  return `${clusterId}:`;
}
