// The Redis side of a take: one script, one round trip, atomic because Redis runs scripts one at a
// time. It mirrors bucket.ts (`refill`, `takeOne`, `msUntilFull`) step for step.
//
// KEYS[1]  the bucket hash { tk = tokens (%.17g, round-trips a double exactly), ts = µs }
// ARGV[1]  rate, tokens per second
// ARGV[2]  burst, capacity
// ARGV[3]  '' in production: the time is Redis's own (TIME), so every proxy shares one clock and
//          skewed hosts cannot mint tokens; tests pass a µs timestamp to drive the clock.
// Returns  { allowed (1|0), tokens left as a %.17g string } — a Lua number reply would be
//          truncated to an integer.
//
// Only an admitted request writes: a refusal leaves (tokens, ts) describing the bucket exactly.
// The write sets PEXPIRE to the moment the bucket is full again; a missing key is a full bucket,
// so idle keys leave Redis on their own. TIME before a write needs effects replication: the default
// from Redis 5, switched on explicitly for Redis 4 (the call is a no-op, still present, in 7).
export const TAKE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] ~= nil and ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local state = redis.call('HMGET', KEYS[1], 'tk', 'ts')
local tokens = burst
local stored = tonumber(state[1])
local updated = tonumber(state[2])
if stored ~= nil and updated ~= nil then
  tokens = stored
  local elapsed = now - updated
  if elapsed > 0 then tokens = stored + (elapsed * rate) / 1000000 end
  if tokens > burst then tokens = burst end
end
if tokens >= 1 - 1e-9 then
  tokens = tokens - 1
  if tokens < 0 then tokens = 0 end
  local left = string.format('%.17g', tokens)
  local ttl = math.ceil(((burst - tokens) * 1000) / rate)
  if ttl < 1 then ttl = 1 end
  redis.call('HSET', KEYS[1], 'tk', left, 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return { 1, left }
end
return { 0, string.format('%.17g', tokens) }
`;
