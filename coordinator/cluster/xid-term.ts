/**
 * In a cluster an xid names the term that began it: `<begin time><term, base 36>-<random hex>`.
 * Begin and enlist are not logged, so a transaction that never reached `preparing` dies with
 * its leader; a later call about it can then answer "aborted: leader changed" instead of a
 * presumed abort the client cannot tell from a no vote. Local xids carry no term.
 */
import { newXid, type Term, type Xid } from "../core/ids.js";

const XID_TIME_CHARS = 9;
const TERM_PART = /^([0-9a-z]{1,13})-[0-9a-f]+$/;

export function newClusterXid(nowMs: number, term: Term, randomHex: string): Xid {
  return newXid(nowMs, `${term.toString(36)}-${randomHex}`);
}

/** The term an xid was begun in, or undefined when it names none (a local xid). */
export function termOfXid(xid: string): number | undefined {
  const m = TERM_PART.exec(xid.slice(XID_TIME_CHARS));
  if (m === null) return undefined;
  const term = parseInt(m[1] ?? "", 36);
  return Number.isSafeInteger(term) ? term : undefined;
}
