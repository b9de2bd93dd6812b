--- Log files: each entry's output in a file of its own (`DIR/<id>.log` with `orch run
-- --log-dir DIR`, or the entry's `exec.log.file`), orch's own events in `DIR/orch.log`, each
-- rotated by size (orch.log.rotating), and the history `orch logs` reads back from them.
--
-- A line in a file: `<ISO 8601 UTC time> <stream> <line>`, e.g.
-- `2026-12-03T18:00:00.123Z stdout listening on :8080`; orch.log holds `<time> <event text>`.
-- `M.tee(writer, files)` is the log writer orch runs with: everything goes to `writer` (the
-- merged stream) and to the files.
-- @module orch.log.files
local lines = require 'orch.lines'
local rotating = require 'orch.log.rotating'
local log_text = require 'orch.log.text'
local time = require 'orch.runtime.time'

local M = {}

--- Size and count of orch.log's rotation (the entries' come from exec.log or its defaults).
M.ORCH_MAX_SIZE = 10 * 1024 * 1024
M.ORCH_KEEP = 5

local DEFAULT_MAX_SIZE, DEFAULT_KEEP = 10 * 1024 * 1024, 5

local Files = {}
Files.__index = Files
M.Files = Files

--- The file name of entry `id` in the log directory: characters other than letters, digits,
-- `.`, `_` and `-` become `_`.
function M.file_name(id)
  local name = id:gsub('[^%w%._%-]', '_')
  if name:sub(1, 1) == '.' then
    name = '_' .. name:sub(2)
  end
  return name .. '.log'
end

--- Log files. `opts`: `dir` (the log directory, or nil: only entries with `exec.log.file`
-- get a file), `clock` (wall seconds), `report(msg, level, id)` (a file that fails or
-- recovers; called once per failure).
function M.new(opts)
  local self = setmetatable({
    dir = opts.dir,
    clock = opts.clock or os.time,
    report = opts.report or function() end,
    _files = {}, -- id -> rotating file
    _names = {}, -- path -> id, for two ids that map to the same name
  }, Files)
  if self.dir then
    self.orch = self:_new_file(self.dir .. '/orch.log', nil, { maxSize = M.ORCH_MAX_SIZE,
      keep = M.ORCH_KEEP })
  end
  return self
end

function Files:_new_file(path, id, conf)
  return rotating.new(path, {
    max_size = conf.maxSize or DEFAULT_MAX_SIZE,
    keep = conf.keep or DEFAULT_KEEP,
    clock = self.clock,
    on_error = function(msg)
      -- Once per failure; orch.log itself failing is said on the merged stream only.
      self.report(('log file: %s (output still goes to the main log)'):format(msg), 'error', id)
    end,
    on_recover = function(msg)
      self.report('log file: ' .. msg, 'info', id)
    end,
  })
end

-- The path of `id`'s file (nil: none), made unique among the ids.
function Files:_path(id, conf)
  local path
  if conf and conf.file then
    path = conf.file
    if self.dir and path:sub(1, 1) ~= '/' then
      path = self.dir .. '/' .. path
    end
  elseif self.dir then
    path = self.dir .. '/' .. M.file_name(id)
  else
    return nil
  end
  local base, n = path, 1
  while self._names[path] and self._names[path] ~= id do
    n = n + 1
    path = base:gsub('%.log$', '') .. '-' .. n .. '.log'
  end
  return path
end

--- Declare the entries (`chain:entries()`: `{id, log = <exec.log>}`): opens no file yet (on
-- the first line), closes those of entries gone or moved (a reload).
function Files:declare(entries)
  local keep = {}
  for _, d in ipairs(entries) do
    keep[d.id] = d
  end
  for id, f in pairs(self._files) do
    local d = keep[id]
    local conf = d and d.log or {}
    if not d or f.path ~= self:_path(id, d.log) or f.max ~= (conf.maxSize or DEFAULT_MAX_SIZE)
      or f.keep ~= (conf.keep or DEFAULT_KEEP) then
      f:close()
      self._files[id] = nil
      self._names[f.path] = nil
    end
  end
  for _, d in ipairs(entries) do
    if not self._files[d.id] then
      local path = self:_path(d.id, d.log)
      if path then
        self._names[path] = d.id
        self._files[d.id] = self:_new_file(path, d.id, d.log or {})
      end
    end
  end
end

--- Whether entry `id` has a file.
function Files:has(id)
  return self._files[id] ~= nil
end

--- Append a block of complete lines (each ending in `\n`; `count` of them when known) of
-- `id`'s `stream`: one line each, `<time> <stream> <line>`.
function Files:block(id, stream, block, count)
  local f = self._files[id]
  if not f then
    return
  end
  f:write(lines.prefix(block, time.iso(self.clock()) .. ' ' .. stream .. ' ', count))
end

--- Append complete `list` of lines of `id`'s `stream`.
function Files:lines(id, stream, list)
  self:block(id, stream, table.concat(list, '\n') .. '\n')
end

--- Append an orchestrator event to orch.log (with a log directory).
function Files:event(ev)
  local f = self.orch
  if not f then
    return
  end
  local prefix = time.iso(self.clock()) .. ' '
  local text = log_text.describe(ev)
  if ev.level and ev.level ~= 'info' and ev.event == 'log' and ev.id and ev.id ~= 'orch' then
    text = ev.level .. ': ' .. text
  end
  local buf = {}
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    buf[#buf + 1] = prefix .. line .. '\n'
  end
  f:write(table.concat(buf))
end

--- Close and reopen every file (SIGUSR2, `orch logs --reopen`): after logrotate moved them,
-- new lines go to new files. Files that failed are tried again.
function Files:reopen()
  if self.orch then
    self.orch:reopen()
  end
  for _, f in pairs(self._files) do
    f:reopen()
  end
end

function Files:close()
  if self.orch then
    self.orch:close()
  end
  for _, f in pairs(self._files) do
    f:close()
  end
end

-- The records of one file, oldest first: `{ts, iso, stream, line}` (at or after `since`; `iso`
-- is the time as written), and the
-- time of its first line.
local function read_records(path, since)
  local fh = io.open(path, 'r')
  if not fh then
    return nil
  end
  local out, first = {}, nil
  for l in fh:lines() do
    local ts, stream, line = l:match('^(%S+) (%S+) (.*)$')
    local t = ts and time.parse_iso(ts)
    if t then
      first = first or t
      if not since or t >= since then
        out[#out + 1] = { ts = t, iso = ts, stream = stream, line = line }
      end
    end
  end
  fh:close()
  return out, first
end

--- The history of `id` from its files, oldest first: the last `n` (nil: all) records
-- `{ts, stream, line}` at or after `since` (wall seconds, nil: any). Reads only the newest
-- files it needs. nil when `id` has no file or it cannot be read.
function Files:history(id, n, since)
  local f = self._files[id]
  if not f then
    return nil
  end
  local parts, total = {}, 0
  for i, path in ipairs(f:paths()) do
    local recs, first = read_records(path, since)
    if not recs then
      if i == 1 then
        return nil -- never written (a failing file): the ring has the output
      end
      break -- rotated files are numbered without gaps
    else
      parts[#parts + 1] = recs
      total = total + #recs
      if (n and total >= n) or (since and first and first < since) then
        break
      end
    end
  end
  local out = {}
  for p = #parts, 1, -1 do
    table.move(parts[p], 1, #parts[p], #out + 1, out)
  end
  if n and #out > n then
    out = table.move(out, #out - n + 1, #out, 1, {})
  end
  return out
end

--- A log writer that writes to `writer` (orch.log: the merged stream) and to `files`.
function M.tee(writer, files)
  local t = { main = writer, files = files }
  function t:set_ids(ids)
    self.main:set_ids(ids)
  end
  function t:lines(id, stream, list)
    self.main:lines(id, stream, list)
    self.files:lines(id, stream, list)
  end
  function t:block(id, stream, block, count)
    self.main:block(id, stream, block, count)
    self.files:block(id, stream, block, count)
  end
  function t:line(id, stream, line)
    self:lines(id, stream, { line })
  end
  function t:event(ev)
    self.main:event(ev)
    self.files:event(ev)
  end
  function t:message(msg, level, fields)
    local ev = { event = 'log', level = level or 'info', message = msg }
    for k, v in pairs(fields or {}) do
      ev[k] = v
    end
    self:event(ev)
  end
  function t:declare(entries)
    if self.main.declare then
      self.main:declare(entries)
    end
    self.files:declare(entries)
  end
  function t:reopen()
    self.files:reopen()
  end
  function t:close()
    self.files:close()
  end
  t.format = writer.format
  return t
end

return M
