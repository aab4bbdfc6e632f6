/**
 * Names of the PostgreSQL participant's own tables in one schema of a branch database
 * (default `verdict`). Shared by the participant, which creates and reads them
 * (participants/postgres/schema.ts says what each holds), and by the SDK, whose
 * service-prepared branches insert their marker: both must name the same tables.
 */

/** An unquoted identifier we accept for the schema name (quoted anyway when used). */
export const schemaNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

export interface SchemaTables {
  readonly schema: string;
  readonly marker: string;
  readonly tombstone: string;
  readonly cluster: string;
  /** Verdict's record of the transaction id that prepared each branch (verifies markers). */
  readonly branchXact: string;
  /** The marker function, `"schema".mark` (SECURITY DEFINER; branches call it). */
  readonly mark: string;
  /** Its signature, for GRANT and to_regprocedure. */
  readonly markSignature: string;
}

export function schemaTables(schema: string): SchemaTables {
  if (!schemaNamePattern.test(schema))
    throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  const q = `"${schema}"`;
  return {
    schema: q,
    marker: `${q}.marker`,
    tombstone: `${q}.tombstone`,
    cluster: `${q}.cluster`,
    branchXact: `${q}.branch_xact`,
    mark: `${q}.mark`,
    markSignature: `${q}.mark(text)`,
  };
}
