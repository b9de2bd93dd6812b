-- orch ui's pure parts (keys, frames, the tree, the progress line) and its loop against a fake
-- control socket and a fake terminal: every way out, an error in the view included, gives
-- the terminal back.
local keys = require 'orch.cli.ui.keys'
local view = require 'orch.cli.ui.view'
local progress = require 'orch.cli.progress'

-- The frame as the rows a terminal would show: each row from its cursor move on, escape
-- sequences dropped (the cursor parked at the end is not a row).
local function rows_of(frame)
  local rows, cur = {}, nil
  frame = frame:gsub('\27%[%d+;1H$', '')
  for piece in frame:gmatch('\27%[[%d;?]*%a[^\27]*') do
    local r = piece:match('^\27%[(%d+);1H')
    if r then
      cur = tonumber(r)
      rows[cur] = ''
    end
    if cur then
      rows[cur] = rows[cur] .. piece:match('^\27%[[%d;?]*%a(.*)$')
    end
  end
  return rows
end

local ENTRIES = {
  { id = 'db', kind = 'daemon', result = 'success', pid = 101, uptime = 65000, restarts = 0,
    requires = {}, visible = true, health = { result = 'success', message = 'accepting' } },
  { id = 'migrate', kind = 'oneshot', result = 'success', restarts = 0, requires = { 'db' },
    visible = false, lastExit = { code = 0 } },
  { id = 'web', kind = 'daemon', result = 'waiting', restarts = 2, requires = { 'migrate' },
    waitingOn = { 'migrate' },
    visible = true, message = 'a very long message that goes on and on past the right edge '
      .. 'of any reasonable terminal window, and then some more' },
  { id = 'probe', kind = 'health', result = 'failure', requires = { 'web', 'db' },
    waitingOn = { 'web' },
    visible = true },
}

describe('orch ui keys', function()
  it('turns raw bytes into key names, keeping a cut escape sequence', function()
    local k, rest = keys.parse('\27[A\27[Bq\r/\3\26\127\27[5~x\27')
    assert.same({ 'up', 'down', 'q', 'enter', '/', 'ctrl-c', 'ctrl-z', 'backspace', 'pgup',
      'x', 'esc' }, k)
    assert.equal('', rest)
    k, rest = keys.parse('S\27[')
    assert.same({ 'S' }, k)
    assert.equal('\27[', rest)
    k = keys.parse(rest .. 'B')
    assert.same({ 'down' }, k)
    assert.same({ 'é' }, (keys.parse('é')))
  end)
end)

describe('orch ui view', function()
  local st
  before_each(function()
    st = { orch = { name = 'shop', pid = 7, phase = 'running', uptime = 1000, ready = 2,
      total = 4 }, list = ENTRIES, selected = 3, mode = 'table', hidden_count = 1,
      show_hidden = true, logs = { { id = 'db', line = 'db up', stream = 'stdout' },
      { id = 'web', line = 'oops\27[31m', stream = 'stderr' } }, id_width = 7 }
  end)

  it('fills exactly 80x24, each row at most 80 columns', function()
    local rows = rows_of(view.frame(st, 80, 24))
    for r = 1, 24 do
      assert.is_string(rows[r], 'row ' .. r)
      assert.is_true((utf8.len(rows[r]) or #rows[r]) <= 80, 'row ' .. r .. ': ' .. rows[r])
    end
    assert.is_nil(rows[25])
    assert.matches('^orch shop %(pid 7%): running, up 1s, 2/4 ready', rows[1])
    assert.matches('^ID +KIND +STATE', rows[2])
    assert.matches('^web +daemon +waiting', rows[5])
    assert.matches('~$', rows[5]) -- the long message cut at the edge
    assert.equal(80, #rows[7]) -- the rule of the log pane
    assert.matches('^db      | db up', rows[8])
    assert.matches('^web     | oops %[31m$', rows[9]) -- control bytes never reach the screen
    assert.matches('^q quit', rows[24])
  end)

  it('keeps the selection in view when the table is longer than the screen', function()
    local many = {}
    for i = 1, 40 do
      many[i] = { id = ('e%02d'):format(i), kind = 'daemon', result = 'success', requires = {} }
    end
    st.list, st.selected = many, 37
    local rows = rows_of(view.frame(st, 80, 24))
    local seen = false
    for r = 1, 24 do
      seen = seen or rows[r]:match('^e37 ') ~= nil
    end
    assert.is_true(seen)
  end)

  it('draws the dependency tree, each entry under what it requires', function()
    local lines = {}
    for i, t in ipairs(view.tree(ENTRIES)) do
      lines[i] = t[1] .. t[2].id
    end
    assert.same({ 'db', '|-- migrate', '|   `-- web', '|       `-- probe', '`-- probe' },
      lines)
    st.mode = 'tree'
    local rows = rows_of(view.frame(st, 80, 24))
    assert.matches('^|   `%-%- web  waiting', rows[4])
  end)

  it('shows a prompt, the help, a message', function()
    st.prompt, st.input = 'filter: ', 'we'
    assert.matches('filter: we_$', rows_of(view.frame(st, 80, 24))[24])
    st.prompt, st.message = nil, 'restarting: web'
    assert.matches('^restarting: web$', rows_of(view.frame(st, 80, 24))[24])
    st.mode = 'help'
    assert.matches('^orch ui: keys$', rows_of(view.frame(st, 80, 24))[2])
  end)
end)

describe('the progress line', function()
  it('says what is ready and what is waited on, within the width', function()
    local text = progress.text(ENTRIES, 200)
    assert.equal('orch: starting, 2/4 ready; waiting on web (waiting: migrate), probe '
      .. '(failure: web)', text)
    assert.equal(59, #progress.text(ENTRIES, 60))
  end)

  it('stays under the log lines and clears once everything is ready', function()
    local out = {}
    local ready = 1
    local sink = {
      counts = function()
        return ready, 2
      end,
      snapshot = function()
        return { { id = 'a', result = 'success' },
          { id = 'b', result = ready == 2 and 'success' or 'starting' } }
      end,
    }
    local p = progress.new(function(s)
      out[#out + 1] = s
    end, sink, function()
      return 80
    end)
    p.update()
    p.write('orch | a line\n')
    local screen = table.concat(out)
    assert.equal('\r\27[K\27[2morch: starting, 1/2 ready; waiting on b (starting)\27[0m'
      .. '\r\27[Korch | a line\n\27[2morch: starting, 1/2 ready; waiting on b (starting)'
      .. '\27[0m', screen)
    ready = 2
    p.update()
    assert.equal('\r\27[K', out[#out])
    out = {}
    p.write('orch | after\n')
    p.update()
    assert.same({ 'orch | after\n' }, out)
  end)
end)

insulate('orch ui loop', function()
  local helpers = require 'spec.support.helpers'
  helpers.real()
  local sched = require 'orch.runtime.sched'

  -- A control client that answers the first request, then waits for ever.
  local function fake_clients()
    package.loaded['orch.control.client'] = {
      connect = function()
        local first
        return {
          send = function(_, req)
            if req.cmd == 'status' then
              first = { ok = true, type = 'status', orch = { name = 'x', phase = 'running' },
                entries = ENTRIES }
            else
              first = { ok = true, type = 'logs', ids = {} }
            end
          end,
          recv = function()
            if first then
              local f = first
              first = nil
              return f
            end
            sched.event():wait()
          end,
          close = function() end,
        }
      end,
    }
    package.loaded['orch.cli.ui.app'] = nil
    return require 'orch.cli.ui.app'
  end

  local function fake_terminal()
    local t = { frames = {}, closed = false, active = true }
    function t.size()
      return 80, 24
    end
    function t.write(_, s)
      t.frames[#t.frames + 1] = s
    end
    function t.on_input(_, fn)
      t.input = fn
    end
    function t.leave()
      t.active = false
    end
    function t.enter()
      t.active = true
    end
    function t.close()
      t.closed, t.active = true, false
    end
    return t
  end

  it('quits on q with the terminal closed', function()
    local app = fake_clients()
    local term = fake_terminal()
    local res = helpers.run(function()
      sched.spawn(function()
        require('spec.support.wait').wait_until(function()
          return term.input
        end, 5000)
        term.input('\27[Bq')
      end)
      return app.run({}, { open_terminal = function()
        return term
      end })
    end, 10000)
    assert.equal('quit', res)
    assert.is_true(term.closed)
    assert.matches('db', table.concat(term.frames))
  end)

  it('gives the terminal back when the view fails', function()
    local app = fake_clients()
    local term = fake_terminal()
    local ui_view = require 'orch.cli.ui.view' -- the instance the app uses
    local real_frame = ui_view.frame
    ui_view.frame = function()
      error('boom in the view')
    end
    local res, err = helpers.run(function()
      return app.run({}, { open_terminal = function()
        return term
      end })
    end, 10000)
    ui_view.frame = real_frame
    assert.is_nil(res)
    assert.matches('orch ui: .*boom in the view', err)
    assert.is_true(term.closed)
  end)
end)
