// The Redis side of a take: one script, one round trip, atomic because Redis runs scripts one at a
// time. It mirrors bucket.ts (`refill`, `takeOne`, `msUntilFull`) step for step.
//
// One call serves a batch of takes (redis.ts queues them while the previous call is out). The
// batch arrives as entries: an entry is `count` consecutive takes on one key with one rule at one
// time — a developer's burst is one entry, however many requests it has. Entries run in order, and
// a key that appears in several entries is read once and written once: later entries see the
// earlier ones' state, exactly as separate calls would, but the Redis work is per key, not per take.
//
// KEYS[i]        bucket hash { tk = tokens (%.17g, round-trips a double exactly), ts = µs }
// ARGV[4i-3]     rate, tokens per second
// ARGV[4i-2]     burst, capacity
// ARGV[4i-1]     '' in production: the time is Redis's own (TIME), so every proxy shares one clock
//                and skewed hosts cannot mint tokens; tests pass a µs timestamp to drive the clock.
// ARGV[4i]       count, takes in the entry (≥ 1)
// Returns        { admitted_1, tokens_1, admitted_2, tokens_2, … }: how many of the entry's takes
//                were admitted (always its first ones: within one instant tokens only go down), and
//                the tokens the bucket held before them, as a %.17g string — a Lua number reply
//                would be truncated to an integer. From that, the store replays `takeOne` per take
//                and gets each take's answer bit for bit (IEEE doubles on both sides).
//
// Only an admitted take writes: a refusal leaves (tokens, ts) describing the bucket exactly.
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
  local rate = tonumber(ARGV[4 * i - 3])
  local burst = tonumber(ARGV[4 * i - 2])
  local now
  if ARGV[4 * i - 1] ~= '' then
    now = tonumber(ARGV[4 * i - 1])
  else
    if redisNow == nil then
      local t = redis.call('TIME')
      redisNow = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = redisNow
  end
  local count = tonumber(ARGV[4 * i])
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
  out[2 * i] = string.format('%.17g', tokens)
  local admitted = 0
  while admitted < count and tokens >= 1 - 1e-9 do
    tokens = tokens - 1
    if tokens < 0 then tokens = 0 end
    admitted = admitted + 1
  end
  out[2 * i - 1] = admitted
  if admitted > 0 then
    -- What the next entry on this key reads, as it would read it back from the write below.
    b.stored = tokens
    b.updated = now
    local ttl = math.ceil(((burst - tokens) * 1000) / rate)
    if ttl < 1 then ttl = 1 end
    if b.ttl == nil then order[#order + 1] = key end
    b.ttl = ttl
  end
end
for _, key in ipairs(order) do
  local b = buckets[key]
  redis.call('HSET', key, 'tk', string.format('%.17g', b.stored), 'ts', string.format('%.17g', b.updated))
  redis.call('PEXPIRE', key, b.ttl)
end
return out
`;
