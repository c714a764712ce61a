-- Body of mqseal's exactly-once batch script (core/src/batch_log.rs,
-- BATCH_SCRIPT). The window rule itself is shared_window.lua unchanged,
-- wrapped by the core into `local function window_check(KEYS, ARGV)` ahead
-- of this text, so both scripts decide with the same code.
--
-- One atomic call per batch: the window check-and-update of every entry
-- and, for the accepted ones, their records stored under the owner's
-- pending hash, field <batch number>. Either all of it runs or none.
--
-- KEYS[1..n]  the entries' window keys (<prefix>w:<key id>:<sender id>)
-- KEYS[n+1]   the owner's pending hash (<prefix>pending:<owner>)
-- ARGV[1]     the batch number (decimal)
-- ARGV[2]     TTL in milliseconds of the pending hash (0: none)
-- ARGV[3]     n, the number of entries
-- then 6 per entry: the 5 window arguments of shared_window.lua, then
-- the entry's record (self-delimiting, see batch_log.rs).
-- Returns the n window codes (0 accepted, 1 duplicate, 2 replay, -1 bad
-- arguments), or {-1} for bad batch arguments (nothing changed).
local n = tonumber(ARGV[3])
local pttl = tonumber(ARGV[2])
if not n or not pttl or n < 0 or #KEYS ~= n + 1 or #ARGV ~= 3 + 6 * n then
  return {-1}
end
local codes = {}
local accepted = {}
for i = 1, n do
  local b = 3 + (i - 1) * 6
  local c = window_check({KEYS[i]}, {ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]})
  codes[i] = c
  if c == 0 then accepted[#accepted + 1] = ARGV[b + 6] end
end
if #accepted > 0 then
  redis.call('HSET', KEYS[n + 1], ARGV[1], table.concat(accepted))
  if pttl > 0 then redis.call('PEXPIRE', KEYS[n + 1], pttl) end
end
return codes
