-- mqseal sender-id leases and leased counters: the rule of
-- core/src/sender_lease.rs as one Redis Lua script (loaded once, called by
-- its SHA1). Every operation runs atomically server-side.
--
-- Keys (decimal ids): <prefix>lease:<key id>:<sender id> holds the owner's
-- random token, with a TTL in milliseconds; <prefix>ctr:<key id>:<sender id>
-- holds the counter limit as a canonical decimal string, never expires.
-- Counters are compared as canonical decimal strings (exact for every u64;
-- Lua numbers are doubles).
--
-- ARGV[1] is the operation:
--   acquire: ARGV prefix, key id, first id, last id, token, ttl, create (0/1)
--            -> {sender id, counter limit or ''}; {-1, ''} when no id is free.
--   renew:   KEYS lease; ARGV token, ttl -> 1 held (TTL reset), 0 lost.
--   release: KEYS lease; ARGV token -> 1 released, 0 not held.
--   grant:   KEYS lease, counter; ARGV token, current ('' none), limit, ttl
--            -> 0 granted (lease TTL reset), 1 lease lost, 2 conflict.

local op = ARGV[1]

-- a > b for canonical decimal strings.
local function above(a, b)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end

if op == 'acquire' then
  local prefix, kid = ARGV[2], ARGV[3]
  local first, last = tonumber(ARGV[4]), tonumber(ARGV[5])
  local token, ttl, create = ARGV[6], ARGV[7], ARGV[8]
  for id = first, last do
    local sid = string.format('%d', id)
    if redis.call('SET', prefix .. 'lease:' .. kid .. ':' .. sid, token, 'NX', 'PX', ttl) then
      local ck = prefix .. 'ctr:' .. kid .. ':' .. sid
      local c = redis.call('GET', ck)
      if not c and create == '1' then
        redis.call('SET', ck, '0')
        c = '0'
      end
      return {id, c or ''}
    end
  end
  return {-1, ''}
elseif op == 'renew' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
elseif op == 'release' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
elseif op == 'grant' then
  local token, current, limit, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  -- Fencing: only the lease's holder gets new counters.
  if redis.call('GET', KEYS[1]) ~= token then
    return 1
  end
  local stored = redis.call('GET', KEYS[2]) or ''
  -- A retry of a grant whose answer was lost: while this token holds the
  -- lease nobody else writes the counter, so a stored limit equal to the
  -- requested one is this holder's own write.
  if stored == limit then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return 0
  end
  if stored ~= current or (stored ~= '' and not above(limit, stored)) then
    return 2
  end
  redis.call('SET', KEYS[2], limit)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 0
end
return redis.error_reply('mqseal lease script: unknown operation')
