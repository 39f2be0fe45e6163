-- Sliding-window frequency limits of one number for one app.
-- KEYS[1] sorted set: member = message ID, score = call time (ms)
-- ARGV[1] time the call would be made (ms), ARGV[2] now (ms)
-- ARGV[3] message ID, ARGV[4] "1" to record the call when allowed
-- ARGV[5..] window (ms), max pairs
-- A window allows the call when fewer than max other calls lie within
-- (t - window, t + window): every interval of that length around t then
-- holds at most max calls, also with calls deferred into the future.
-- Returns {1} when allowed, or {0, limit index (1-based), count, first
-- score in the window} when refused.
local t = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local member = ARGV[3]
local longest = 0
for i = 5, #ARGV, 2 do
  local w = tonumber(ARGV[i])
  if w > longest then longest = w end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local own = tonumber(redis.call('ZSCORE', KEYS[1], member))
for i = 5, #ARGV, 2 do
  local w = tonumber(ARGV[i])
  local max = tonumber(ARGV[i + 1])
  local lo, hi = t - w, t + w
  local n = redis.call('ZCOUNT', KEYS[1], '(' .. lo, '(' .. hi)
  if own and own > lo and own < hi then n = n - 1 end
  if n >= max then
    local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. lo, '(' .. hi, 'WITHSCORES', 'LIMIT', 0, 2)
    local score = first[2]
    if first[1] == member and first[4] then score = first[4] end
    return {0, (i - 3) / 2, n, score}
  end
end
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], t, member)
  local ttl = longest + (t - now)
  if ttl < longest then ttl = longest end
  local cur = redis.call('PTTL', KEYS[1])
  if cur > ttl then ttl = cur end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1}
