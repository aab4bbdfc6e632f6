/**
 * Sizes that must fit each other, checked when the configuration loads (docs/etcd.md, "Limits"):
 * a `preparing` record carries every branch's payload, and in etcd mode one append batch is one
 * etcd value, which etcd's request limit caps. A payload limit that does not fit would let
 * enlist accept work that commit could never log; checked here, enlist answers 413 instead.
 */
import { etcdLogDefaults } from "../log/etcd/etcd-decision-log.js";

const KiB = 1024;
/** Room for a `preparing` record's own fields beside its payloads. */
const RECORD_OVERHEAD_BYTES = 64 * KiB;

/**
 * The largest encoded record a transaction can make: JSON may escape a payload's characters
 * (a quote or backslash doubles), hence twice the payload bytes, plus the record's fields.
 */
export function recordBytesMax(payloadBytesPerTxnMax: number): number {
  return payloadBytesPerTxnMax * 2 + RECORD_OVERHEAD_BYTES;
}

/** The largest payload limit whose records fit one etcd append batch. */
export const ETCD_PAYLOAD_BYTES_MAX = Math.floor(
  (etcdLogDefaults.batchBytesMax - RECORD_OVERHEAD_BYTES) / 2,
);

interface LogSettings {
  readonly kind: "local" | "etcd";
  readonly endpoints?: readonly string[] | undefined;
  readonly clusterId?: string | undefined;
  readonly leaseTtlMs: number;
  readonly demotionMarginMs: number;
}

/** What is wrong with the `log` section together with the payload limit; empty when nothing. */
export function logConfigProblems(log: LogSettings, payloadBytesPerTxnMax: number): string[] {
  if (log.kind === "local") {
    return log.endpoints !== undefined || log.clusterId !== undefined
      ? ["log.endpoints and log.clusterId apply only with log.kind: etcd"]
      : [];
  }
  const problems: string[] = [];
  if (log.endpoints === undefined) problems.push("log.kind etcd needs log.endpoints");
  if (log.clusterId === undefined) problems.push("log.kind etcd needs log.clusterId");
  if (log.leaseTtlMs % 1000 !== 0) {
    problems.push(`log.leaseTtlMs ${log.leaseTtlMs}: etcd counts whole seconds`);
  }
  if (log.demotionMarginMs * 2 >= log.leaseTtlMs) {
    problems.push("log.demotionMarginMs must be under half of log.leaseTtlMs");
  }
  if (payloadBytesPerTxnMax > ETCD_PAYLOAD_BYTES_MAX) {
    problems.push(
      `limits.payloadBytesPerTransactionMax ${payloadBytesPerTxnMax}: with log.kind etcd at most ` +
        `${ETCD_PAYLOAD_BYTES_MAX} (a transaction's record must fit one etcd request, ` +
        `${etcdLogDefaults.batchBytesMax} bytes with its encoding)`,
    );
  }
  return problems;
}
