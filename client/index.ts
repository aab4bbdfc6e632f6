/** The Verdict client SDK. Light by design: global fetch and node:crypto, nothing else. */
export { VerdictClient, defaultRetryPolicy } from "./client.js";
export type { RetryPolicy, VerdictClientOptions } from "./client.js";
export {
  kafkaMessages,
  message,
  pgServicePrepared,
  pgStatements,
  redis,
  redisOps,
  sql,
} from "./branches.js";
export { OutcomeUnknownError, TransactionAbortedError, VerdictError } from "./errors.js";
export type { ClientErrorCode, VerdictErrorInit } from "./errors.js";
export type { ErrorCode } from "../coordinator/api/contract/errors.js";
export type {
  AbortReason,
  BeginRequest,
  BranchView,
  EnlistRequest,
  EnlistResponse,
  KafkaBranch,
  KafkaMessage,
  PgServicePreparedBranch,
  PgStatementsBranch,
  RedisBranch,
  RedisOp,
  RedisPrecondition,
  SqlParam,
  Statement,
  TransactionState,
  TransactionView,
} from "../coordinator/api/contract/schemas.js";
