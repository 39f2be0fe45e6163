-- Attempt-aware claim and finish of one message record (queue/attempts.go).
-- Both scripts share this file; ARGV[1] selects the operation.
--
-- claim: KEYS[1] record, KEYS[2] events, KEYS[3] CDR stream
--   ARGV[2] attempt A, ARGV[3] retention ms, ARGV[4] now, ARGV[5] events maxlen,
--   ARGV[6] CDR maxlen, ARGV[7] reason written when a lost call becomes unknown
--   Returns {outcome, previous status}: 0 claimed (queued with attempt A-1 →
--   dialing with attempt A), 1 already finished, 2 lost in call (attempt A was
--   dialling and is now unknown), 3 attempt A-1 is still in a call, -1 no record.
--
-- finish: KEYS[1] record, KEYS[2] events, KEYS[3] CDR stream, KEYS[4] attempts list
--   ARGV[2] attempt A, ARGV[3] retention ms, ARGV[4] now, ARGV[5] events maxlen,
--   ARGV[6] CDR maxlen, ARGV[7] outcome status, ARGV[8] next attempt (0: none),
--   ARGV[9] reason of the redial (the record's reason while it waits),
--   ARGV[10] n = number of attempt entries, ARGV[11 .. 10+n] entries (JSON),
--   then field, value pairs of the outcome.
--   Returns {1, previous status} when written, {0, previous status} when the
--   record is not in a call of attempt A, {0, ''} when it does not exist.
local op = ARGV[1]
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then
  return {-1, ''}
end
local att = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0') or 0
local want = tonumber(ARGV[2])
local incall = (cur == 'dialing' or cur == 'ringing' or cur == 'answered')

local function event(status, extra)
  local ev = {'status', status, 'at', ARGV[4], 'attempt', tostring(want)}
  for i = 1, #extra, 2 do
    if extra[i + 1] ~= nil and extra[i + 1] ~= '' then
      table.insert(ev, extra[i]); table.insert(ev, extra[i + 1])
    end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(ev))
end
local function cdr()
  local rec = redis.call('HGETALL', KEYS[1])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', unpack(rec))
end
local function keep()
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end

if op == 'claim' then
  if cur == 'queued' and att == want - 1 then
    if want > 1 then
      -- The previous attempt's outcome lives on in the attempts list.
      redis.call('HDEL', KEYS[1], 'reason', 'trunk', 'call_id', 'codec', 'sip_code', 'sip_reason',
        'hung_up_by', 'played_to_end', 'audio_ms', 'invite_at', 'ringing_at', 'answered_at',
        'ended_at', 'billable_ms', 'billable_minutes', 'next_attempt', 'redial_at')
    end
    redis.call('HSET', KEYS[1], 'status', 'dialing', 'attempt', want, 'updated_at', ARGV[4])
    event('dialing', {})
    keep()
    return {0, cur}
  end
  if incall and att == want then
    redis.call('HSET', KEYS[1], 'status', 'unknown', 'reason', ARGV[7], 'updated_at', ARGV[4])
    event('unknown', {'reason', ARGV[7]})
    keep()
    cdr()
    return {2, cur}
  end
  if incall and att == want - 1 then
    return {3, cur}
  end
  return {1, cur}
end

-- finish
if att ~= want or not (incall or cur == 'unknown') then
  return {0, cur}
end
local n = tonumber(ARGV[10])
for i = 11, 10 + n do
  redis.call('RPUSH', KEYS[4], ARGV[i])
end
redis.call('HSET', KEYS[1], 'status', ARGV[7], 'updated_at', ARGV[4])
local sip, reason = '', ''
for i = 11 + n, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'sip_code' then sip = ARGV[i + 1] end
  if ARGV[i] == 'reason' then reason = ARGV[i + 1] end
end
-- The CDR is the attempt as it ended, with its own status.
cdr()
local next = tonumber(ARGV[8])
if next > 0 then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'next_attempt', next, 'reason', ARGV[9])
  event('queued', {'sip_code', sip, 'reason', ARGV[9]})
elseif cur ~= ARGV[7] then
  event(ARGV[7], {'sip_code', sip, 'reason', reason})
end
keep()
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return {1, cur}
