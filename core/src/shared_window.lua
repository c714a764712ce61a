-- mqseal shared replay window: one atomic check-and-update of the window of
-- one (key id, sender id), with exactly the semantics of the core's
-- ReplayWindow (core/src/replay.rs). Loaded once, called by its SHA1
-- (EVALSHA). Counters are u64, passed as two 32-bit halves because Lua
-- numbers are doubles.
--
-- KEYS[1]  the window's key: <prefix>w:<key id>:<sender id>
-- ARGV[1]  counter, high 32 bits     ARGV[2]  counter, low 32 bits
-- ARGV[3]  width for a sender seen for the first time (1 to 256)
-- ARGV[4]  TTL in milliseconds, refreshed on every accept (0: none)
-- Returns 0 accepted (and recorded), 1 duplicate, 2 replay, -1 bad arguments.
--
-- Stored value (struct '<I4I4I4i4i4i4i4i4i4i4i4'): width, highest high
-- half, highest low half, then 8 bitmap words; bit i of the bitmap (word
-- i / 32, bit i % 32) is set when counter highest - i was accepted.
local ch = tonumber(ARGV[1])
local cl = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if not ch or not cl or not width or not ttl or width < 1 or width > 256 then
  return -1
end
local FMT = '<I4I4I4i4i4i4i4i4i4i4i4'
local w = {0, 0, 0, 0, 0, 0, 0, 0}
local hh, hl = ch, cl
local raw = redis.call('GET', KEYS[1])
local function store()
  local v = struct.pack(FMT, width, hh, hl, w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8])
  if ttl > 0 then
    redis.call('SET', KEYS[1], v, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], v)
  end
end
local function mask()
  for i = 1, 8 do
    local start = (i - 1) * 32
    if start >= width then
      w[i] = 0
    elseif width - start < 32 then
      w[i] = bit.band(w[i], bit.rshift(-1, 32 - (width - start)))
    end
  end
end
if not raw then
  w[1] = 1
  mask()
  store()
  return 0
end
local sw, shh, shl, w1, w2, w3, w4, w5, w6, w7, w8 = struct.unpack(FMT, raw)
width = sw
hh, hl = shh, shl
w = {w1, w2, w3, w4, w5, w6, w7, w8}
-- counter - highest; exact whenever it matters (|d| < 2^33 is exact, and
-- a larger magnitude only needs its sign).
local d = (ch - hh) * 4294967296 + (cl - hl)
if d > 0 then
  if d >= 256 then
    w = {0, 0, 0, 0, 0, 0, 0, 0}
  else
    local words = math.floor(d / 32)
    local b = d % 32
    for i = 8, 1, -1 do
      local src = i - words
      local hi = 0
      if src >= 1 then hi = w[src] end
      local lo = 0
      if b ~= 0 and src - 1 >= 1 then lo = bit.rshift(w[src - 1], 32 - b) end
      if b == 0 then w[i] = hi else w[i] = bit.bor(bit.lshift(hi, b), lo) end
    end
  end
  w[1] = bit.bor(w[1], 1)
  hh, hl = ch, cl
  mask()
  store()
  return 0
end
local age = -d
if age >= width then
  return 2
end
local word = math.floor(age / 32) + 1
local mbit = bit.lshift(1, age % 32)
if bit.band(w[word], mbit) ~= 0 then
  return 1
end
w[word] = bit.bor(w[word], mbit)
mask()
store()
return 0
