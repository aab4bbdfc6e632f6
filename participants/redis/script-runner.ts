/**
 * Runs the branch scripts by SHA (EVALSHA), so a branch sends its program, not the script.
 * Scripts are loaded once at start; a server that lost its script cache (a restart)
 * answers NOSCRIPT, and the script is loaded again and run once more.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { replyCodeOf } from "./errors.js";
import { luaScripts, type ScriptName } from "./scripts.js";

const scriptNames = Object.keys(luaScripts) as ScriptName[];

const shas = Object.fromEntries(
  scriptNames.map((name) => [name, createHash("sha1").update(luaScripts[name]).digest("hex")]),
) as Record<ScriptName, string>;

export async function loadScripts(redis: Redis): Promise<void> {
  for (const name of scriptNames) await loadScript(redis, name);
}

async function loadScript(redis: Redis, name: ScriptName): Promise<void> {
  const sha = await redis.script("LOAD", luaScripts[name]);
  if (sha !== shas[name]) {
    throw new Error(`assertion: SCRIPT LOAD of ${name} answered ${String(sha)}, not ${shas[name]}`);
  }
}

/** Runs script `name`; its reply, an array of strings, first the verdict. */
export async function runScript(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly string[],
): Promise<string[]> {
  const run = () => redis.evalsha(shas[name], keys.length, ...keys, ...args);
  let reply: unknown;
  try {
    reply = await run();
  } catch (err) {
    if (replyCodeOf(err) !== "NOSCRIPT") throw err;
    await loadScript(redis, name);
    reply = await run();
  }
  if (!isStringArray(reply) || reply.length === 0) {
    throw new Error(`assertion: script ${name} replied ${JSON.stringify(reply)}`);
  }
  return reply;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
