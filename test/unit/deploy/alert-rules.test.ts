// Proves that the Prometheus alert rules Verdict ships (deploy/prometheus/verdict-rules.yaml,
// shown in docs/operations.md) alert on metrics that exist: every verdict_* name in an
// expression is registered by the node's own metrics (coordinator/telemetry/metrics.ts;
// histogram series by their _bucket, _sum and _count), every route and recovery action a
// selector names is one the node produces, each rule has the shape Prometheus loads (alert,
// expr, severity, summary), and the doc shows the file as it is. The check can fail: a
// misspelled metric is named.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { z } from "zod";
import { buildRoutes } from "../../../coordinator/api/contract/routes.js";
import { defaultSchemas } from "../../../coordinator/api/contract/schemas.js";
import { createMetrics } from "../../../coordinator/telemetry/metrics.js";
import { readProjectFile } from "./deploy-files.js";

const rulesPath = "deploy/prometheus/verdict-rules.yaml";

const rulesSchema = z.strictObject({
  groups: z.array(
    z.strictObject({
      name: z.string().min(1),
      rules: z.array(
        z.strictObject({
          alert: z.string().regex(/^[A-Z][A-Za-z]+$/),
          expr: z.string().min(1),
          for: z
            .string()
            .regex(/^\d+[smh]$/)
            .optional(),
          labels: z.strictObject({ severity: z.enum(["page", "ticket"]) }),
          annotations: z.strictObject({ summary: z.string().min(1) }),
        }),
      ),
    }),
  ),
});

const rules = rulesSchema.parse(parse(readProjectFile(rulesPath))).groups.flatMap((g) => g.rules);

async function registeredMetrics(): Promise<Set<string>> {
  const metrics = await createMetrics().registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const m of metrics) {
    names.add(m.name);
    // prom-client's typings declare a numeric enum; at run time it is the exposition word.
    if (String(m.type) === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(m.name + suffix);
    }
  }
  return names;
}

/** The verdict_* series an expression names that the node does not register. */
function unknownMetrics(expr: string, registered: Set<string>): string[] {
  return [...expr.matchAll(/\bverdict_[a-z_]+/g)]
    .map((m) => m[0])
    .filter((n) => !registered.has(n));
}

void describe("deploy/prometheus/verdict-rules.yaml", () => {
  void test("every verdict_* metric an alert names is registered by the node", async () => {
    const registered = await registeredMetrics();
    const verdictRules = rules.filter((r) => r.expr.includes("verdict_"));
    assert.ok(verdictRules.length >= 8, "the rules cover the node's metrics");
    for (const rule of verdictRules) {
      assert.deepEqual(unknownMetrics(rule.expr, registered), [], rule.alert);
    }
  });

  void test("the check can fail: a misspelled metric is named", async () => {
    const registered = await registeredMetrics();
    assert.deepEqual(
      unknownMetrics("rate(verdict_decision_total[5m]) + verdict_route_seconds_count", registered),
      ["verdict_decision_total"],
    );
  });

  void test("route and recovery-action selectors name values the node produces", () => {
    const routeIds = new Set(buildRoutes(defaultSchemas).map((r) => r.id));
    const actions = new Set(["committed", "rolled-back", "left", "pending"]);
    const driver = readProjectFile("coordinator/driver/driver.ts");
    for (const action of actions) assert.ok(driver.includes(`action: "${action}"`), action);
    let selectors = 0;
    for (const rule of rules) {
      for (const [, label, value] of rule.expr.matchAll(/\b(route|action)!?=~?"([^"]+)"/g)) {
        selectors++;
        const known = label === "route" ? routeIds : actions;
        assert.ok(known.has(value ?? ""), `${rule.alert}: ${label}="${value}" is never produced`);
      }
    }
    assert.ok(selectors >= 3);
  });

  void test("docs/operations.md shows the rules file as it is", () => {
    const doc = readProjectFile("docs/operations.md");
    const block = /```yaml\n(# Prometheus alert rules[\s\S]*?)```/.exec(doc)?.[1];
    assert.equal(block, readProjectFile(rulesPath));
  });
});
