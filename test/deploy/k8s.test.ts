// Proves that the Kubernetes manifests in deploy/k8s are valid Kubernetes and keep their
// promises, with no cluster and no schema download: the Go validator (deploy/k8s/validate,
// k8s.io/api types pinned in its go.mod) decodes every file and the kustomize-rendered output
// strictly into the API types, and checks the rendered set (3 coordinator replicas probed on
// /readyz and /livez, a disruption budget, anti-affinity, requests and limits, no service
// account token, non-root with a read-only root filesystem, the API and console Services, a
// 3-member etcd StatefulSet, network policies, credentials only by Secret reference, pinned
// images). The validator can fail: an unknown field, a broken promise, a Secret written into
// the manifests and a listed file that does not exist are each refused, naming the problem.
// The node config (deploy/k8s/verdict.yaml, the generated ConfigMap) passes Verdict's own loader
// with a pod's environment, and every variable it reads is set by the Deployment, credentials
// from the Secret.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../../coordinator/config/load.js";
import { projectDir } from "../unit/deploy/deploy-files.js";

const manifests = join(projectDir, "deploy/k8s");
let validator: string;
let scratch: string;

before(async () => {
  // The first build on a machine downloads the modules and compiles (about a minute).
  const built = spawnSync(join(manifests, "validate/build.sh"), {
    encoding: "utf8",
    timeout: 360_000,
  });
  assert.equal(built.status, 0, `build.sh failed:\n${built.stderr}`);
  validator = built.stdout.trim();
  scratch = await mkdtemp(join(tmpdir(), "verdict-k8s-"));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function validate(path: string): { status: number | null; output: string } {
  const r = spawnSync(validator, [path], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A copy of deploy/k8s (without the validator's sources) with one file changed. */
async function variant(name: string, file: string, edit: (text: string) => string) {
  const dir = join(scratch, name);
  await cp(manifests, dir, { recursive: true, filter: (src) => !src.includes("/validate") });
  const text = await readFile(join(dir, file), "utf8");
  const edited = edit(text);
  assert.notEqual(edited, text, `the edit of ${file} changed nothing`);
  await writeFile(join(dir, file), edited);
  return dir;
}

void describe("deploy/k8s", () => {
  void test("decodes strictly, renders with kustomize and keeps its promises", () => {
    const r = validate(manifests);
    assert.equal(r.status, 0, r.output);
    for (const object of [
      "Deployment/verdict",
      "StatefulSet/etcd",
      "Service/verdict-api",
      "Service/verdict-console",
      "Service/etcd-peer",
      "PodDisruptionBudget/verdict",
      "NetworkPolicy/verdict",
      "NetworkPolicy/etcd",
      "ServiceAccount/verdict",
    ]) {
      assert.match(r.output, new RegExp(`[\\[ ]${object}[ \\]]`), `${object} is rendered`);
    }
    assert.match(r.output, /ConfigMap\/verdict-config-[a-z0-9]+/, "the config, hash-named");
  });

  void test("an unknown field is refused, naming it", async () => {
    const dir = await variant("unknown-field", "verdict-deployment.yaml", (text) =>
      text.replace("  replicas: 3\n", "  replicas: 3\n  replica: 3\n"),
    );
    const r = validate(dir);
    assert.equal(r.status, 1, r.output);
    assert.match(
      r.output,
      /verdict-deployment\.yaml.*Deployment "verdict".*unknown field "replica"/,
    );
    const single = validate(join(dir, "verdict-deployment.yaml"));
    assert.equal(single.status, 1, "a file alone is decoded strictly too");
    assert.match(single.output, /unknown field "replica"/);
  });

  void test("a broken promise is refused, naming the object", async () => {
    const dir = await variant("broken", "verdict-deployment.yaml", (text) =>
      text
        .replace("  replicas: 3\n", "  replicas: 1\n")
        .replace("path: /livez", "path: /healthz")
        .replace(/readOnlyRootFilesystem: true/, "readOnlyRootFilesystem: false")
        .replace("      automountServiceAccountToken: false\n", ""),
    );
    const r = validate(dir);
    assert.equal(r.status, 1, r.output);
    assert.match(r.output, /Deployment\/verdict: replicas must be 3/);
    assert.match(r.output, /livenessProbe: must be an HTTP GET of \/livez/);
    assert.match(r.output, /container verdict: readOnlyRootFilesystem must be true/);
    assert.match(r.output, /Deployment\/verdict: automountServiceAccountToken must be false/);
  });

  void test("a Secret written into the manifests, or a literal credential, is refused", async () => {
    const dir = await variant("secret", "kustomization.yaml", (text) =>
      text.replace(
        "configMapGenerator:",
        "secretGenerator:\n  - name: verdict-credentials\n    literals: [client-token=abc]\nconfigMapGenerator:",
      ),
    );
    await writeFile(
      join(dir, "verdict-deployment.yaml"),
      (await readFile(join(dir, "verdict-deployment.yaml"), "utf8")).replace(
        /- name: VERDICT_ADMIN_TOKEN\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: verdict-credentials\n\s+key: admin-token/,
        "- name: VERDICT_ADMIN_TOKEN\n              value: not-a-secret-at-all",
      ),
    );
    const r = validate(dir);
    assert.equal(r.status, 1, r.output);
    assert.match(r.output, /Secret\/verdict-credentials-\w+: credentials are referenced/);
    assert.match(r.output, /VERDICT_ADMIN_TOKEN looks like a credential/);
  });

  void test("a file the kustomization lists but that does not exist is refused", async () => {
    const dir = await variant("missing", "kustomization.yaml", (text) =>
      text.replace("  - etcd-pdb.yaml\n", "  - etcd-pdb.yaml\n  - etcd-backup.yaml\n"),
    );
    const r = validate(dir);
    assert.equal(r.status, 1, r.output);
    assert.match(r.output, /kustomization\.yaml lists etcd-backup\.yaml/);
  });

  void test("the node config passes Verdict's loader with a pod's environment", async () => {
    const env = {
      VERDICT_NODE_ID: "verdict-7d9c5b8f6-x2x9q",
      VERDICT_POD_IP: "10.1.2.3",
      VERDICT_CLIENT_TOKEN: randomBytes(24).toString("base64url"),
      VERDICT_ADMIN_TOKEN: randomBytes(24).toString("base64url"),
      VERDICT_PG_PASSWORD: randomBytes(24).toString("base64url"),
      VERDICT_PG_STMT_PASSWORD: randomBytes(24).toString("base64url"),
    };
    const config = await loadConfig(join(manifests, "verdict.yaml"), env);
    assert.equal(config.profile, "production");
    assert.equal(config.node.id, env.VERDICT_NODE_ID);
    assert.equal(config.node.advertiseUrl, `http://10.1.2.3:${config.node.port}`);
    assert.equal(config.log.kind, "etcd");
    assert.deepEqual(
      config.log.endpoints,
      [0, 1, 2].map((n) => `etcd-${n}.etcd-peer:2379`),
    );
  });

  void test("every variable the node config reads is set by the Deployment", async () => {
    const config = await readFile(join(manifests, "verdict.yaml"), "utf8");
    const deployment = parseAllDocuments(
      await readFile(join(manifests, "verdict-deployment.yaml"), "utf8"),
    )[0]?.toJS() as {
      spec: { template: { spec: { containers: { env: EnvVar[] }[] } } };
    };
    const env = new Map(
      deployment.spec.template.spec.containers[0]?.env.map((v) => [v.name, v] as const),
    );
    const referenced = new Set([...config.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1]));
    const tokens = (parse(config) as { tokens: { secretEnv: string }[] }).tokens;
    for (const t of tokens) referenced.add(t.secretEnv);
    assert.ok(referenced.size >= 5);
    for (const name of referenced) {
      const variable = env.get(name ?? "");
      assert.ok(variable !== undefined, `the Deployment does not set ${name}`);
      if (/TOKEN|PASSWORD/.test(name ?? "")) {
        assert.equal(variable.valueFrom?.secretKeyRef?.name, "verdict-credentials", name);
      }
    }
  });
});

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
