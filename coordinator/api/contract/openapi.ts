/**
 * Builds the OpenAPI 3.1 document from the route table and the schemas, with
 * `z.toJSONSchema`, so what is published is exactly what the routes validate.
 * Request schemas are rendered as input (what a caller sends, defaults optional),
 * response schemas as output (what the server promises).
 */
import { z } from "zod";
import type { ErrorCode } from "./errors.js";
import { errorCatalogue } from "./errors.js";
import type { RouteSpec } from "./routes.js";
import { headerNames } from "./routes.js";
import type { Schemas } from "./schemas.js";

type JsonSchema = Record<string, unknown>;

export interface OpenApiDocument {
  readonly openapi: "3.1.0";
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly servers: readonly { readonly url: string }[];
  readonly paths: Record<string, Record<string, JsonSchema>>;
  readonly components: {
    readonly schemas: Record<string, JsonSchema>;
    readonly securitySchemes: Record<string, JsonSchema>;
    readonly parameters: Record<string, JsonSchema>;
  };
}

export interface OpenApiOptions {
  readonly version: string;
  readonly serverUrls?: readonly string[];
}

/** Named request-side schemas, beyond the bodies themselves: shown as components. */
const requestComponents = [
  "pgStatementsBranch",
  "pgServicePreparedBranch",
  "redisBranch",
  "kafkaBranch",
  "statement",
  "redisOp",
  "redisPrecondition",
  "kafkaMessage",
] as const satisfies readonly (keyof Schemas)[];
/** Named response-side schemas, beyond the responses themselves. */
const responseComponents = [
  "errorBody",
  "transactionAbortedBody",
  "branchView",
  "abortReason",
  "adminBranchView",
  "historyEntry",
] as const satisfies readonly (keyof Schemas)[];

const schemaRef = (name: string) => `#/components/schemas/${name}`;
const pascal = (key: string) => key.charAt(0).toUpperCase() + key.slice(1);

export function buildOpenApiDocument(
  schemas: Schemas,
  routes: readonly RouteSpec[],
  options: OpenApiOptions,
): OpenApiDocument {
  const names = new Map<unknown, string>();
  for (const [key, value] of Object.entries(schemas)) {
    if (value instanceof z.ZodType && !names.has(value)) names.set(value, pascal(key));
  }
  const nameOf = (schema: z.ZodType, where: string): string => {
    const name = names.get(schema);
    if (name === undefined) throw new Error(`${where}: schema is not one of the named schemas`);
    return name;
  };

  const requests = new Set<z.ZodType>(requestComponents.map((k) => schemas[k]));
  const responses = new Set<z.ZodType>(responseComponents.map((k) => schemas[k]));
  for (const route of routes) {
    if (route.body) requests.add(route.body);
    for (const schema of Object.values(route.responses)) responses.add(schema);
  }
  const componentSchemas = {
    ...renderComponents(requests, "input", nameOf),
    ...renderComponents(responses, "output", nameOf),
  };

  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const operations = (paths[route.path] ??= {});
    operations[route.method.toLowerCase()] = renderOperation(route, nameOf);
  }

  return {
    openapi: "3.1.0",
    info: { title: "Verdict", version: options.version, description: describeErrors() },
    servers: (options.serverUrls ?? ["/"]).map((url) => ({ url })),
    paths,
    components: {
      schemas: componentSchemas,
      securitySchemes: {
        clientToken: {
          type: "http",
          scheme: "bearer",
          description: "A client token: drives the transactions it began.",
        },
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "An admin token: the admin API, and any client transaction.",
        },
      },
      parameters: {
        IdempotencyKey: {
          name: headerNames.idempotencyKey,
          in: "header",
          required: false,
          description:
            "A repeat of the call with the same key answers the first answer and changes nothing " +
            "more; the same key with a different request answers 409 idempotency-key-reused.",
          schema: jsonSchema(schemas.idempotencyKey, "input"),
        },
        Traceparent: {
          name: headerNames.traceparent,
          in: "header",
          required: false,
          description: "W3C trace context; the node continues the trace.",
          schema: jsonSchema(schemas.traceparent, "input"),
        },
      },
    },
  };
}

function renderComponents(
  set: ReadonlySet<z.ZodType>,
  io: "input" | "output",
  nameOf: (schema: z.ZodType, where: string) => string,
): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const schema of set) registry.add(schema, { id: nameOf(schema, "component") });
  const rendered = z.toJSONSchema(registry, { io, uri: schemaRef }).schemas;
  const out: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(rendered)) out[name] = stripRoot(schema);
  return out;
}

function renderOperation(
  route: RouteSpec,
  nameOf: (schema: z.ZodType, where: string) => string,
): JsonSchema {
  const parameters: JsonSchema[] = [
    ...objectParameters(route.params, "path"),
    ...objectParameters(route.query, "query"),
    { $ref: "#/components/parameters/Traceparent" },
  ];
  if (route.idempotent) parameters.push({ $ref: "#/components/parameters/IdempotencyKey" });

  const responses: Record<string, JsonSchema> = {};
  const links = linksOf(route.id);
  for (const [status, schema] of Object.entries(route.responses)) {
    const ref = { $ref: schemaRef(nameOf(schema, route.id)) };
    responses[status] = {
      description: schema.description ?? nameOf(schema, route.id),
      ...(links ? { links } : {}),
      content: route.stream
        ? { "text/event-stream": { schema: eventSchema(route.stream.event, ref) } }
        : { "application/json": { schema: ref } },
    };
  }
  for (const [status, codes] of errorsByStatus(route.errors)) {
    const errorRef = { $ref: schemaRef("ErrorBody") };
    const schema = codes.includes("transaction-aborted")
      ? { anyOf: [errorRef, { $ref: schemaRef("TransactionAbortedBody") }] }
      : errorRef;
    responses[String(status)] = {
      description: codes.map((c) => `\`${c}\`: ${errorCatalogue[c].when}`).join("\n\n"),
      "x-error-codes": codes,
      ...(status === 429 ? { headers: { "Retry-After": retryAfterHeader } } : {}),
      content: { "application/json": { schema } },
    };
  }

  return {
    operationId: route.id,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.auth],
    security: securityOf(route.auth),
    parameters,
    ...(route.body
      ? {
          requestBody: {
            // The server reads a missing body as `{}`: a body `{}` satisfies need not be sent.
            required: !route.body.safeParse({}).success,
            content: {
              "application/json": { schema: { $ref: schemaRef(nameOf(route.body, route.id)) } },
            },
          },
        }
      : {}),
    responses,
  };
}

/**
 * The transaction's life as OpenAPI links: what a caller may do next with the xid a success
 * answered (begin's body carries it; the calls on a transaction have it in their path). Tools
 * that follow links (a stateful fuzzer, a client generator) chain the calls with them.
 */
const transactionLinks: Readonly<Record<string, readonly string[]>> = {
  beginTransaction: [
    "enlistBranch",
    "prepareTransaction",
    "commitTransaction",
    "abortTransaction",
    "getTransaction",
  ],
  enlistBranch: [
    "reportBranchPrepared",
    "prepareTransaction",
    "commitTransaction",
    "abortTransaction",
    "getTransaction",
  ],
  reportBranchPrepared: ["prepareTransaction", "getTransaction"],
  prepareTransaction: ["commitTransaction", "abortTransaction", "getTransaction"],
  // A decided transaction's stream ends once it finishes (a stream on a live one would hold a
  // stateful fuzzer until its deadline: begin and enlist do not link to it).
  commitTransaction: ["getTransaction", "watchTransaction"],
  abortTransaction: ["getTransaction", "watchTransaction"],
};

/**
 * One event of a stream, as OpenAPI 3.1 describes an event-stream item: its name and its data,
 * a JSON text of the `data` schema (tools that read streams, e.g. Schemathesis, check each).
 */
function eventSchema(event: string, data: JsonSchema): JsonSchema {
  return {
    type: "object",
    required: ["event", "data"],
    properties: {
      event: { const: event },
      data: { type: "string", contentMediaType: "application/json", contentSchema: data },
    },
  };
}

function linksOf(routeId: string): JsonSchema | undefined {
  const targets = transactionLinks[routeId];
  if (!targets) return undefined;
  // begin answers the xid it created; every other call has it in its path already.
  const xid = routeId === "beginTransaction" ? "$response.body#/xid" : "$request.path.xid";
  const links: JsonSchema = {};
  for (const target of targets) {
    const parameters: Record<string, string> = { xid };
    // The branch enlist created (or added work to) is the one its report names.
    if (target === "reportBranchPrepared") parameters.n = "$response.body#/branch";
    links[target] = { operationId: target, parameters };
  }
  return links;
}

function securityOf(auth: RouteSpec["auth"]): JsonSchema[] {
  switch (auth) {
    case "admin":
      return [{ adminToken: [] }];
    case "client":
      return [{ clientToken: [] }, { adminToken: [] }];
    case "public":
      return [];
  }
}

/** One OpenAPI parameter per property of a params or query object schema. */
function objectParameters(schema: z.ZodType | undefined, where: "path" | "query"): JsonSchema[] {
  if (!schema) return [];
  const rendered = jsonSchema(schema, "input");
  const properties = (rendered.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((rendered.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === "path" || required.has(name),
    schema: property,
  }));
}

/** Every 429 carries it (the server sets it in one place, `sendError`). */
const retryAfterHeader: JsonSchema = {
  description: "Seconds to wait before repeating the request.",
  required: true,
  schema: { type: "integer", minimum: 1 },
};

function errorsByStatus(codes: readonly ErrorCode[]): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = errorCatalogue[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  return stripRoot(z.toJSONSchema(schema, { io }));
}

/** `$schema` and `$id` belong to a standalone document, not to an OpenAPI component. */
function stripRoot(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

function describeErrors(): string {
  const rows = Object.entries(errorCatalogue).map(
    ([code, e]) => `| \`${code}\` | ${e.status} | ${e.retryable ? "yes" : "no"} | ${e.when} |`,
  );
  return [
    "Two-phase-commit transaction coordinator. Every error answers",
    '`{"error": {"code", "message", "retryable", "details"?}}`.',
    "",
    "| code | status | retry can help | when |",
    "| --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}
