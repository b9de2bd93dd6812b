--- What `ready.fn` produced, as a health table: the result checked against the known ones,
-- the message made a string and cut to `MAX_MESSAGE`, any other keys kept as extras, and every
-- error (raised by the call, or by reading the value) turned into a `failure` with a message
-- that says what happened (H5, H7 of reference 2.16). Pure: never raises, never yields.
-- @module orch.entries.health_result
local util = require 'orch.runtime.util'
local results = require 'orch.entries.results'

local M = {}

--- Longest health message kept (bytes); a longer one is cut and marked.
M.MAX_MESSAGE = 4096

local RESERVED = { id = true, name = true, result = true, message = true }

-- The message of any value `ready.fn` raised, without raising itself (a `__tostring` that
-- fails, or returns no string, is reported as such).
local function raised_message(e)
  local text, t, why = util.error_text(e)
  if text == nil then
    if t == 'nil' or t == 'boolean' then
      return ('ready.fn raised %s'):format(tostring(e))
    elseif why then
      return ('ready.fn raised a %s value whose __tostring failed: %s'):format(t, why)
    end
    return ('ready.fn raised a %s value'):format(t)
  end
  text = util.strip_position(text)
  if text == '' then
    return 'ready.fn raised an empty error message'
  end
  return text
end

local function cut(msg)
  if type(msg) == 'string' and #msg > M.MAX_MESSAGE then
    return msg:sub(1, M.MAX_MESSAGE) .. ('... (%d bytes cut)'):format(
      #msg - M.MAX_MESSAGE)
  end
  return msg
end

local normalise_result

--- Map what ready.fn produced (pcall results) to a health table; never raises: a result orch
-- cannot even read (a metatable that raises) is a failure too.
-- @tparam boolean ok the first result of the pcall
-- @param r the second (the returned value or the raised error)
-- @treturn table `{result, message, extras}`
function M.normalise(ok, r)
  local okn, h = pcall(normalise_result, ok, r)
  if not okn then
    h = { result = 'failure',
      message = 'ready.fn returned a value that cannot be read: ' .. raised_message(h) }
  end
  h.message = cut(h.message)
  return h
end

function normalise_result(ok, r)
  if not ok then
    return { result = 'failure', message = raised_message(r) }
  end
  local rt = type(r) == 'table' and type(r.result)
  if rt == 'table' or rt == 'function' or rt == 'thread' or rt == 'userdata' then
    return { result = 'failure', message = ("invalid health result (a %s)"):format(
      type(r.result)) }
  end
  if type(r) ~= 'table' then
    return { result = 'failure', message = ("invalid health result '%s'"):format(tostring(r)) }
  end
  if not results.RESULT_SET[r.result] then
    return { result = 'failure',
      message = ("invalid health result '%s'"):format(tostring(r.result)) }
  end
  local msg = r.message
  if msg ~= nil and type(msg) ~= 'string' then
    local mt = getmetatable(msg)
    if type(msg) == 'number' or type(msg) == 'boolean'
      or (type(mt) == 'table' and rawget(mt, '__tostring')) then
      msg = tostring(msg)
    else
      msg = ('(a %s message)'):format(type(msg))
    end
  end
  if msg == nil and (r.result == 'failure' or r.result == 'loading') then
    msg = ''
  end
  local extras
  for k, v in pairs(r) do
    if not RESERVED[k] then
      extras = extras or {}
      extras[k] = v
    end
  end
  return { result = r.result, message = msg, extras = extras }
end

return M
