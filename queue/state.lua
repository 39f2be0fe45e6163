-- The state machine of one message (state.go). Every change of a message's
-- state is one call of this script, which in the same atomic step updates
-- the record, appends the event to the message's event stream AND to its
-- shard's outbox (the callback relay reads it), and, for a finished
-- attempt, appends the CDR. There is no other writer of message state.
--
-- KEYS (all in one cluster slot, see keys.go):
--   1 record hash, 2 events stream, 3 attempts list, 4 outbox stream,
--   5 CDR stream, 6 in-flight zset, 7 unqueued zset
-- ARGV: 1 op, 2 message id, 3 now (RFC 3339), 4 now (unix ms),
--   5 retention ms, 6 events maxlen, 7 streams maxlen, 8.. per op (below).
-- Returns {code, previous status, ...}: code 1 means the op took effect
-- (or had already: a replay), 0 that the record was not in a state it
-- applies to, -1 that there is no such record; claim also returns 2 (the
-- attempt is in a call) and 3 (the previous attempt still is).
local op, id, now, nowms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rec = KEYS[1]

local incall_states = {dialing = true, ringing = true, answered = true}
local live_states = {queued = true, dialing = true, ringing = true, answered = true}

-- Outcome fields copied into a final event (and so into its callback).
local outcome_fields = {'reason', 'trunk', 'call_id', 'codec', 'sip_code', 'sip_reason', 'hung_up_by',
  'played_to_end', 'audio_ms', 'invite_at', 'ringing_at', 'answered_at', 'ended_at', 'billable_ms',
  'billable_minutes', 'keys', 'confirmed', 'opted_out'}
-- Fields of one attempt, cleared when the next attempt is claimed.
local attempt_fields = {'reason', 'trunk', 'call_id', 'codec', 'sip_code', 'sip_reason', 'hung_up_by',
  'played_to_end', 'audio_ms', 'invite_at', 'ringing_at', 'answered_at', 'ended_at', 'billable_ms',
  'billable_minutes', 'keys', 'confirmed', 'opted_out', 'next_attempt', 'redial_at', 'dialog',
  'takeover_from'}
-- Fields that are bookkeeping, not part of a CDR.
local private_fields = {create_token = true, dialog = true, owner = true, slot = true, takeover_from = true}

local function keep()
  local ms = ARGV[5]
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms)
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('PEXPIRE', KEYS[3], ms)
  end
end

-- event appends one state change to the message's events and the outbox.
local function event(status, attempt, extra)
  local ev = {'status', status, 'at', now, 'attempt', tostring(attempt)}
  for i = 1, #extra, 2 do
    local v = extra[i + 1]
    if v ~= nil and v ~= false and v ~= '' then
      table.insert(ev, extra[i]); table.insert(ev, v)
    end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(ev))
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'message_id', id, unpack(ev))
end

local function outcome()
  local vals = redis.call('HMGET', rec, unpack(outcome_fields))
  local out = {}
  for i, f in ipairs(outcome_fields) do
    table.insert(out, f); table.insert(out, vals[i])
  end
  return out
end

-- cdr appends the record as it is now to the CDR stream, with the callee's
-- number masked (its keyed hash, to_hash, identifies it for those who
-- hold the key): billing exports outlive the message.
local function cdr()
  local all = redis.call('HGETALL', rec)
  local masked = redis.call('HGET', rec, 'to_masked') or ''
  local out = {}
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if not private_fields[f] and string.sub(f, 1, 3) ~= 'cb:' then
      if f == 'message' then
        -- E.164 is + and digits: the pattern matches the number only.
        v = string.gsub(v, '"to":"%+%d+"', '"to":"' .. masked .. '"', 1)
      end
      table.insert(out, f); table.insert(out, v)
    end
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', unpack(out))
end

-- forget drops what a finished message no longer needs: the verification
-- code (validated as digits only, so the pattern cannot match elsewhere)
-- and the dialog, which names the callee.
local function forget()
  local m = redis.call('HGET', rec, 'message')
  if m then
    local n = string.gsub(m, '"code":"%d+",?', '')
    if n ~= m then
      redis.call('HSET', rec, 'message', n)
    end
  end
  redis.call('HDEL', rec, 'dialog')
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[7], id)
end

local function set_pairs(from)
  for i = from, #ARGV, 2 do
    redis.call('HSET', rec, ARGV[i], ARGV[i + 1])
  end
end

if op == 'create' then
  -- 8 message JSON, 9 creation token, 10 reason ('' or a deferral's),
  local cur = redis.call('HGET', rec, 'status')
  if cur then
    if redis.call('HGET', rec, 'create_token') == ARGV[9] then
      return {1, cur} -- a retry of the very call that created it
    end
    return {0, cur}
  end
  -- 11 the number masked, 12 its keyed hash ('' without a policy): what
  -- the CDR keeps instead of the number.
  redis.call('HSET', rec, 'message', ARGV[8], 'status', 'queued', 'attempt', 0,
    'updated_at', now, 'create_token', ARGV[9], 'to_masked', ARGV[11] or '')
  if (ARGV[12] or '') ~= '' then
    redis.call('HSET', rec, 'to_hash', ARGV[12])
  end
  if ARGV[10] ~= '' then
    redis.call('HSET', rec, 'reason', ARGV[10])
  end
  event('queued', 0, {'reason', ARGV[10]})
  redis.call('ZADD', KEYS[7], nowms, id)
  keep()
  return {1, ''}
end

local cur = redis.call('HGET', rec, 'status')
if not cur then
  return {-1, ''}
end
local att = tonumber(redis.call('HGET', rec, 'attempt') or '0') or 0
local incall = incall_states[cur] == true

if op == 'enqueued' then
  -- The record's task exists: the sweeper need not look at it.
  redis.call('ZREM', KEYS[7], id)
  return {1, cur}
end

if op == 'claim' then
  -- 8 attempt A, 9 owner (worker id), 10 channel slot member
  local want = tonumber(ARGV[8])
  if cur == 'queued' and att == want - 1 then
    if want > 1 then
      -- The previous attempt lives on in the attempts list and its CDR.
      redis.call('HDEL', rec, unpack(attempt_fields))
    end
    redis.call('HSET', rec, 'status', 'dialing', 'attempt', want, 'owner', ARGV[9], 'slot', ARGV[10],
      'updated_at', now)
    event('dialing', want, {})
    redis.call('ZADD', KEYS[6], nowms, id)
    redis.call('ZREM', KEYS[7], id)
    keep()
    return {1, cur}
  end
  if incall and att == want then
    local f = redis.call('HMGET', rec, 'owner', 'slot', 'invite_at')
    if f[1] == ARGV[9] and f[2] == ARGV[10] and not f[3] then
      -- This very claim, retried because its reply was lost: it is ours,
      -- and no INVITE has left for it.
      return {1, cur}
    end
    return {2, cur, f[1] or ''}
  end
  if incall and att == want - 1 then
    return {3, cur}
  end
  return {0, cur}
end

if op == 'unclaim' then
  -- 8 attempt A, 9 owner, 10 slot member, 11 reason. A claim whose
  -- durability was not confirmed in time, or whose reply was lost, goes
  -- back to queued; no INVITE was sent for it.
  local want = tonumber(ARGV[8])
  local f = redis.call('HMGET', rec, 'owner', 'slot', 'invite_at')
  if cur ~= 'dialing' or att ~= want or f[1] ~= ARGV[9] or f[2] ~= ARGV[10] or f[3] then
    return {0, cur}
  end
  redis.call('HSET', rec, 'status', 'queued', 'attempt', want - 1, 'reason', ARGV[11], 'updated_at', now)
  redis.call('HDEL', rec, 'owner', 'slot')
  redis.call('ZREM', KEYS[6], id)
  event('queued', want, {'reason', ARGV[11]})
  keep()
  return {1, cur}
end

if op == 'progress' then
  -- 8 attempt, 9 owner, 10 new status (dialing: the INVITE left), 11.. field pairs
  local want, to = tonumber(ARGV[8]), ARGV[10]
  if att ~= want or redis.call('HGET', rec, 'owner') ~= ARGV[9] then
    return {0, cur}
  end
  local order = {dialing = 1, ringing = 2, answered = 3}
  if not incall or order[cur] > order[to] or (cur == to and to ~= 'dialing') then
    -- Already there or past it (a journal replay), or no longer in a call.
    return {incall and 1 or 0, cur}
  end
  set_pairs(11)
  redis.call('HSET', rec, 'status', to, 'updated_at', now)
  if cur ~= to then
    local extra = {}
    for i = 11, #ARGV, 2 do
      if ARGV[i] ~= 'dialog' then
        table.insert(extra, ARGV[i]); table.insert(extra, ARGV[i + 1])
      end
    end
    event(to, want, extra)
  end
  keep()
  return {1, cur}
end

if op == 'finish' then
  -- 8 attempt A, 9 owner, 10 outcome status, 11 next attempt (0: none),
  -- 12 reason while the redial waits, 13 n, 14..13+n attempt entries
  -- (JSON), then outcome field pairs.
  local want, status, nxt = tonumber(ARGV[8]), ARGV[10], tonumber(ARGV[11])
  local owner = redis.call('HGET', rec, 'owner')
  -- Only the call's owner finishes it; an unknown outcome (the reaper's,
  -- for a call whose INVITE was never recorded) may be replaced by the
  -- real one, once.
  if att ~= want or not ((incall and owner == ARGV[9]) or (cur == 'unknown' and status ~= 'unknown')) then
    return {0, cur}
  end
  if cur == 'unknown' then
    nxt = 0 -- the message was reported final: it is never dialled again
  end
  local n = tonumber(ARGV[13])
  for i = 14, 13 + n do
    redis.call('RPUSH', KEYS[3], ARGV[i])
  end
  set_pairs(14 + n)
  redis.call('HSET', rec, 'status', status, 'updated_at', now)
  if nxt == 0 then
    forget()
  else
    redis.call('HDEL', rec, 'dialog')
    redis.call('ZREM', KEYS[6], id)
  end
  cdr() -- the attempt as it ended, with its own status
  event(status, want, outcome())
  if nxt > 0 then
    redis.call('HSET', rec, 'status', 'queued', 'next_attempt', nxt, 'reason', ARGV[12])
    event('queued', nxt, {'reason', ARGV[12]})
  end
  keep()
  return {1, cur}
end

if op == 'takeover' then
  -- 8 attempt, 9 the owner that stopped beating, 10 the new owner.
  -- Returns {1, status, dialog JSON, slot member, trunk, answered_at}.
  if not incall or att ~= tonumber(ARGV[8]) or redis.call('HGET', rec, 'owner') ~= ARGV[9] then
    return {0, cur}
  end
  redis.call('HSET', rec, 'owner', ARGV[10], 'takeover_from', ARGV[9], 'updated_at', now)
  local f = redis.call('HMGET', rec, 'dialog', 'slot', 'trunk', 'answered_at')
  return {1, cur, f[1] or '', f[2] or '', f[3] or '', f[4] or ''}
end

if op == 'end' then
  -- 8 allowed current states (comma-separated), 9 new status, 10 owner
  -- required when the record is in a call ('' for queued-only moves),
  -- 11.. field pairs. Ends a message that was never dialled (or changes
  -- fields of a queued one, when the status stays queued).
  local allowed = false
  for s in string.gmatch(ARGV[8], '[^,]+') do
    if s == cur then allowed = true end
  end
  if allowed and incall and redis.call('HGET', rec, 'owner') ~= ARGV[10] then
    allowed = false
  end
  if not allowed then
    return {0, cur}
  end
  local to = ARGV[9]
  set_pairs(11)
  redis.call('HSET', rec, 'status', to, 'updated_at', now)
  if cur ~= to then
    event(to, att, {'reason', redis.call('HGET', rec, 'reason')})
  end
  if not live_states[to] then
    forget()
  end
  keep()
  return {1, cur}
end

return redis.error_reply('state.lua: unknown op ' .. tostring(op))
