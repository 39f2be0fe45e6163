-- GCRA rate limit (generic cell rate algorithm), times in microseconds from
-- the Redis server's clock so every API process agrees.
-- KEYS[1] the app's theoretical arrival time
-- ARGV[1] emission interval (1e6 / rps), ARGV[2] burst
-- Returns {1, 0} allowed, or {0, microseconds to wait}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = emission * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + emission - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
