/**
 * One etcd3 client configured for the decision log: no retries and no circuit breaker inside
 * the client (the log re-sends the SAME entry at the SAME index itself, and must see every
 * failure), a deadline on every unary call, and a reply size limit that replay pages respect.
 */
import { Etcd3, GRPCInvalidArgumentError, GRPCResourceExhastedError, type IOptions } from "etcd3";
import type { TlsMaterial } from "../../../shared/tls.js";
import { assertLog } from "../errors.js";

/** TLS and etcd's user/password authentication (docs/tls-backends.md); both optional. */
export interface EtcdSecurity {
  /** Client TLS: endpoints without a scheme use https; the server's certificate is verified. */
  readonly tls?: TlsMaterial;
  readonly auth?: { readonly username: string; readonly password: string };
}

export interface EtcdConnectionOptions {
  /** host:port or http(s)://host:port of every etcd member. */
  readonly endpoints: readonly string[];
  /** Deadline of each unary call (a black-holed member answers nothing). */
  readonly requestTimeoutMs: number;
  /** gRPC's maximum reply size (grpc-js defaults to 4 MiB); replay pages stay below it. */
  readonly replyBytesMax: number;
  /** Called once per request sent and per stream opened, with `Service.method` (metrics). */
  readonly onRequest?: (method: string) => void;
  readonly security?: EtcdSecurity;
}

export const connectionDefaults = {
  requestTimeoutMs: 2_000,
  replyBytesMax: 64 * 1024 * 1024,
} as const;

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/** Runs the call exactly once: the etcd3 default retries 3 times and breaks circuits. */
const callOnce: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

export function connectEtcd(options: EtcdConnectionOptions): Etcd3 {
  assertLog(options.endpoints.length > 0, "etcd needs at least one endpoint");
  const { tls, auth } = options.security ?? {};
  const scheme = tls === undefined ? "http" : "https";
  const deadline = (): { deadline: number } => ({
    deadline: Date.now() + options.requestTimeoutMs,
  });
  return new Etcd3({
    hosts: options.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${scheme}://${e}`)),
    ...(tls === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: tls.ca,
            ...(tls.key === undefined ? {} : { privateKey: tls.key }),
            ...(tls.cert === undefined ? {} : { certChain: tls.cert }),
          },
        }),
    ...(auth === undefined ? {} : { auth: { ...auth, callOptions: deadline } }),
    faultHandling: { global: callOnce, host: () => callOnce },
    grpcOptions: {
      "grpc.max_receive_message_length": options.replyBytesMax,
      ...(tls?.servername === undefined ? {} : { "grpc.ssl_target_name_override": tls.servername }),
    },
    // Called by etcd3 once per unary call and per stream it opens: the place to count them.
    defaultCallOptions: (context) => {
      options.onRequest?.(`${context.service}.${context.method}`);
      return context.isStream ? {} : deadline();
    },
  });
}

/** etcd's NOSPACE alarm: "etcdserver: mvcc: database space exceeded". */
export function isNoSpace(error: unknown): boolean {
  return error instanceof Error && error.message.includes("database space exceeded");
}

/**
 * A request etcd refused as malformed (over --max-request-bytes or --max-txn-ops): the log
 * checks both limits before sending, so this is a bug, never worth a retry.
 */
export function isRequestRefused(error: unknown): boolean {
  return error instanceof GRPCInvalidArgumentError;
}

/** A reply over the client's `replyBytesMax` (refused by the client; a smaller page fits). */
export function isReplyTooLarge(error: unknown): boolean {
  return error instanceof GRPCResourceExhastedError;
}

/** A read at a revision auto-compaction already discarded: re-sending it cannot succeed. */
export function isCompacted(error: unknown): boolean {
  return error instanceof Error && error.message.includes("required revision has been compacted");
}
