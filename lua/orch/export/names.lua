--- Names derived from entry ids for each engine: Kubernetes wants DNS-1123 labels (lowercase
-- letters, digits and '-', starting and ending with a letter or digit, at most 63 bytes),
-- compose service names and systemd unit names allow a little more. Two ids that map to one
-- name are an error that names both (never a silent rename).
-- @module orch.export.names
local M = {}

--- The DNS-1123 label for `s`: lowercase, each run of other characters becomes one '-',
-- no '-' at either end, at most `max` (63) bytes; '' when nothing is left.
function M.dns1123(s, max)
  max = max or 63
  local n = s:lower():gsub('[^a-z0-9]+', '-'):gsub('^%-+', ''):gsub('%-+$', '')
  if #n > max then
    n = n:sub(1, max):gsub('%-+$', '')
  end
  return n
end

--- Whether `s` is a DNS-1123 label.
function M.is_dns1123(s)
  return #s >= 1 and #s <= 63 and s:match('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') ~= nil
end

--- A compose service name for `s`: [a-zA-Z0-9._-], starting with a letter or digit.
function M.compose(s)
  return (s:gsub('[^%w._-]+', '-'):gsub('^[^%w]+', ''))
end

--- A systemd unit name part for `s`: what systemd-escape keeps, the rest as \xNN.
function M.systemd(s)
  return (s:gsub('[^%w:_.-]', function(c)
    return ('\\x%02x'):format(c:byte())
  end))
end

--- Map every id of `ids` with `fn`: returns `{id = name}`, or nil and an error naming the
-- colliding ids (or an id that maps to nothing). `what`: 'Kubernetes name', ...
function M.map(ids, fn, what)
  local names, owner = {}, {}
  for _, id in ipairs(ids) do
    local n = fn(id)
    if n == '' then
      return nil, ("entry '%s' has no %s (no letter or digit in its id)"):format(id, what)
    end
    if owner[n] then
      return nil, ("entries '%s' and '%s' both map to the %s '%s'; rename one of them")
        :format(owner[n], id, what, n)
    end
    owner[n], names[id] = id, n
  end
  return names
end

return M
