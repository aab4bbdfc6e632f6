/**
 * The small JSON values of the layout (layout.ts): meta, leader, nodes/<id>, the snapshot
 * pointer. Each carries a format version so a rolling upgrade can read the previous one.
 */
import { z } from "zod";
import { EtcdFormatError } from "./errors.js";

export const VALUE_FORMAT_VERSION = 1;

const meta = z.object({ version: z.literal(1), clusterId: z.string() });
const leader = z.object({ version: z.literal(1), nodeId: z.string(), url: z.string() });
const node = z.object({
  version: z.literal(1),
  nodeId: z.string(),
  url: z.string(),
  role: z.enum(["leader", "standby"]),
});
/** An operator's handover to a named node: the others do not campaign while it lasts. */
const handover = z.object({ version: z.literal(1), toNodeId: z.string(), fromTerm: z.number() });
const pointer = z.object({
  version: z.literal(1),
  index: z.number().int().positive(),
  term: z.number().int().nonnegative(),
  chunks: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export type MetaValue = z.infer<typeof meta>;
export type LeaderValue = z.infer<typeof leader>;
export type NodeValue = z.infer<typeof node>;
export type SnapshotPointer = z.infer<typeof pointer>;
export type HandoverValue = z.infer<typeof handover>;

export const schemas = { meta, leader, node, pointer, handover } as const;

export function encodeValue<T>(value: T): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Parses a value; a damaged one or an unknown version is an EtcdFormatError (never a guess). */
export function decodeValue<T>(schema: z.ZodType<T>, key: Buffer, bytes: Buffer): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new EtcdFormatError(key.toString(), "not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new EtcdFormatError(key.toString(), parsed.error.message);
  return parsed.data;
}
