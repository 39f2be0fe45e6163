-- Set the delivery state of one status callback in a message record.
-- KEYS[1] record hash; ARGV[1] field, ARGV[2] JSON state, ARGV[3] state word
-- Does nothing when the record expired, or when the callback was already
-- delivered and the new state is not "delivered".
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.find(cur, '"state":"delivered"', 1, true) and ARGV[3] ~= 'delivered' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
