// Proves, by seeded simulation of a three-node cluster over a model of etcd (sim-cluster.ts),
// that the pure engine keeps its guarantees with overlapping leaders: guarded appends that land
// or not (lost answers re-sent and decided from what is there, a lagging leader refused by the
// create-revision compare), takeovers mid-phase (replay, becomeLeader, catch up, resume),
// crashes, and a deposed leader's participant calls arriving after its successor's. The
// checkers (sim-checks.ts) run after every step: no split outcome, no overwritten entry or
// decision, no request of an ended term, none taking effect after a later term's, answers
// that agree with the log; then everything settles (G3). It also proves the checkers can
// fail: five broken variants (sim-mutants.ts, mutants.ts) are each caught.
// Run any seed range: SIM_SEEDS=<a>..<b> (or one seed, SIM_SEEDS=<n>), e.g.
//   SIM_SEEDS=5000..9999 node --import tsx --test test/unit/core/sim-cluster.property.test.ts
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { answersBeforeCatchingUp } from "./mutants.js";
import {
  ClusterSim,
  type ClusterOptions,
  type ClusterResult,
  type ClusterStats,
} from "./sim-cluster.js";
import {
  appendWithoutCreateRevisionCompare,
  loopsOutliveTheirTerm,
  tombstoneOnlyRollback,
  unfencedOnePhaseCheck,
} from "./sim-mutants.js";

const steps = 400;
const txnsMax = 12;

/** `SIM_SEEDS=a..b` (inclusive) or `SIM_SEEDS=n`; by default seeds 0..1999. */
function seedRange(text = "0..1999"): number[] {
  const m = /^(\d+)(?:\.\.(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`SIM_SEEDS must be <a>..<b> or <n>, not ${text}`);
  const first = Number(m[1]);
  const last = Number(m[2] ?? m[1]);
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}

type Variant = Omit<ClusterOptions, "seed" | "steps" | "txnsMax" | "onePhase">;

function simulate(seed: number, variant: Variant = {}): ClusterResult {
  return new ClusterSim({ seed, steps, txnsMax, onePhase: seed % 2 === 1, ...variant }).run();
}

function explain(r: ClusterResult): string {
  return [
    `seed=${r.seed}: ${r.violations.join("; ")}`,
    `replay: SIM_SEEDS=${r.seed} node --import tsx --test test/unit/core/sim-cluster.property.test.ts`,
    "last events:",
    ...r.trace,
  ].join("\n");
}

/** Runs seeds until one finds a violation; returns it, or undefined after `runsMax`. */
function hunt(variant: Variant, runsMax: number): ClusterResult | undefined {
  for (let seed = 0; seed < runsMax; seed++) {
    const r = simulate(seed, variant);
    if (r.violations.length > 0) return r;
  }
  return undefined;
}

describe("engine with overlapping leaders over a model of etcd", () => {
  test("the guarantees hold after every step", () => {
    const seeds = seedRange(process.env.SIM_SEEDS);
    const sum: ClusterStats = {
      txns: 0,
      committed: 0,
      aborted: 0,
      takeovers: 0,
      crashes: 0,
      lateCalls: 0,
      lateAfterSuccessor: 0,
      paused: 0,
      conflicts: 0,
      resends: 0,
      foundLanded: 0,
      refusedAppends: 0,
    };
    for (const seed of seeds) {
      const r = simulate(seed);
      assert.equal(r.violations.length, 0, explain(r));
      for (const k of Object.keys(sum) as (keyof ClusterStats)[]) sum[k] += r.stats[k];
    }
    // The runs must exercise what they claim to, or passing them proves nothing.
    if (seeds.length >= 100) {
      for (const k of ["committed", "aborted", "takeovers"] as const)
        assert.ok(sum[k] > seeds.length, `too few ${k}: ${JSON.stringify(sum)}`);
      const rare = [
        "lateAfterSuccessor",
        "paused",
        "conflicts",
        "foundLanded",
        "refusedAppends",
        "crashes",
      ];
      for (const k of rare as (keyof ClusterStats)[])
        assert.ok(sum[k] > seeds.length / 10, `too few ${k}: ${JSON.stringify(sum)}`);
    }
    console.log(`seeds=${seeds[0]}..${seeds.at(-1)} ${JSON.stringify(sum)}`);
  });
});

describe("the cluster checkers catch broken variants", () => {
  const runsMax = 500;
  const cases: [string, Variant, RegExp][] = [
    [
      "a new leader answering before it caught up",
      { makeEngine: answersBeforeCatchingUp },
      /^G7: /,
    ],
    [
      "a one-phase check that does not fence",
      { makeParticipant: unfencedOnePhaseCheck },
      /^(split|stale): /,
    ],
    ["a loop that outlives its term", { makeEngine: loopsOutliveTheirTerm }, /^term: /],
    [
      "an append without the create_revision = 0 compare",
      { etcd: appendWithoutCreateRevisionCompare },
      /^overwrite: /,
    ],
    [
      "a rollback that does not claim the marker key",
      { makeParticipant: tombstoneOnlyRollback },
      /^(stale|G3): /,
    ],
  ];
  for (const [name, variant, expected] of cases) {
    test(`${name} is found`, () => {
      const r = hunt(variant, runsMax);
      assert.ok(r, `no violation found in ${runsMax} runs`);
      assert.match(r.violations[0] ?? "", expected, explain(r));
      console.log(`found at seed ${r.seed}: ${r.violations[0]}`);
    });
  }
});
