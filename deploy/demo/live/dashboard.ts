/**
 * The live demo's terminal dashboard: plain ANSI (home, clear, bold, colours), one frame per
 * second, rendered from a snapshot so that the frame is a pure function of what was measured.
 */
import type { ClusterView } from "./nodes.js";
import type { WorkloadStats } from "./workload.js";

export interface Frame {
  readonly title: string;
  readonly stats: WorkloadStats;
  readonly view: ClusterView;
  readonly nodeIds: readonly string[];
  readonly inDoubt: number | undefined;
  readonly failovers: number;
  readonly moneyTotal: number | undefined;
  readonly moneyExpected: number;
  readonly kafkaEvents: number | undefined;
  readonly events: readonly string[];
  readonly keys: string;
  /** ANSI colours and bold (a terminal), or plain text (a log). */
  readonly color: boolean;
}

export const clearScreen = "\x1b[H\x1b[2J";

/** SGR codes: bold 1, dim 2, red 31, green 32, yellow 33. */
function painter(color: boolean) {
  const sgr = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: sgr(1), dim: sgr(2), red: sgr(31), green: sgr(32), yellow: sgr(33) };
}

const ms = (v: number | undefined) => (v === undefined ? "-" : `${Math.round(v)} ms`);
const num = (v: number | undefined) => (v === undefined ? "-" : v.toLocaleString("en-US"));

function roleText(role: string, paint: ReturnType<typeof painter>): string {
  if (role === "leader") return paint.green(paint.bold(role.padEnd(9)));
  if (role === "standby") return role.padEnd(9);
  return paint.red(role.padEnd(9));
}

/** The frame's lines, without the screen-clearing prefix. */
export function renderFrame(f: Frame): string[] {
  const { bold, dim, red, green, yellow } = painter(f.color);
  const rule = dim("─".repeat(78));
  const s = f.stats;
  const money =
    f.moneyTotal === f.moneyExpected
      ? green(`${num(f.moneyTotal)} = ${num(f.moneyExpected)}`)
      : yellow(`${num(f.moneyTotal)} (settles to ${num(f.moneyExpected)})`);
  const events =
    f.kafkaEvents === s.committed
      ? green(`${num(f.kafkaEvents)} = committed ${num(s.committed)}`)
      : yellow(
          `${num(f.kafkaEvents)} vs committed ${num(s.committed)} (+${num(s.unknown)} unknown)`,
        );
  const nodes = f.nodeIds
    .map((id) => `${id} ${roleText(f.view.roles.get(id) ?? "?", painter(f.color))}`)
    .join("  ");
  return [
    bold(f.title),
    rule,
    `transfers/s ${bold(String(s.perSecond).padStart(5))}    p50 ${ms(s.p50Ms).padStart(8)}    p99 ${ms(s.p99Ms).padStart(8)}`,
    `committed ${num(s.committed).padStart(8)}   aborted ${num(s.aborted).padStart(6)}   outcome unknown ${num(s.unknown).padStart(4)}   in doubt ${num(f.inDoubt)}`,
    `leader ${bold(f.view.leaderId ?? red("none"))}   term ${num(f.view.term)}   failovers ${bold(String(f.failovers))}`,
    `  ${nodes}`,
    `money ${money}    Kafka events ${events}`,
    rule,
    ...f.events.slice(-6).map((e) => dim(e)),
    rule,
    f.keys,
  ];
}
