/**
 * The goals of the speed issue, each with the figure this run measured and whether it is
 * met: ratios against the floors of the same run (docs/bench.md). Every goal has a line: one
 * whose scenarios did not run (a part switched off or its services absent) says "not run".
 */
import type { Measured } from "./measure.js";
import { formatMs } from "./stats.js";

interface Goal {
  readonly goal: string;
  readonly target: string;
  /** The measured figure, or undefined when the scenarios it needs did not run. */
  readonly value: number | undefined;
  readonly unit: "x" | "ms" | "MB";
  /** Whether a smaller figure is better. */
  readonly atMost: boolean;
  readonly limit: number;
}

/** Scenario ids the goals read (transfer.ts): "×1" marks the one-client pass. */
export function goalTable(measured: readonly Measured[], nodePeakRssMb: number): string[][] {
  const byId = new Map(measured.map((m) => [m.scenario.id, m]));
  const ratio = (
    subject: string,
    floor: string,
    pick: (m: Measured) => number,
  ): number | undefined => {
    const s = byId.get(subject);
    const f = byId.get(floor);
    return s === undefined || f === undefined ? undefined : pick(s) / pick(f);
  };
  const tps = (m: Measured) => m.result.opsPerSecond;
  const p50 = (m: Measured) => m.result.latency.p50Ms;
  const goals: Goal[] = [];
  for (const a of ["A", "A1"]) {
    const how = a === "A" ? "step by step" : "one request";
    goals.push(
      ratioGoal(`${a}/A0 throughput, N clients (${how})`, ratio(a, "A0", tps), false, 0.85),
      ratioGoal(`${a}/A0 p50, N clients (${how})`, ratio(a, "A0", p50), true, 1.5),
      ratioGoal(`${a}/A0 p50, 1 client (${how})`, ratio(`${a}×1`, "A0×1", p50), true, 2.5),
    );
  }
  goals.push(ratioGoal("B/B0 throughput, N clients", ratio("B", "B0", tps), false, 0.85));
  for (const a of ["A", "A1"]) {
    const m = byId.get(a);
    goals.push({
      goal: `node CPU per 2-branch transfer (${a})`,
      target: "≤ 0.6 ms",
      value: m?.nodeCpuMsPerTx,
      unit: "ms",
      atMost: true,
      limit: 0.6,
    });
    goals.push({
      goal: `client CPU per transfer, SDK + bench loop (${a})`,
      target: "≤ 0.5 ms",
      value: m?.benchCpuMsPerTx,
      unit: "ms",
      atMost: true,
      limit: 0.5,
    });
  }
  goals.push(
    ratioGoal(
      "A/A0 through the 3-node etcd cluster, N clients",
      ratio("A.etcd", "A0", tps),
      false,
      0.7,
    ),
  );
  for (const m of ["M", "M1"]) {
    const how = m === "M" ? "step by step" : "one request";
    goals.push(
      ratioGoal(`mixed ${m}/M0 throughput, N clients (${how})`, ratio(m, "M0", tps), false, 0.6),
      // The throughput goal's mirror for latency: 1 / 0.6.
      ratioGoal(`mixed ${m}/M0 p50, N clients (${how})`, ratio(m, "M0", p50), true, 1 / 0.6),
    );
  }
  goals.push({
    goal: "node RSS (peak of this run, not 10,000 in flight)",
    target: "≤ 250 MB",
    value: Number.isFinite(nodePeakRssMb) ? nodePeakRssMb : undefined,
    unit: "MB",
    atMost: true,
    limit: 250,
  });
  return [["goal", "target", "measured", "met"], ...goals.map(goalRow)];
}

function ratioGoal(goal: string, value: number | undefined, atMost: boolean, limit: number): Goal {
  const target = `${atMost ? "≤" : "≥"} ${limit.toFixed(2)}x`;
  return { goal, target, value, unit: "x", atMost, limit };
}

function goalRow(g: Goal): string[] {
  if (g.value === undefined || !Number.isFinite(g.value)) {
    return [g.goal, g.target, "not run", "-"];
  }
  const shown =
    g.unit === "x"
      ? `${g.value.toFixed(2)}x`
      : g.unit === "ms"
        ? `${formatMs(g.value)} ms`
        : `${g.value.toFixed(0)} MB`;
  const met = g.atMost ? g.value <= g.limit : g.value >= g.limit;
  return [g.goal, g.target, shown, met ? "yes" : "NO"];
}
