/**
 * The Verdict client SDK (package `@verdict/client`). Light by design: node:http(s) with
 * kept-alive connections and node:crypto, nothing else; PostgreSQL connections are the service's own (any object with
 * `pg`'s `query`). Imports nothing from the coordinator or the participants (see
 * test/unit/client/boundaries.test.ts): the wire shapes are its own (wire.ts).
 */
export { VerdictClient, defaultRetryPolicy } from "./client.js";
export type { OutcomeOptions, RetryPolicy, VerdictClientOptions } from "./client.js";
export type { ClientTls } from "./http.js";
export {
  kafkaMessages,
  message,
  pgServicePrepared,
  pgStatements,
  redis,
  redisOps,
  sql,
} from "./branches.js";
export { runServicePrepared } from "./postgres.js";
export { lostWithLeader, runTransaction } from "./restart.js";
export type { RunTransactionOptions } from "./restart.js";
export { prepareServiceBranch } from "./service-branch.js";
export type { PgCommandResult, PgSession, ServiceBranchOptions } from "./service-branch.js";
export {
  OutcomeUnknownError,
  ServiceBranchPrepareError,
  TransactionAbortedError,
  VerdictError,
} from "./errors.js";
export type { ClientErrorCode, VerdictErrorInit } from "./errors.js";
export type {
  AbortReason,
  AbortReasonCode,
  BeginRequest,
  BranchState,
  BranchView,
  EnlistRequest,
  EnlistResponse,
  ErrorCode,
  KafkaBranch,
  KafkaMessage,
  ParticipantKind,
  PgServicePreparedBranch,
  PgStatementsBranch,
  RedisBranch,
  RedisOp,
  RedisPrecondition,
  SqlParam,
  Statement,
  TransactionState,
  TransactionView,
} from "./wire.js";
