/**
 * Proves that the leader lease's renewals move off a dead etcd member well within the TTL
 * (docs/etcd.md, "Leadership"): on a private 3-member etcd, with a 3 s lease and a 0.5 s
 * demotion margin (the cluster tests' settings), the member the renewals use is made etcd's
 * Raft leader and SIGKILLed right after a renewal was acknowledged (the worst moment: etcd
 * must elect a new leader, and the next renewal goes to the dead member), five times over;
 * in the even rounds its address also black-holes (a crashed host answers nothing at all).
 * The Verdict leader never steps down and keeps its term; its renewals move to a live member.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";
import { connectEtcd, connectionDefaults } from "../../../coordinator/log/etcd/client.js";
import { EtcdLayout } from "../../../coordinator/log/etcd/layout.js";
import { Leadership } from "../../../coordinator/log/etcd/leadership.js";
import { PrivateEtcd } from "../../cluster/private-etcd.js";
import { FaultProxy } from "./fault-proxy.js";

const rounds = 5;
const leaseTtlSeconds = 3;

void describe("lease renewals across a killed etcd member", () => {
  let etcd: PrivateEtcd;
  const proxies: FaultProxy[] = [];
  const clients: Etcd3[] = [];
  const connect = (endpoints: string[]) => {
    const client = connectEtcd({ endpoints, ...connectionDefaults });
    clients.push(client);
    return client;
  };

  before(async () => {
    etcd = await PrivateEtcd.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of proxies) await p.close();
    await etcd.close();
  });

  /** Makes member n (1..3) etcd's Raft leader. */
  async function makeLeader(n: number): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await etcd.leader().catch(() => undefined);
      if (current === n) return;
      if (current !== undefined) {
        const target = await connect([etcd.endpoint(n)]).maintenance.status();
        await connect([etcd.endpoint(current)])
          .maintenance.moveLeader({ targetID: target.header.member_id })
          .catch(() => undefined);
      }
      await sleep(250);
    }
    assert.fail(`member ${n} never became etcd's leader`);
  }

  test(`the member the renewals use is killed ${rounds} times at TTL ${leaseTtlSeconds} s: no step-down`, async () => {
    // Through TCP proxies, as the cluster tests' nodes reach etcd: a dead member's proxy
    // still accepts connections, then drops them.
    for (const e of etcd.endpoints) proxies.push(await FaultProxy.start(Number(e.split(":")[1])));
    const endpoints = proxies.map((p) => p.endpoint);
    const leadership = new Leadership({
      client: connect(endpoints),
      keepaliveClients: endpoints.map((e) => connect([e])),
      layout: new EtcdLayout(`keepalive-${process.pid}`),
      nodeId: "n1",
      url: "http://n1.test",
      leaseTtlSeconds,
      demotionMarginMs: 500,
      requestTimeoutMs: connectionDefaults.requestTimeoutMs,
    });
    const lost: string[] = [];
    leadership.on({ lostLeadership: (term, reason) => lost.push(`${term}:${reason}`) });
    const term = await leadership.campaign();
    assert.ok(term !== undefined);
    try {
      for (let round = 1; round <= rounds; round++) {
        const victim = leadership.keepaliveMember + 1;
        await makeLeader(victim);
        // Kill just after an acknowledged renewal: the next one is due in TTL/3, to the victim.
        const deadline = leadership.demotionDeadlineMs;
        while (leadership.demotionDeadlineMs === deadline) await sleep(5);
        const blackHoled = round % 2 === 0;
        if (blackHoled) proxies[victim - 1]!.cut();
        await etcd.signal(victim, "SIGKILL");
        await sleep(2 * leaseTtlSeconds * 1000);
        assert.deepEqual(lost, [], `round ${round}: the leader stepped down`);
        assert.equal(leadership.term, term, `round ${round}: the term changed`);
        assert.notEqual(leadership.keepaliveMember + 1, victim, "renewals left the dead member");
        if (blackHoled) proxies[victim - 1]!.heal();
        await etcd.restart(victim);
      }
    } finally {
      await leadership.resign();
    }
  });
});
