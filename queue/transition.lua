-- Atomic state transition of one message record.
-- KEYS[1] record hash, KEYS[2] the message's event stream, KEYS[3] the CDR stream,
-- KEYS[4] (optional) the state-change outbox stream of all messages
-- ARGV[1] allowed current states, comma-separated
-- ARGV[2] new state
-- ARGV[3] retention in ms
-- ARGV[4] event time
-- ARGV[5] event stream max length, ARGV[6] CDR stream max length
-- ARGV[7] "1" to append the whole record to the CDR stream
-- ARGV[8..] field, value pairs to set
-- Returns {1, previous state} when moved, {0, previous state} when not,
-- {0, ""} when the record does not exist.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then
  return {0, ''}
end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == cur then allowed = true end
end
if not allowed then
  return {0, cur}
end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
local ev = {'status', ARGV[2], 'at', ARGV[4]}
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'sip_code' or ARGV[i] == 'reason' then
    table.insert(ev, ARGV[i]); table.insert(ev, ARGV[i + 1])
  end
end
if cur ~= ARGV[2] then
  -- Setting fields without a state change is not an event.
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(ev))
  if KEYS[4] then
    -- The state-change outbox (statechanges.go), written in the same atomic
    -- step so no change is ever lost to a crash: the callback relay reads it.
    local id = string.match(KEYS[1], '{(.*)}')
    local att = redis.call('HGET', KEYS[1], 'attempt') or '0'
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'message_id', id,
      'status', ARGV[2], 'attempt', att, 'at', ARGV[4])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[7] == '1' then
  local rec = redis.call('HGETALL', KEYS[1])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', unpack(rec))
end
return {1, cur}
