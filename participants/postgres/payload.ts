/**
 * What a PostgreSQL branch carries: the statements Verdict runs at prepare, or a branch the
 * service prepared itself. The shapes are the one branch-work type (shared/branch-work.ts),
 * validated by the API at enlist under the node's limits.
 */
export type {
  PostgresWork as PostgresPayload,
  SqlParam as PostgresParam,
  Statement as PostgresStatement,
} from "../../shared/branch-work.js";
