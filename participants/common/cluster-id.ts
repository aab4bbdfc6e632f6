/**
 * Cluster ids as every participant accepts them at `start`: 1–64 printable ASCII
 * characters without backslash or colon, since the colon separates a branch id's parts
 * (`<clusterId>:<xid>:<n>`) and recovery matches `<clusterId>:` as an exact prefix.
 */

const clusterIdPattern = /^[\x21-\x39\x3b-\x5b\x5d-\x7e]{1,64}$/;

/** Why `clusterId` is refused, or undefined if it is a valid cluster id. */
export function clusterIdProblem(clusterId: string): string | undefined {
  return clusterIdPattern.test(clusterId)
    ? undefined
    : `cluster id ${JSON.stringify(clusterId)}: 1–64 printable ASCII characters without backslash or colon`;
}
