--- Reloads of `orch run`: SIGHUP, `orch reload` and `--watch` re-evaluate main.lua and apply
-- the difference through orch.graph.reconcile (or, with `--full` or a change of kind of main,
-- replace the whole graph); requests during a reload coalesce into one more. Installed as
-- methods of orch.cli.run's Run.
-- @module orch.cli.run_reload
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
-- loaded on first use: a run without reloads or --watch never needs them
local reconcile = util.lazy('orch.graph.reconcile')
local Dynamic = require 'orch.graph.dynamic'
local evaluate = require 'orch.cli.evaluate'
local read_hooks = util.lazy('orch.cli.read_hooks')
local watch_files = util.lazy('orch.cli.watch_files')
local count_kinds = require('orch.cli.check').count_kinds

local message_of = evaluate.message_of

local M = {}

--- Add the reload methods to the class `Run`.
function M.install(Run)
  -- Reload: re-evaluate the script and apply it by difference (orch.graph.reconcile): only the
  -- entries whose configHash changed, and what requires them, restart. A script that fails to
  -- evaluate or validate leaves the graph as it is. With `full`, or when the script changed
  -- between a chain and Daemons.dynamic, the whole graph is replaced (Run:reload_full).
  -- Returns ok and a report (`{kept, restarted, added, removed, why}`) or a message.
  function Run:reload(full, changed, why)
    self:log(('%s: reloading %s%s'):format(why or 'SIGHUP', self.script, full and ' (full)' or ''))
    local ctx = self:ctx()
    ctx.reload = self.reloads + 1 -- the reload in progress (a failed one is tried again as such)
    ctx.changed = changed or {}
    local scope = evaluate.new_scope()
    scope.tracker = self.opts.tracker -- for the chains the script builds itself
    scope.reads = self.opts.watch and {} or nil
    scope.no_entries = true -- listed once applied (Run:applied), not twice
    self.new_scope = scope
    local cpu0 = os.clock()
    local finished, chain, entries = self:race(function()
      return evaluate.evaluate(self.script, self.args, ctx, scope)
    end)
    self.eval_cpu_ms = (os.clock() - cpu0) * 1000
    if not finished then
      evaluate.term_scope(scope) -- what the interrupted script had started
      self.new_scope = nil
      return false, 'orch is stopping'
    end
    if not chain then
      self.new_scope, self.failed_reads = nil, scope.reads
      local msg = message_of(entries)
      self:log('reload failed, the current graph keeps running:\n' .. msg, 'error')
      return false, msg
    end
    if full or Dynamic.is(chain) ~= Dynamic.is(self.chain) then
      return self:reload_full(scope, chain, entries)
    end
    self:set_phase('reloading')
    if self.notifier then
      self.notifier:reloading(core.hrtime() // 1000)
    end
    local done
    if Dynamic.is(chain) then
      local restore = self.chain:adopt(chain)
      done = self:in_dynamic_scope(function()
        return self.chain:rerun({ reload = ctx.reload, changed = ctx.changed })
      end)
      done:on_set(function()
        if not done.value[1] then
          restore() -- the old function stays, as the old graph does
        end
      end)
    else
      done = self.reconciler:request(function()
        return chain:specs()
      end)
    end
    done:wait()
    local ok, res = table.unpack(done.value, 1, 2)
    self.new_scope = nil
    if ok then
      self.reloads = self.reloads + 1
      -- the chains the previous evaluation left running (the detached ones go on)
      evaluate.term_scope(self.scope, scope)
      self.scope = scope
    else
      evaluate.term_scope(scope)
    end
    if not self.stop_requested then
      self:set_phase('running')
    end
    if self.notifier then
      self.notifier:reloaded()
    end
    return ok, res
  end

  -- Run `fn` in a task whose scope the runs of a Daemons.dynamic function
  -- inherit: with --watch, the files they read are recorded there (`self.dyn_reads`), and the
  -- chains they build get orch's effects and tracker.
  function Run:in_dynamic_scope(fn)
    if not self.dyn_scope then
      -- chains the runs build (other than the dynamic's own) are recorded: stopped with orch
      local s = evaluate.new_scope()
      s.reads, s.effects, s.tracker = self.opts.watch and {} or nil, self.sink, self.opts.tracker
      self.dyn_scope = s
    end
    local res
    local task = sched.start({ name = 'dynamic', scope = self.dyn_scope }, function()
      res = table.pack(fn())
    end)
    task:wait()
    return table.unpack(res, 1, res.n)
  end

  -- --watch: watch main.lua and the files in `reads` (path -> module name or true); a change
  -- asks for a reload with `ctx.changed` the paths that changed (modules among them are loaded
  -- again).
  function Run:arm_watch(reads)
    if not self.opts.watch then
      return
    end
    if not self.watcher then
      self.watcher = watch_files.new(function(changed)
        if self.stop_requested then
          return
        end
        read_hooks.forget_modules(self.watch_reads, changed)
        local list = {}
        for path in pairs(changed) do
          list[#list + 1] = path
        end
        table.sort(list)
        self:log(('watch: changed: %s'):format(table.concat(list, ', ')))
        self.reload_changed = self.reload_changed or {}
        for path in pairs(changed) do
          self.reload_changed[path] = true
        end
        self.reload_requested = true
        self.reload_why = self.reload_why or 'watch'
        self.wake:set()
      end)
    end
    local paths = {}
    for k, v in pairs(reads or {}) do
      paths[k] = v
    end
    for k, v in pairs(self.dyn_scope and self.dyn_scope.reads or {}) do
      paths[k] = v
    end
    local script = self.script
    if script:sub(1, 1) ~= '/' then
      script = (core.cwd and core.cwd() or '.') .. '/' .. (script:gsub('^%./', ''))
    end
    paths[script] = paths[script] or true
    self.watch_reads = paths
    for _, why in ipairs(self.watcher:set(paths)) do
      self:log(('watch: cannot watch %s'):format(why), 'warning')
    end
  end

  -- After each reconcile: the entries as they are now, and the log line saying what changed
  -- (kept, restarted and why, added, removed).
  function Run:applied(r)
    local entries = self.chain:entries()
    self.sink:declare(entries)
    if self.phase == 'reloading' then
      self:log(('reloaded: %s; %s (the script took %.0f ms of CPU)'):format(count_kinds(entries),
        reconcile.describe(r), self.eval_cpu_ms or 0))
    else
      self:log(('Daemons.dynamic: %s; %s'):format(count_kinds(entries), reconcile.describe(r)))
      if self.watcher and self.scope then
        self:arm_watch(self.scope.reads) -- what the function read, too
      end
    end
  end

  -- The chain orch runs from now on, and its reconciler.
  function Run:adopt_chain(chain)
    if Dynamic.is(chain) then
      self.reconciler = nil
    else
      self.reconciler = reconcile.new(chain, { effects = self.sink, applied = function(r)
        self:applied(r)
      end })
    end
  end

  -- Serve the reloads asked for (SIGHUP, orch reload, --watch) until none is pending: each
  -- request made during a reload gets the next one (any number of them: exactly one more).
  function Run:serve_reloads()
    while self.reload_requested and not self.stop_requested do
      local waiters, full, changed = self.reload_waiters or {}, self.reload_full_requested,
        self.reload_changed
      local why = self.reload_why
      self.reload_requested, self.reload_waiters, self.reload_full_requested = false, {}, false
      self.reload_changed, self.reload_why = nil, nil
      local ok, res = self:reload(full, changed, why)
      if self.watcher then
        -- what the new script read, or (failed) what either read: a fix of any of them reloads
        local reads = self.scope.reads
        if not ok then
          reads = {}
          for k, v in pairs(self.watch_reads or {}) do
            reads[k] = v
          end
          for k, v in pairs(self.failed_reads or {}) do
            reads[k] = v
          end
        end
        self:arm_watch(reads)
      end
      self.last_reload = { ok = ok, reloads = self.reloads,
        message = ok and (type(res) == 'table' and reconcile.describe(res) or res) or res }
      if self.status_file then
        self.status_file:write()
      end
      for _, w in ipairs(waiters) do
        w(ok, res)
      end
    end
  end

  --- Ask for a reload (control: `orch reload`); yields until it is done: ok and the report or
  -- the message.
  function Run:request_reload(full, why)
    if self.stop_requested then
      return false, 'orch is stopping'
    end
    if self.opts.until_ready then
      return false, 'reload is not available with --until-ready'
    end
    local ev = sched.event()
    self.reload_waiters = self.reload_waiters or {}
    self.reload_waiters[#self.reload_waiters + 1] = function(ok, res)
      ev:set(ok, res)
    end
    self.reload_requested = true
    self.reload_full_requested = self.reload_full_requested or full
    self.reload_why = self.reload_why or why
    self.wake:set()
    ev:wait()
    return table.unpack(ev.value, 1, 2)
  end

  -- `orch reload --full` (and a reload whose script changed between a chain and
  -- Daemons.dynamic): stop the whole graph, start the new one. Returns ok and a message.
  function Run:reload_full(scope, chain, entries)
    entries = entries or chain:entries()
    self.new_scope = scope
    self.reloads = self.reloads + 1
    self:set_phase('reloading')
    if self.notifier then
      self.notifier:reloading(core.hrtime() // 1000)
    end
    self.new_chain = chain
    self.chain:term()
    -- the chains the previous evaluation (and a Daemons.dynamic function) left running; the
    -- detached ones go on
    evaluate.term_scope(self.scope, scope)
    if self.dyn_scope then
      evaluate.term_scope(self.dyn_scope, scope)
      self.dyn_scope = nil
    end
    if self.stop_requested then
      self.new_chain = nil
      evaluate.term_scope(scope)
      return false, 'orch is stopping'
    end
    self.chain, self.new_chain = chain, nil
    self.scope, self.new_scope = scope, nil
    self.sink:declare(entries, { reset = true })
    chain:build(self:build_opts())
    self:adopt_chain(chain)
    self:log(('reloaded (full): %s'):format(count_kinds(entries)))
    self:set_phase('running')
    if self.notifier then
      self.notifier:reloaded()
    end
    return true, count_kinds(entries)
  end
end

return M
