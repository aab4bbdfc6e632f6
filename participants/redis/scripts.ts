/**
 * The Lua scripts of the branch protocol. Each runs atomically on the server, so a check
 * and the writes it guards can never interleave with another branch. Redis scripts do not
 * roll back: every script checks everything first, then writes, and nothing written after
 * the checks can fail (the commit script re-checks the staged operations against the keys
 * as they are now, because plain clients are not excluded by Verdict's locks).
 *
 * Every script: KEYS = [branch record, outcome record, prepared index];
 * ARGV[1] = the namespace prefix `<namespace>:` (lock keys and the scratch key derive
 * from it), ARGV[2] = the branch id. Replies are arrays of strings, first the verdict.
 *
 * What the operation check covers, per key and in order, starting from the key's type and
 * value now and following the branch's earlier operations:
 * - INCRBY: the key is missing or a string holding a 64-bit integer, and the sum does not
 *   overflow (checked exactly, by running INCRBY on a scratch key inside the script);
 * - HSET/HDEL, SADD/SREM, LPUSH/RPUSH: the key is missing or holds a hash, set, list;
 * - SET and DEL always apply.
 * Conservative on purpose: an HDEL or SREM that might empty (and so delete) a key is
 * assumed to leave it, so a later operation needing another type is refused.
 */

const prelude = `
local prefix = ARGV[1]
local branchId = ARGV[2]
local scratch = prefix .. 'scratch'
-- unpack() is bounded by Lua's C stack (about 8000 values): multi-value commands go in chunks.
local chunkMax = 1000

local function lockKey(k) return prefix .. 'lock:' .. k end

local function keysOf(program)
  local seen, keys = {}, {}
  local function add(k)
    if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
  end
  for _, p in ipairs(program.pre) do add(p.k) end
  for _, o in ipairs(program.ops) do add(o.k) end
  return keys
end

-- The first key locked by another branch: {key, holder}, or nil.
local function lockConflict(keys)
  for _, k in ipairs(keys) do
    local holder = redis.call('GET', lockKey(k))
    if holder and holder ~= branchId then return { k, holder } end
  end
  return nil
end

-- The first precondition that does not hold now: {index, key, kind, why}, or nil.
local function failedPrecondition(pre)
  for i, p in ipairs(pre) do
    local t = redis.call('TYPE', p.k).ok
    local why = nil
    if p.c == 'absent' then
      if t ~= 'none' then why = 'the key exists' end
    elseif t == 'none' then
      why = 'the key does not exist'
    elseif p.c == 'equals' then
      if t ~= 'string' then
        why = 'the key holds a ' .. t .. ', not a string'
      elseif redis.call('GET', p.k) ~= p.v then
        why = 'the value differs'
      end
    elseif p.c ~= 'exists' then
      error('verdict: unknown precondition ' .. tostring(p.c))
    end
    if why then return { tostring(i), p.k, p.c, why } end
  end
  return nil
end

local containerType = { hset = 'hash', hdel = 'hash', sadd = 'set', srem = 'set', lpush = 'list', rpush = 'list' }

-- The first operation that would fail if the operations were applied now: {index, key, why}, or nil.
local function invalidOp(ops)
  local sim = {}
  local usedScratch = false
  local problem = nil
  for i, o in ipairs(ops) do
    local s = sim[o.k]
    if s == nil then
      s = { t = redis.call('TYPE', o.k).ok }
      sim[o.k] = s
    end
    if o.o == 'set' then
      s.t = 'string'; s.v = o.v
    elseif o.o == 'del' then
      s.t = 'none'; s.v = nil
    elseif o.o == 'incrby' then
      if s.t ~= 'none' and s.t ~= 'string' then
        problem = { tostring(i), o.k, 'INCRBY on a key holding a ' .. s.t }
        break
      end
      local current = s.v
      if s.t == 'none' then current = '0' elseif current == nil then current = redis.call('GET', o.k) end
      if #current > 20 then
        problem = { tostring(i), o.k, 'INCRBY on a value that is not an integer' }
        break
      end
      usedScratch = true
      redis.call('SET', scratch, current)
      local r = redis.pcall('INCRBY', scratch, o.by)
      if type(r) == 'table' and r.err then
        problem = { tostring(i), o.k, 'INCRBY ' .. o.by .. ': ' .. r.err }
        break
      end
      s.t = 'string'; s.v = redis.call('GET', scratch)
    else
      local want = containerType[o.o]
      if want == nil then error('verdict: unknown staged operation ' .. tostring(o.o)) end
      if s.t ~= 'none' and s.t ~= want then
        problem = { tostring(i), o.k, string.upper(o.o) .. ' on a key holding a ' .. s.t }
        break
      end
      -- HDEL and SREM on a missing key change nothing; the others create it.
      if o.o ~= 'hdel' and o.o ~= 'srem' then s.t = want end
      s.v = nil
    end
  end
  if usedScratch then redis.call('DEL', scratch) end
  return problem
end

-- Why the branch cannot be staged (or committed in one phase) now: {'no', reason, key, detail}, or nil.
local function phase1Refusal(program)
  local conflict = lockConflict(keysOf(program))
  if conflict then
    return { 'no', 'lock-conflict', conflict[1], 'locked by branch ' .. conflict[2] }
  end
  local failed = failedPrecondition(program.pre)
  if failed then
    return { 'no', 'precondition-failed', failed[2], 'precondition ' .. failed[1] .. ' (' .. failed[3] .. '): ' .. failed[4] }
  end
  local invalid = invalidOp(program.ops)
  if invalid then
    return { 'no', 'operation-invalid', invalid[2], 'operation ' .. invalid[1] .. ': ' .. invalid[3] }
  end
  return nil
end

local function apply(ops)
  for _, o in ipairs(ops) do
    if o.o == 'set' then
      if o.px then redis.call('SET', o.k, o.v, 'PX', o.px) else redis.call('SET', o.k, o.v) end
    elseif o.o == 'del' then
      redis.call('DEL', o.k)
    elseif o.o == 'incrby' then
      redis.call('INCRBY', o.k, o.by)
    elseif o.o == 'hset' then
      redis.call('HSET', o.k, o.f, o.v)
    elseif o.o == 'hdel' then
      redis.call('HDEL', o.k, o.f)
    else
      local command, vs = string.upper(o.o), o.vs
      for first = 1, #vs, chunkMax do
        redis.call(command, o.k, unpack(vs, first, math.min(first + chunkMax - 1, #vs)))
      end
    end
  end
end

local function releaseLocks(keys)
  for _, k in ipairs(keys) do
    local lk = lockKey(k)
    if redis.call('GET', lk) == branchId then redis.call('DEL', lk) end
  end
end

-- Unstages the branch: locks, record, index entry.
local function unstage(program)
  releaseLocks(keysOf(program))
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], branchId)
end

local function recordOutcome(outcome, prepared, term, decidedAtMs, atMs)
  redis.call('HSET', KEYS[2], 'outcome', outcome, 'prepared', prepared, 'term', term,
    'decidedAtMs', decidedAtMs, 'atMs', atMs)
end

-- Refuses past the deadline (epoch ms) on the server's own clock, whatever the caller's
-- clock said: a branch is only ever staged or applied before it (docs/architecture.md
-- §7.4). Redis 7 replicates a script's effects, not the script, so reading TIME is allowed.
local function pastDeadline(deadlineMs)
  local t = redis.call('TIME')
  local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if nowMs > tonumber(deadlineMs) then
    return { 'no', 'deadline', '', 'the deadline ' .. deadlineMs .. ' passed on the server clock (TIME ' .. nowMs .. ' ms)' }
  end
  return nil
end

local function outcomeSummary()
  local r = redis.call('HMGET', KEYS[2], 'prepared', 'term', 'atMs')
  return 'prepared ' .. tostring(r[1]) .. ', decision term ' .. tostring(r[2]) .. ', recorded at ' .. tostring(r[3]) .. ' ms'
end
`;

/**
 * ARGV[3] = staged program (JSON), ARGV[4] = now (epoch ms), ARGV[5] = inFlightMax,
 * ARGV[6] = the deadline (epoch ms). Replies `{'yes'}` or `{'no', reason, key, detail}`.
 */
const prepare = `${prelude}
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome == 'rolled-back' then
  return { 'no', 'rolled-back', '', 'the branch was rolled back (' .. outcomeSummary() .. ')' }
end
-- Already staged, or already committed: a repeated prepare votes yes without redoing it.
if outcome == 'committed' or redis.call('EXISTS', KEYS[1]) == 1 then return { 'yes' } end
local late = pastDeadline(ARGV[6])
if late then return late end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  return { 'no', 'in-flight-limit', '', ARGV[5] .. ' branches are staged already (inFlightMax)' }
end
local program = cjson.decode(ARGV[3])
local refusal = phase1Refusal(program)
if refusal then return refusal end
for _, k in ipairs(keysOf(program)) do redis.call('SET', lockKey(k), branchId) end
redis.call('HSET', KEYS[1], 'program', ARGV[3], 'preparedAtMs', ARGV[4])
redis.call('SADD', KEYS[3], branchId)
return { 'yes' }
`;

/**
 * ARGV[3] = decision term, ARGV[4] = decidedAtMs, ARGV[5] = now (epoch ms).
 * Replies `{'done'}`, `{'already-done'}`, `{'heuristic-rollback', '', detail}` or
 * `{'blocked', key, detail}` (nothing applied).
 */
const commit = `${prelude}
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome == 'committed' then return { 'already-done' } end
if outcome == 'rolled-back' then
  return { 'heuristic-rollback', '', 'the branch was rolled back outside this decision (' .. outcomeSummary() .. ')' }
end
local staged = redis.call('HGET', KEYS[1], 'program')
if not staged then
  return { 'heuristic-rollback', '', 'no staged operations and no outcome record: the branch was never prepared here, or its keys were lost (failover, AOF loss) or deleted' }
end
local program = cjson.decode(staged)
local invalid = invalidOp(program.ops)
if invalid then
  return { 'blocked', invalid[2], 'operation ' .. invalid[1] .. ': ' .. invalid[3] }
end
apply(program.ops)
unstage(program)
recordOutcome('committed', '1', ARGV[3], ARGV[4], ARGV[5])
return { 'done' }
`;

/**
 * ARGV[3] = decision term, ARGV[4] = decidedAtMs, ARGV[5] = now (epoch ms).
 * Replies `{'done'}`, `{'already-done'}` or `{'heuristic-commit', '', detail}`. A branch
 * never staged gets its tombstone (an outcome record `rolled-back`, prepared 0).
 */
const rollback = `${prelude}
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome == 'rolled-back' then return { 'already-done' } end
if outcome == 'committed' then
  return { 'heuristic-commit', '', 'the branch was committed outside this decision (' .. outcomeSummary() .. ')' }
end
local staged = redis.call('HGET', KEYS[1], 'program')
local prepared = '0'
if staged then
  unstage(cjson.decode(staged))
  prepared = '1'
end
recordOutcome('rolled-back', prepared, ARGV[3], ARGV[4], ARGV[5])
return { 'done' }
`;

/**
 * Prepare and commit in one step, without locks or staging. ARGV[3] = staged program
 * (JSON), ARGV[4] = now (epoch ms), ARGV[5] = the deadline (epoch ms). Replies
 * `{'committed'}` or `{'no', reason, key, detail}`.
 */
const commitOnePhase = `${prelude}
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome == 'committed' then return { 'committed' } end
if outcome == 'rolled-back' then
  return { 'no', 'rolled-back', '', 'the branch was rolled back (' .. outcomeSummary() .. ')' }
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return { 'no', 'already-prepared', '', 'the branch is staged (prepared); finish it in two phases' }
end
local late = pastDeadline(ARGV[5])
if late then return late end
local program = cjson.decode(ARGV[3])
local refusal = phase1Refusal(program)
if refusal then return refusal end
apply(program.ops)
recordOutcome('committed', '0', '0', ARGV[4], ARGV[4])
return { 'committed' }
`;

/**
 * ARGV[3] = now (epoch ms). Replies `{'committed'}`, `{'staged'}` (prepared in two phases,
 * nothing settled) or `{'not-committed'}`. Answering not-committed it leaves a tombstone,
 * so a one-phase commit sent earlier (by a crashed or deposed coordinator) that reaches
 * the server later can no longer apply: the answer stays true.
 */
const isCommitted = `${prelude}
local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome == 'committed' then return { 'committed' } end
if redis.call('EXISTS', KEYS[1]) == 1 then return { 'staged' } end
if outcome ~= 'rolled-back' then recordOutcome('rolled-back', '0', '0', ARGV[3], ARGV[3]) end
return { 'not-committed' }
`;

export const luaScripts = { prepare, commit, rollback, commitOnePhase, isCommitted } as const;
export type ScriptName = keyof typeof luaScripts;
