// Proves that docker-compose.yml is a valid Compose file as far as this machine (no Docker
// engine) can tell: it validates against the Compose specification's JSON schema, the one the
// compose tool itself embeds, vendored in deploy/docker/compose-spec.json from the Go module
// github.com/compose-spec/compose-go/v2 v2.16.2, file schema/compose-spec.json (Apache-2.0),
// checked here by its SHA-256 so it cannot change unnoticed; the validation can fail (a
// misspelled key, a wrong type). Every image is pinned to a release or built from this
// repository, and every service but the coordinator nodes (whose image has a HEALTHCHECK) has
// a health check. Nothing is fetched at test time.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import {
  parseCompose,
  parseComposeDocument,
  pinnedImage,
  readProjectFile,
} from "./deploy-files.js";

const schemaPath = "deploy/docker/compose-spec.json";
const schemaSha256 = "f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff";

/**
 * The schema compiled as compose-go compiles it: draft 2020-12, with its one custom format
 * (`duration`, a Go duration such as `1m30s`). Not strict: the schema uses annotations
 * (`deprecated`) and patterns Ajv's strict mode would only warn about.
 */
function compileSchema() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  return ajv.compile(JSON.parse(readProjectFile(schemaPath)) as object);
}

function composeDocument(): Record<string, unknown> & { services: Record<string, object> } {
  return parseComposeDocument(readProjectFile("docker-compose.yml")) as Record<string, unknown> & {
    services: Record<string, object>;
  };
}

void describe("docker-compose.yml against the Compose specification", () => {
  const validate = compileSchema();

  void test("the vendored schema is compose-go v2.16.2's, unchanged", () => {
    const sha256 = createHash("sha256").update(readProjectFile(schemaPath)).digest("hex");
    assert.equal(sha256, schemaSha256);
  });

  void test("validates against the schema", () => {
    const valid = validate(composeDocument());
    assert.ok(valid, JSON.stringify(validate.errors, null, 2));
  });

  void test("the validation can fail: a misspelled key, a wrong type", () => {
    const misspelled = composeDocument();
    misspelled.services.redis = { ...misspelled.services.redis, healthcheck: { intervall: "5s" } };
    assert.equal(validate(misspelled), false);
    assert.match(JSON.stringify(validate.errors), /intervall/);

    const wrongType = composeDocument();
    wrongType.services.postgres = { ...wrongType.services.postgres, ports: "5432" };
    assert.equal(validate(wrongType), false);
    assert.match(JSON.stringify(validate.errors), /\/services\/postgres\/ports/);
  });

  void test("every image is pinned to a release, or built here from a pinned base", () => {
    const compose = parseCompose(readProjectFile("docker-compose.yml"));
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.build !== undefined) continue; // deploy/docker/Dockerfile: compose.test.ts checks its FROM lines
      assert.ok(svc.image !== undefined, `${name} names no image`);
      assert.match(svc.image, pinnedImage, `${name}: ${svc.image} is not pinned to a release`);
    }
    assert.doesNotMatch("postgres:15-bookworm", pinnedImage, "a major line is not a pin");
    assert.doesNotMatch("redis:latest", pinnedImage);
  });

  void test("every service has a health check (the nodes' comes from their image)", () => {
    const compose = parseCompose(readProjectFile("docker-compose.yml"));
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.build !== undefined) continue;
      assert.ok((svc.healthcheck?.test?.length ?? 0) > 0, `${name} has no health check`);
    }
  });
});
