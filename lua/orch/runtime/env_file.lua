--- Environment files (`exec.envFile`): one `NAME=value` per line, `#` comments and blank lines
-- ignored, a value in matching single or double quotes taken without them: the subset that
-- systemd's EnvironmentFile= and compose's env_file both read.
-- @module orch.runtime.env_file
local M = {}

--- Parse `text` into `{NAME = value}`, or nil and `line N: why`.
function M.parse(text)
  local out, n = {}, 0
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    n = n + 1
    line = line:gsub('\r$', '')
    local body = line:match('^%s*(.-)%s*$')
    if body ~= '' and body:sub(1, 1) ~= '#' then
      local name, value = body:match('^([%a_][%w_]*)%s*=%s*(.*)$')
      if not name then
        return nil, ('line %d: expected NAME=value, got %q'):format(n, body:sub(1, 60))
      end
      local q = value:sub(1, 1)
      if (q == '"' or q == "'") and #value >= 2 and value:sub(-1) == q then
        value = value:sub(2, -2)
      end
      out[name] = value
    end
  end
  return out
end

--- Read and parse the file at `path`: the map, or nil and a message naming the file.
function M.read(path)
  local f, err = io.open(path, 'rb')
  if not f then
    return nil, ("cannot read exec.envFile '%s': %s"):format(path,
      tostring(err):gsub('^' .. path:gsub('%p', '%%%0') .. ': ', ''))
  end
  local text = f:read('a')
  f:close()
  local env, why = M.parse(text)
  if not env then
    return nil, ("exec.envFile '%s' %s"):format(path, why)
  end
  return env
end

return M
