// The Redis side of a take: one script, one round trip, atomic because Redis runs scripts one at a
// time. It mirrors bucket.ts (`refill`, `takeOne`, `msUntilFull`) step for step.
//
// One call takes one token from each of N buckets, in order — the store batches the takes that
// arrive in one event-loop turn into a single call (redis.ts). A key that appears several times
// (one developer's burst) is read once and written once: later takes see the earlier ones' state,
// exactly as separate calls would, but the Redis work is per key, not per take.
//
// KEYS[i]        bucket hash { tk = tokens (%.17g, round-trips a double exactly), ts = µs }
// ARGV[3i-2]     rate, tokens per second
// ARGV[3i-1]     burst, capacity
// ARGV[3i]       '' in production: the time is Redis's own (TIME), so every proxy shares one clock
//                and skewed hosts cannot mint tokens; tests pass a µs timestamp to drive the clock.
// Returns        { allowed_1 (1|0), tokens_1, allowed_2, tokens_2, … } with tokens left as a %.17g
//                string — a Lua number reply would be truncated to an integer.
//
// Only an admitted request writes: a refusal leaves (tokens, ts) describing the bucket exactly.
// The write sets PEXPIRE to the moment the bucket is full again; a missing key is a full bucket,
// so idle keys leave Redis on their own. TIME before a write needs effects replication: the default
// from Redis 5, switched on explicitly for Redis 4 (the call is a no-op, still present, in 7).
export const TAKE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local redisNow
local buckets = {}
local order = {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local now
  if ARGV[3 * i] ~= nil and ARGV[3 * i] ~= '' then
    now = tonumber(ARGV[3 * i])
  else
    if redisNow == nil then
      local t = redis.call('TIME')
      redisNow = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = redisNow
  end
  local b = buckets[key]
  if b == nil then
    local state = redis.call('HMGET', key, 'tk', 'ts')
    b = { stored = tonumber(state[1]), updated = tonumber(state[2]) }
    buckets[key] = b
  end
  local tokens = burst
  if b.stored ~= nil and b.updated ~= nil then
    tokens = b.stored
    local elapsed = now - b.updated
    if elapsed > 0 then tokens = b.stored + (elapsed * rate) / 1000000 end
    if tokens > burst then tokens = burst end
  end
  if tokens >= 1 - 1e-9 then
    tokens = tokens - 1
    if tokens < 0 then tokens = 0 end
    local left = string.format('%.17g', tokens)
    -- What a write would store, read back as the next take on this key would read it.
    b.stored = tonumber(left)
    b.updated = now
    local ttl = math.ceil(((burst - tokens) * 1000) / rate)
    if ttl < 1 then ttl = 1 end
    if b.ttl == nil then order[#order + 1] = key end
    b.left = left
    b.ttl = ttl
    out[2 * i - 1] = 1
    out[2 * i] = left
  else
    out[2 * i - 1] = 0
    out[2 * i] = string.format('%.17g', tokens)
  end
end
for _, key in ipairs(order) do
  local b = buckets[key]
  redis.call('HSET', key, 'tk', b.left, 'ts', string.format('%.17g', b.updated))
  redis.call('PEXPIRE', key, b.ttl)
end
return out
`;
