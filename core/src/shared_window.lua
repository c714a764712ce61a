-- mqseal shared replay window: one atomic check-and-update of the window of
-- one (key id, sender id), with exactly the semantics of the core's
-- ReplayWindow (core/src/replay.rs): the bitmap window, and below it up to
-- a budget of gaps (ranges of counters never accepted). Loaded once, called
-- by its SHA1 (EVALSHA). Counters are u64, passed and kept as two 32-bit
-- halves because Lua numbers are doubles.
--
-- KEYS[1]  the window's key: <prefix>w:<key id>:<sender id>
-- ARGV[1]  counter, high 32 bits     ARGV[2]  counter, low 32 bits
-- ARGV[3]  width for a sender seen for the first time (1 to 256)
-- ARGV[4]  TTL in milliseconds, refreshed on every accept (0: none)
-- ARGV[5]  gap budget for a sender seen for the first time (0 to 4;
--          absent: 0)
-- Returns 0 accepted (and recorded), 1 duplicate, 2 replay, -1 bad arguments.
--
-- Stored value: struct '<I4I4I4i4i4i4i4i4i4i4i4' (width, highest high
-- half, highest low half, then 8 bitmap words; bit i of the bitmap, word
-- i / 32, bit i % 32, is set when counter highest - i was accepted), then
-- '<I4I4' (gap budget, gap count n), then n times '<I4I4I4I4' (lo high,
-- lo low, hi high, hi low), the gaps ascending. A value of the first form
-- only (written before gaps existed) has no gaps and takes ARGV[5]'s budget.
local ch = tonumber(ARGV[1])
local cl = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local budget = tonumber(ARGV[5] or '0')
if not ch or not cl or not width or not ttl or not budget or width < 1 or width > 256 or budget < 0 or budget > 4 then
  return -1
end
local TWO32 = 4294967296
local FMT = '<I4I4I4i4i4i4i4i4i4i4i4'
local w = {0, 0, 0, 0, 0, 0, 0, 0}
local hh, hl = ch, cl
-- Gaps: {lo high, lo low, hi high, hi low}, ascending.
local gaps = {}
local raw = redis.call('GET', KEYS[1])

-- u64 helpers on (high, low) pairs; k is a small non-negative integer.
local function cmp(ah, al, bh, bl)
  if ah ~= bh then
    if ah < bh then return -1 else return 1 end
  end
  if al ~= bl then
    if al < bl then return -1 else return 1 end
  end
  return 0
end
local function add(h, l, k)
  l = l + k
  if l >= TWO32 then return h + 1, l - TWO32 end
  return h, l
end
-- Saturating at 0.
local function sub(h, l, k)
  if h == 0 and l < k then return 0, 0 end
  l = l - k
  if l < 0 then return h - 1, l + TWO32 end
  return h, l
end
-- a - b for a >= b and a small difference.
local function diff(ah, al, bh, bl)
  return (ah - bh) * TWO32 + (al - bl)
end

local function store()
  local args = {width, hh, hl, w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], budget, #gaps}
  local fmt = FMT .. 'I4I4'
  for _, g in ipairs(gaps) do
    fmt = fmt .. 'I4I4I4I4'
    args[#args + 1] = g[1]
    args[#args + 1] = g[2]
    args[#args + 1] = g[3]
    args[#args + 1] = g[4]
  end
  local v = struct.pack(fmt, unpack(args))
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
local function bit_set(age)
  local word = math.floor(age / 32) + 1
  return bit.band(w[word], bit.lshift(1, age % 32)) ~= 0
end
-- Appends a gap above all others: coalesced with the top one when
-- adjacent; over the budget, the lowest is dropped.
local function push_gap(loh, lol, hih, hil)
  if budget == 0 then return end
  local n = #gaps
  if n > 0 then
    local th, tl = add(gaps[n][3], gaps[n][4], 1)
    if cmp(th, tl, loh, lol) == 0 then
      gaps[n][3], gaps[n][4] = hih, hil
      return
    end
  end
  if n >= budget then table.remove(gaps, 1) end
  gaps[#gaps + 1] = {loh, lol, hih, hil}
end
-- The counters of [from, to) leaving the window, as the core's
-- record_leaving: those up to the highest by their bits, those above it
-- (a block the window jumps over) all.
local function record_leaving(fh, fl, th, tl)
  if budget == 0 or cmp(th, tl, fh, fl) <= 0 then return end
  local lh, ll = sub(th, tl, 1)
  local run = nil
  -- In-window part: ages from highest - from down to highest - min(last, highest).
  local a0 = diff(hh, hl, fh, fl)
  local a1 = 0
  if cmp(lh, ll, hh, hl) < 0 then a1 = diff(hh, hl, lh, ll) end
  for age = a0, a1, -1 do
    local c1, c2 = sub(hh, hl, age)
    if bit_set(age) then
      if run then
        push_gap(run[1], run[2], run[3], run[4])
        run = nil
      end
    elseif run then
      run[3], run[4] = c1, c2
    else
      run = {c1, c2, c1, c2}
    end
  end
  if cmp(lh, ll, hh, hl) > 0 then
    local sh, sl = add(hh, hl, 1)
    if run then
      run[3], run[4] = lh, ll
    else
      run = {sh, sl, lh, ll}
    end
  end
  if run then push_gap(run[1], run[2], run[3], run[4]) end
end

if not raw then
  w[1] = 1
  mask()
  store()
  return 0
end
local sw, shh, shl, w1, w2, w3, w4, w5, w6, w7, w8, pos = struct.unpack(FMT, raw)
width = sw
hh, hl = shh, shl
w = {w1, w2, w3, w4, w5, w6, w7, w8}
if #raw > 44 then
  local b, n
  b, n, pos = struct.unpack('<I4I4', raw, pos)
  budget = b
  for _ = 1, n do
    local a1, a2, a3, a4
    a1, a2, a3, a4, pos = struct.unpack('<I4I4I4I4', raw, pos)
    gaps[#gaps + 1] = {a1, a2, a3, a4}
  end
end
-- counter - highest; exact whenever it matters (|d| < 2^33 is exact, and
-- a larger magnitude only needs its sign).
local d = (ch - hh) * 4294967296 + (cl - hl)
if d > 0 then
  -- Slide: the counters leaving the window join the gaps.
  local obh, obl = sub(hh, hl, width - 1)
  local nbh, nbl = sub(ch, cl, width - 1)
  record_leaving(obh, obl, nbh, nbl)
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
  -- Below the window: new only inside a gap.
  for i, g in ipairs(gaps) do
    if cmp(g[1], g[2], ch, cl) <= 0 and cmp(ch, cl, g[3], g[4]) <= 0 then
      local lo_is = cmp(g[1], g[2], ch, cl) == 0
      local hi_is = cmp(g[3], g[4], ch, cl) == 0
      if lo_is and hi_is then
        table.remove(gaps, i)
      elseif lo_is then
        g[1], g[2] = add(ch, cl, 1)
      elseif hi_is then
        g[3], g[4] = sub(ch, cl, 1)
      else
        local bh, bl = sub(ch, cl, 1)
        local ah, al = add(ch, cl, 1)
        table.insert(gaps, i + 1, {ah, al, g[3], g[4]})
        g[3], g[4] = bh, bl
        while #gaps > budget do table.remove(gaps, 1) end
      end
      store()
      return 0
    end
  end
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
