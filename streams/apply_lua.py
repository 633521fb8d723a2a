"""The apply script: one Lua call applies a packed part (``streams.apply_pack``) atomically.

Every write of the part, its dedupe marks and its offsets watermark are applied together or
not at all.  The ops are those of ``streams.writes`` with the same arithmetic as
``streams.store_memory`` (log-adds as log2-sum-exp, vector accumulators as in
``streams.embeddings``), so both stores reach the same digest.  Loaded by
``streams.store_redis.RedisStore``; a string only, so this module imports nothing.
"""

APPLY_LUA = r"""
-- ARGV[1]: the whole batch as one JSON array of strings (one argument for redis-py to pack,
-- one cjson.decode here); binary values travel as extra arguments, referenced as [n] = ARGV[n]
local A = cjson.decode(ARGV[1])
local ns = A[1]
if string.sub(ns, 1, 1) == '@' then
  -- follow the live pointer (set by `streamrec replay --swap`), atomically with the writes
  ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2)
end
local ttl = tonumber(A[2])
local ngroups = tonumber(A[3])
local i = 4
local applied, dups = 0, 0
local LN2 = math.log(2)
local VFMT = {}  -- vector dimension -> struct formats
local stats = ns .. ':stats'
local created = {}  -- keys where this apply's hincrby created a field (for expirenew)
-- applies nops writes starting at A[i]; returns the index after them
local function apply_ops(i, nops)
  for o = 1, nops do
    local op, k, a, b = A[i], ns .. ':' .. A[i + 1], A[i + 2], A[i + 3]
    if type(b) == 'table' then b = ARGV[b[1]] end
    if op == 'hincrby' then
      -- the result equals the increment only when the field is new (counters only grow)
      if redis.call('HINCRBY', k, a, b) == tonumber(b) then created[k] = true end
    elseif op == 'hincrbyfloat' then redis.call('HINCRBYFLOAT', k, a, b)
    elseif op == 'hset' then redis.call('HSET', k, a, b)
    elseif op == 'hsetnx' then redis.call('HSETNX', k, a, b)
    elseif op == 'hmax' or op == 'hmin' then
      local cur = redis.call('HGET', k, a)
      if (not cur) or (op == 'hmax' and tonumber(b) > tonumber(cur))
         or (op == 'hmin' and tonumber(b) < tonumber(cur)) then
        redis.call('HSET', k, a, b)
      end
    elseif op == 'zlogadd' then
      local old = redis.call('ZSCORE', k, a)
      local v = tonumber(b)
      if old then
        old = tonumber(old)
        local hi, lo = old, v
        if v > old then hi, lo = v, old end
        v = hi + math.log(1 + math.exp((lo - hi) * LN2)) / LN2
      end
      redis.call('ZADD', k, string.format('%.17g', v), a)
    elseif op == 'zmax' then redis.call('ZADD', k, 'GT', b, a)
    elseif op == 'ztrim' then redis.call('ZREMRANGEBYRANK', k, 0, -(tonumber(b) + 1))
    elseif op == 'set' then redis.call('SET', k, b)
    elseif op == 'expire' then redis.call('EXPIRE', k, b)
    elseif op == 'expirenew' then
      if created[k] then redis.call('EXPIRE', k, b) end
    elseif op == 'zrem' then redis.call('ZREM', k, a)
    elseif op == 'zrembelow' then redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. b)
    elseif op == 'del' then redis.call('DEL', k)
    elseif op == 'vlogadd' then
      -- log-scaled weighted vector sum, see streams/embeddings.py (same arithmetic)
      -- one struct.unpack / struct.pack per vector (not one per element): the same arithmetic
      local n = #b / 8 - 1
      local fd = VFMT[n]
      if not fd then
        fd = {'<' .. string.rep('d', n + 1), '<' .. string.rep('d', n + 2), '<' .. string.rep('f', n)}
        VFMT[n] = fd
      end
      local p = {struct.unpack(fd[1], b)}
      local L = p[1]
      local cur = redis.call('GET', k)
      local s, D = L, 0
      local c
      if cur and #cur == (n + 2) * 8 then
        c = {struct.unpack(fd[2], cur)}
        s, D = c[1], c[2]
      end
      local s2 = s
      if L > s2 then s2 = L end
      local fo, fn = 2 ^ (s - s2), 2 ^ (L - s2)
      D = D * fo + fn
      local acc, mean = {s2, D}, {}
      if c then
        for j = 1, n do
          local x = c[j + 2] * fo + p[j + 1] * fn
          acc[j + 2] = x
          mean[j] = x / D
        end
      else
        for j = 1, n do
          local x = 0 * fo + p[j + 1] * fn
          acc[j + 2] = x
          mean[j] = x / D
        end
      end
      redis.call('SET', k, struct.pack(fd[2], unpack(acc, 1, n + 2)))
      redis.call('SET', ns .. ':' .. a, struct.pack(fd[3], unpack(mean, 1, n)))
    else return redis.error_reply('unknown write op ' .. op) end
    i = i + 4
  end
  return i
end
for g = 1, ngroups do
  local did = A[i]
  if did == cjson.null then
    -- a GuardedBatch (always the first group): every id unmarked, or nothing is written
    local nids = tonumber(A[i + 1]); i = i + 2
    for j = 0, nids - 1 do
      if not redis.call('SET', ns .. ':dedupe:' .. A[i + j], '1', 'NX', 'EX', ttl) then
        for q = 0, j - 1 do redis.call('DEL', ns .. ':dedupe:' .. A[i + q]) end
        return {0, 0, 1}
      end
    end
    i = i + nids
    local nops = tonumber(A[i]); i = i + 1
    i = apply_ops(i, nops)
    applied = applied + nids
  else
    local nops = tonumber(A[i + 1]); i = i + 2
    local ok = true
    if did ~= '' then
      ok = redis.call('SET', ns .. ':dedupe:' .. did, '1', 'NX', 'EX', ttl)
    end
    if ok then
      applied = applied + 1
      i = apply_ops(i, nops)
    else
      dups = dups + 1
      redis.call('HINCRBY', stats, 'duplicates', 1)
      i = i + 4 * nops
    end
  end
end
local nwm = tonumber(A[i]); i = i + 1
local wmkey = ns .. ':watermark'
for w = 1, nwm do
  local p, off = A[i], tonumber(A[i + 1]); i = i + 2
  local cur = redis.call('HGET', wmkey, p)
  if (not cur) or tonumber(cur) < off then redis.call('HSET', wmkey, p, off) end
end
return {applied, dups, 0}
"""
