/**
 * Every abort is attributed to the principal that asked for it: an admin aborting a client's
 * transaction through the client route is named in the decision's reason (the admin view's
 * history and the transaction's `reason.message`), and so is a client aborting its own.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { adminView, raw, startApiNode, type ApiNode } from "./harness.js";

let node: ApiNode;

const begun = async (): Promise<string> => {
  const answer = await raw(node.url, "POST", "/v1/transactions", {
    token: node.clientToken,
    body: {},
  });
  assert.equal(answer.status, 201, answer.text);
  return (answer.body as { xid: string }).xid;
};

const abort = async (xid: string, token: string): Promise<void> => {
  const answer = await raw(node.url, "POST", `/v1/transactions/${xid}/abort`, { token });
  assert.equal(answer.status, 200, answer.text);
};

/** The detail of the decision entry in the admin view's history. */
const decisionDetail = async (xid: string): Promise<string> => {
  const view = await adminView(node, xid);
  const decision = view?.history.find((h) => h.entry === "decision");
  assert.ok(decision, `no decision in the history of ${xid}`);
  return decision.detail ?? "";
};

describe("attribution of aborts", () => {
  before(async () => {
    node = await startApiNode();
  });
  after(async () => node?.stop());

  test("an admin's abort through the client route names the admin", async () => {
    const xid = await begun();
    await abort(xid, node.adminToken);
    assert.match(await decisionDetail(xid), /aborted by admin admin\b/);
    const view = await raw(node.url, "GET", `/v1/transactions/${xid}`, { token: node.clientToken });
    const reason = (view.body as { reason?: { code: string; message: string } }).reason;
    assert.equal(reason?.code, "client-abort");
    assert.match(reason.message, /admin admin/);
  });

  test("a client's own abort names the client", async () => {
    const xid = await begun();
    await abort(xid, node.clientToken);
    assert.match(await decisionDetail(xid), /aborted by client client-a\b/);
  });
});
