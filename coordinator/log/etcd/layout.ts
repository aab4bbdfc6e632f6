/**
 * Where the replicated decision log lives in etcd (docs/etcd.md, "Layout"):
 *
 *   /verdict/<clusterId>/meta                  cluster id + format version, created once
 *   /verdict/<clusterId>/leader                election key on the leader's lease; term = its create revision
 *   /verdict/<clusterId>/nodes/<nodeId>        each node's URL and role, on the node's own lease
 *   /verdict/<clusterId>/handover              an operator's handover target, on a short lease
 *   /verdict/<clusterId>/log/<firstIndex>      one append batch, the index zero-padded to 20 digits
 *   /verdict/<clusterId>/snapshot              pointer {index, term, chunks, hash}
 *   /verdict/<clusterId>/snapshot/<index>/<k>  the snapshot's chunks
 * Zero-padding makes etcd's byte order the index order, so a Range returns the log in order.
 */
import { assertLog } from "../errors.js";

const INDEX_DIGITS = 20;
const CLUSTER_ID = /^[A-Za-z0-9._-]{1,64}$/;

export class EtcdLayout {
  readonly prefix: string;

  constructor(readonly clusterId: string) {
    assertLog(CLUSTER_ID.test(clusterId), `cluster id '${clusterId}' is not [A-Za-z0-9._-]{1,64}`);
    this.prefix = `/verdict/${clusterId}/`;
  }

  get meta(): Buffer {
    return Buffer.from(`${this.prefix}meta`);
  }

  get leader(): Buffer {
    return Buffer.from(`${this.prefix}leader`);
  }

  get handover(): Buffer {
    return Buffer.from(`${this.prefix}handover`);
  }

  node(nodeId: string): Buffer {
    return Buffer.from(`${this.prefix}nodes/${nodeId}`);
  }

  get nodesPrefix(): Buffer {
    return Buffer.from(`${this.prefix}nodes/`);
  }

  logKey(firstIndex: number): Buffer {
    return Buffer.from(`${this.prefix}log/${padIndex(firstIndex)}`);
  }

  get logPrefix(): Buffer {
    return Buffer.from(`${this.prefix}log/`);
  }

  /** The index a log key names (the first index of its batch). */
  indexOfLogKey(key: Buffer): number {
    const text = key.toString();
    const digits = text.slice(`${this.prefix}log/`.length);
    assertLog(
      text.startsWith(`${this.prefix}log/`) && digits.length === INDEX_DIGITS,
      `not a log key: ${text}`,
    );
    return Number(digits);
  }

  get snapshotPointer(): Buffer {
    return Buffer.from(`${this.prefix}snapshot`);
  }

  snapshotChunksPrefix(index: number): Buffer {
    return Buffer.from(`${this.prefix}snapshot/${padIndex(index)}/`);
  }

  snapshotChunk(index: number, chunk: number): Buffer {
    return Buffer.from(`${this.prefix}snapshot/${padIndex(index)}/${padIndex(chunk)}`);
  }

  get snapshotChunksRoot(): Buffer {
    return Buffer.from(`${this.prefix}snapshot/`);
  }
}

function padIndex(index: number): string {
  assertLog(Number.isSafeInteger(index) && index >= 0, `bad index ${index}`);
  return String(index).padStart(INDEX_DIGITS, "0");
}

/** The range_end that makes a Range (or DeleteRange) cover every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  const last = end.length - 1;
  assertLog(last >= 0 && end[last] !== 0xff, "prefix must end below 0xff");
  end[last] = (end[last] ?? 0) + 1;
  return end;
}
