---@meta orch
-- luacheck: no unused, no max line length
-- LuaCATS definitions of the orch SDK for lua-language-server: completion and checks of a
-- main.lua, as the seed's TypeScript types give. Never loaded at run time (`require 'orch'` is
-- lua/orch/init.lua); README "Editor support" says how to point an editor at it. The option keys
-- are those of lua/orch/graph/validate.lua (ENTRY_KEYS, READY_KEYS) and
-- lua/orch/entries/validate_exec.lua (EXEC_KEYS, SUB_KEYS), and README "Lua API reference";
-- spec/meta_spec.lua keeps them in step.
-- One file over the size guide on purpose: it holds declarations only (no code runs), it is the
-- one `---@meta orch` file an editor is pointed at (README "Editor support" names this path),
-- and meta_spec reads it whole to check every class and option key against the validators; a
-- cut would give editors and that check several files to find, for no code to separate.

-- Results -----------------------------------------------------------------------------------

---@alias orch.Result 'success'|'failure'|'starting'|'waiting'|'loading'|'disabled'

---What `ready.fn` and the health helpers return. Extra fields go on to `effects.setHealth`.
---@class orch.HealthResult
---@field result orch.Result
---@field message? string|number|boolean

---`orch.exec`'s result.
---@class orch.ExecResult
---@field exitCode integer|nil nil when a signal ended the process
---@field signal string|nil e.g. 'SIGKILL'
---@field stdout string
---@field stderr string
---@field timedOut boolean

-- Options of the add* methods ---------------------------------------------------------------

---A command from the subcontainer's image metadata (`orch.useEntrypoint`).
---@class orch.UseEntrypoint

---@alias orch.Command string|string[]|orch.UseEntrypoint a string runs under /bin/sh -c

---Image metadata: defaults for the process and the command of `useEntrypoint`. A table with a
---metatable is a provider object such as `orch.SubContainer.of(...)` (not checked; its
---`destroy` method is called after use).
---@class orch.Subcontainer
---@field image? any descriptive only
---@field name? any descriptive only
---@field entrypoint? string[]
---@field cmd? string[]
---@field env? table<string, string|false>
---@field user? string|integer user name, uid or "uid:gid"
---@field workdir? string

---What `exec.fn` gets: set when the entry is stopped.
---@class orch.Abort
---@field aborted boolean
local Abort = {}

---Call `cb` when the entry is stopped.
---@param cb fun()
function Abort:onAbort(cb) end

---A command to run: `exec` without `fn` (also what `exec.fn` may return).
---@class orch.CommandSpec
---@field command orch.Command
---@field env? table<string, string|false> overlaid on orch's environment; false removes
---@field cwd? string default: orch's working directory (or subcontainer.workdir)
---@field user? string|integer user name, uid or "uid:gid"
---@field sigtermTimeout? integer ms between SIGTERM and SIGKILL (default 30000)
---@field runAsInit? boolean PID 1 of a new PID namespace (default false)
---@field onStdout? fun(chunk: string) raw output chunks
---@field onStderr? fun(chunk: string) raw output chunks
---@field log? orch.LogFile the entry's own rotated log file (beside `fn`, not returned by it)
---@field stopSignal? string see orch.Exec
---@field stopCommand? orch.Command see orch.Exec
---@field reloadSignal? string see orch.Exec
---@field reloadOnChange? 'restart'|'signal' see orch.Exec
---@field envFile? string see orch.Exec
---@field limits? orch.Limits see orch.Exec

---`exec.log`: the entry's own log file (orch.entries.validate_log); every key optional.
---@class orch.LogFile
---@field file? string default `<id>.log` in `orch run --log-dir`; relative: in that directory
---@field maxSize? integer|string bytes, or '256K', '10M', '1G' (default '10M')
---@field keep? integer rotated files kept, 0..1000 (default 5)

---`exec`: either `command` (with the other keys) or `fn` (with `sigtermTimeout` only).
---@class orch.Exec
---@field command? orch.Command
---@field fn? fun(subcontainer: orch.Subcontainer|nil, abort: orch.Abort): orch.CommandSpec|nil
---@field env? table<string, string|false> overlaid on orch's environment; false removes
---@field cwd? string default: orch's working directory (or subcontainer.workdir)
---@field user? string|integer user name, uid or "uid:gid"
---@field sigtermTimeout? integer ms between SIGTERM and SIGKILL (default 30000)
---@field runAsInit? boolean PID 1 of a new PID namespace (default false)
---@field onStdout? fun(chunk: string) raw output chunks
---@field onStderr? fun(chunk: string) raw output chunks
---@field log? orch.LogFile the entry's own rotated log file
---@field restart? 'always'|'on-failure'|'never' when an exit is restarted (default 'always'; a oneshot: 'on-failure')
---@field maxRestarts? integer past this many restarts (within restartWindow) the entry is failed (default: no limit)
---@field restartWindow? integer ms in which maxRestarts count (default: every restart counts)
---@field backoff? orch.Backoff delays between restarts
---@field stopSignal? string the signal a stop sends first (default 'SIGTERM'), e.g. 'SIGINT'
---@field stopCommand? orch.Command run instead of the stop signal ($MAINPID set), within sigtermTimeout
---@field reloadSignal? string sent by `orch signal <id> reload`, e.g. 'SIGHUP'
---@field reloadOnChange? 'restart'|'signal' on a reload that changed only env/envFile: restart (default) or send reloadSignal to the running process
---@field envFile? string NAME=value lines (# comments) merged under `env`; read at each spawn
---@field limits? orch.Limits resource limits of each incarnation

---Delays between restarts: the first is `initial`, each next `min(previous * factor + step, max)`.
---@class orch.Backoff
---@field initial? integer ms before the first restart (default 0)
---@field step? integer ms added per restart (default 1000)
---@field factor? number multiplies the previous delay, 1 to 100 (default 1; 2 = exponential)
---@field max? integer ms cap (default 30000)
---@field resetAfter? integer ms of uptime that reset the delay to `initial` (default 30000)

---Resource limits: cgroup v2 (`memory`, `cpu`, `pids`) and rlimits (`nofile`, `core`).
---@class orch.Limits
---@field memory? string|integer memory.max: '512M', '2G' or bytes
---@field cpu? number cpu.max in CPUs: 1.5 is one and a half
---@field pids? integer pids.max
---@field nofile? integer RLIMIT_NOFILE (soft and hard)
---@field core? integer RLIMIT_CORE in bytes (0: no core dumps)

---A trigger: called once per health session; `next()` may sleep and returns true to probe now,
---false or nil to stop probing.
---@alias orch.Trigger fun(getInput: fun(): { lastResult: orch.HealthResult|nil }): (fun(): boolean|nil)

---`ready`: how the entry's readiness is probed and shown.
---@class orch.Ready
---@field display string|false the name users see; false hides the check
---@field fn? fun(): orch.HealthResult the probe (may yield); optional with notify/notifyFd/logLine/onLine
---@field gracePeriod? integer ms after a start when a failure reads `starting` (default 5000)
---@field trigger? orch.Trigger when probes run (default orch.trigger.defaultTrigger)
---@field timeout? integer ms a `fn` call may run (default 60000; 0: no limit)
---@field restartAfter? integer that many failures in a row of a daemon's check (after the grace period) restart it (default: never)
---@field failureThreshold? integer failures in a row before the result becomes failure (default 1)
---@field successThreshold? integer successes in a row before the result becomes success (default 1)
---@field notify? boolean readiness by sd_notify: a private NOTIFY_SOCKET; READY=1 is success
---@field notifyFd? integer readiness by s6's notification-fd: the service writes a newline to this descriptor (3 to 1023) when ready
---@field watchdog? integer ms within which a WATCHDOG=1 must come after READY=1 (needs notify)
---@field logLine? string a Lua pattern: the first output line matching it means ready
---@field onLine? fun(stream: 'stdout'|'stderr', line: string): orch.HealthResult|orch.Result|nil

---What an entry does when a requirement becomes unhealthy while it runs
---(`requires = {db = {onUnhealthy = 'ignore'}}`); it always waits for it at start.
---@class orch.Edge
---@field onUnhealthy? 'stop'|'ignore'|'restart' stop it (default), keep it running, or keep it running and restart it when the requirement is back
---@field after? integer ms of unhealthiness tolerated before reacting (default 0)

---`addDaemon` options.
---@class orch.DaemonOptions
---@field requires string[]|table<string|integer, string|orch.Edge> ids declared earlier in the chain ({} for none); an id may map to its edge options
---@field exec? orch.Exec required unless `daemon`
---@field daemon? orch.Daemon instead of `subcontainer` + `exec`
---@field ready? orch.Ready without it: ready once spawned, never probed, hidden
---@field subcontainer? orch.Subcontainer

---`addOneshot` options.
---@class orch.OneshotOptions
---@field requires string[]|table<string|integer, string|orch.Edge> ids declared earlier in the chain ({} for none); an id may map to its edge options
---@field exec orch.Exec
---@field subcontainer? orch.Subcontainer

---`addHealthCheck` options.
---@class orch.HealthCheckOptions
---@field requires string[]|table<string|integer, string|orch.Edge> ids declared earlier in the chain ({} for none); an id may map to its edge options
---@field ready orch.Ready

-- Effects -----------------------------------------------------------------------------------

---@class orch.HealthReport
---@field id string
---@field name string
---@field result orch.Result
---@field message string|nil

---@class orch.StateEvent
---@field id string
---@field kind 'daemon'|'oneshot'|'health'
---@field result orch.Result
---@field message string|nil
---@field visible boolean

---@class orch.ProcessEvent
---@field id string
---@field event 'spawn'|'exit'|'spawn-error'|'term'|'kill'|'gave-up'|'restart'|'signal'
---@field pid integer|nil
---@field delay integer|nil the backoff (ms) waited before this spawn, on a restart
---@field code integer|nil
---@field signal string|nil
---@field message string|nil
---@field restarts integer|nil
---@field clean boolean|nil

---The sink a chain reports to; every function is optional and called as a plain function.
---@class orch.Effects
---@field setHealth? fun(h: orch.HealthReport)
---@field onState? fun(s: orch.StateEvent)
---@field onProcess? fun(p: orch.ProcessEvent)
---@field output? fun(id: string, stream: 'stdout'|'stderr', chunk: string)
---@field log? fun(level: string, message: string)

-- The chain ---------------------------------------------------------------------------------

---The error `runUntilSuccess` raises (its tostring is the message).
---@class orch.RunError
---@field code 'timeout'|'terminated'
---@field message string
---@field ids string[]
---@field entries table[]

---@class orch.EntryInfo
---@field id string
---@field kind 'daemon'|'oneshot'|'health'
---@field requires string[]
---@field display string|false|nil
---@field visible boolean
---@field exec string|nil a one-line summary
---@field ready table|nil

---@class orch.EntryState
---@field id string
---@field kind 'daemon'|'oneshot'|'health'
---@field result orch.Result|nil
---@field message string|nil
---@field pid integer|nil
---@field restarts integer
---@field lastExit { code: integer|nil, signal: string|nil, time: number, message: string }|nil
---@field since number|nil
---@field running boolean|nil
---@field visible boolean
---@field display string|false|nil

---The fluent chain (`orch.Daemons.of{effects = ...}`); each `add*` returns a new chain.
---@class orch.Daemons
local Daemons = {}

---An empty chain.
---@param options? { effects: orch.Effects|nil }|orch.Effects
---@return orch.Daemons
function Daemons.of(options) end

---Add a long-running daemon.
---@param id string unique; a visible entry's id matches ^[a-z0-9]+(-[a-z0-9]+)*$
---@param options orch.DaemonOptions|fun(): orch.DaemonOptions|nil nil skips the entry
---@return orch.Daemons
function Daemons:addDaemon(id, options) end

---Add a oneshot: it must exit 0 before its dependents start.
---@param id string
---@param options orch.OneshotOptions|fun(): orch.OneshotOptions|nil nil skips the entry
---@return orch.Daemons
function Daemons:addOneshot(id, options) end

---Add a standalone health check (no process).
---@param id string
---@param options orch.HealthCheckOptions|fun(): orch.HealthCheckOptions|nil nil skips it
---@return orch.Daemons
function Daemons:addHealthCheck(id, options) end

---Start every entry whose requirements are met; returns at once.
---@return orch.Daemons
function Daemons:build() end

---Stop everything in reverse dependency order.
---@async
function Daemons:term() end

---Build, wait until every entry is `success` at once, term(), return true; raises
---`orch.RunError` on timeout.
---@async
---@param timeout? integer|false ms; nil, false or 0 waits for ever
---@return true
function Daemons:runUntilSuccess(timeout) end

---@return orch.EntryInfo[]
function Daemons:entries() end

---@return orch.EntryState[]
function Daemons:states() end

---Stop the entry and what requires it (they stay stopped until startEntry).
---@async
---@param id string
---@return string[] ids the ids stopped, the entry first
function Daemons:stopEntry(id) end

---@param id string
---@return string[] ids
function Daemons:startEntry(id) end

---@async
---@param id string
---@return string[] ids
function Daemons:restartEntry(id) end

---@param id string
---@param sig string|integer 'SIGHUP', 'HUP' or a number
---@return integer|nil pid
---@return string|nil why not
function Daemons:signalEntry(id, sig) end

---A main whose entries come from `fn(ctx)` (`ctx = {effects, reload, changed, rerun}`), rerun
---on demand and on reload and applied by difference: unchanged entries keep running.
---@param fn fun(ctx: table): orch.Daemons
---@return table dynamic `build`, `term`, `rerun(info)`, `detach()`, `preview(effects)`, `chain()` and the chain's methods
function Daemons.dynamic(fn) end

---The validated entries in declaration order (read only).
---@return table[]
function Daemons:specs() end

---Stop the entries of `stale` (set of ids), those absent from `specs` and what requires them,
---dependents first, then make `specs` the entries; the others keep running.
---@async
---@param specs table[]
---@param stale table<string, true>
---@return string[] ids stopped, in order
function Daemons:replaceEntries(specs, stale) end

---SIGKILL every live process group at once.
function Daemons:kill_all() end

---Upstream's detach(): a chain the script builds while it is evaluated is no longer stopped
---when a reload replaces that evaluation (orch still stops it when orch stops). Idempotent.
---@return orch.Daemons self
function Daemons:detach() end

---Whether detach() was called.
---@return boolean
function Daemons:detached() end

---The runtime entry of `id` in a built chain (its HealthDaemon: `id`, `kind`, `deps`,
---`dependents`, `satisfied()`), or nil.
---@param id string
---@return table|nil
function Daemons:entry(id) end

---A pre-built daemon for `addDaemon(id, {daemon = d, ready = ..., requires = ...})`.
---@class orch.Daemon
local Daemon = {}

---@param subcontainer orch.Subcontainer|nil
---@param exec orch.Exec
---@return orch.Daemon
---@overload fun(exec: orch.Exec): orch.Daemon
---@overload fun(effects: orch.Effects, subcontainer: orch.Subcontainer|nil, exec: orch.Exec): orch.Daemon
function Daemon.of(subcontainer, exec) end

-- Health checks -----------------------------------------------------------------------------

---@class orch.PortOptions
---@field successMessage? string default 'Port <port> is listening'
---@field errorMessage? string default 'Port <port> is not listening'
---@field timeoutMessage? string accepted, unused
---@field timeout? integer accepted, unused

---@class orch.WebOptions
---@field timeout? integer ms (default 1000)
---@field successMessage? string default 'Reached <url>'
---@field errorMessage? string default 'Error while fetching URL: <url>'
---@field expectStatus? integer|integer[] default: any status
---@field insecure? boolean skip TLS certificate checks (default false)

---@class orch.ScriptOptions
---@field timeout? integer ms (default 30000)
---@field errorMessage? string default 'Error while running command: <command>'
---@field message? string|fun(stdout: string): string

---Health-check helpers for `ready.fn` (a leading `effects` argument is accepted and ignored).
---@class orch.healthCheck
local healthCheck = {}

---Success when something listens on `port` (TCP LISTEN or bound UDP, IPv4 or IPv6).
---@param port integer
---@param options? orch.PortOptions
---@return orch.HealthResult
---@overload fun(effects: orch.Effects, port: integer, options?: orch.PortOptions): orch.HealthResult
function healthCheck.checkPortListening(port, options) end

---GET `url`: any HTTP response is a success unless `expectStatus` says otherwise.
---@async
---@param url string
---@param options? orch.WebOptions
---@return orch.HealthResult
---@overload fun(effects: orch.Effects, url: string, options?: orch.WebOptions): orch.HealthResult
function healthCheck.checkWebUrl(url, options) end

---Run `command`; exit 0 in time is a success, otherwise it raises
---`{result = 'failure', message = errorMessage}`.
---@async
---@param command string|string[]
---@param subcontainer? orch.Subcontainer
---@param options? orch.ScriptOptions
---@return orch.HealthResult
function healthCheck.runHealthScript(command, subcontainer, options) end

-- Triggers ----------------------------------------------------------------------------------

---@class orch.trigger
local trigger = {}

---The default: fast until the first success of the session, then statusTrigger(30000, ...).
---@type orch.Trigger
trigger.defaultTrigger = nil

---`ms` before every probe.
---@param ms integer
---@return orch.Trigger
function trigger.cooldownTrigger(ms) end

---The interval of the last result, else `defaultMs`.
---@param defaultMs integer
---@param intervals? table<orch.Result, integer>
---@return orch.Trigger
function trigger.statusTrigger(defaultMs, intervals) end

---@param o { beforeFirstSuccess: orch.Trigger, afterFirstSuccess: orch.Trigger }
---@return orch.Trigger
function trigger.changeOnFirstSuccess(o) end

---The trigger of the current result, else `default` (required).
---@param o table<orch.Result|'default', orch.Trigger>
---@return orch.Trigger
function trigger.lastStatus(o) end

---@param o { duringSuccess: orch.Trigger, duringError: orch.Trigger }
---@return orch.Trigger
function trigger.successFailure(o) end

---What a trigger made by these functions is (`{name = 'cooldownTrigger', ms = 1000}`, ...), for
---exporters; nil for a trigger written by hand.
---@param t orch.Trigger
---@return table|nil
function trigger.describe(t) end

-- Tasks and the module ----------------------------------------------------------------------

---@class orch.Task
local Task = {}

---Wait until the task ends: true, results... or false, err.
---@async
---@return boolean ok
---@return any ...
function Task:wait() end

---Wait until the task ends; re-raise its error.
---@async
---@return any ...
function Task:join() end

---@return boolean
function Task:finished() end

function Task:cancel() end

---A mount of a subcontainer, as `Mounts:build()` and `SubContainer:describe()` give it.
---@class orch.MountDescriptor
---@field type 'volume'|'assets'|'dependency'|'backup'
---@field volumeId? string
---@field packageId? string
---@field subpath? string
---@field mountpoint string absolute path inside the subcontainer
---@field readonly boolean enforced (a read-only bind)
---@field filetype 'file'|'directory'|'infer'

---@class orch.MountOptions
---@field volumeId? string volume and dependency mounts: `<data>/volumes/<volumeId>`
---@field packageId? string dependency mounts: the data directory of that orch, beside ours
---@field subpath? string a path under the source
---@field mountpoint string absolute path inside the subcontainer
---@field readonly? boolean default false (dependency: true; assets: always)
---@field filetype? 'file'|'directory'|'infer' default 'directory'; a missing source is made so

---@class orch.MountsModule
local Mounts = {}

---A new, empty mount list.
---@return orch.MountsBuilder
function Mounts.of() end

---Whether `v` is a Mounts builder.
---@return boolean
function Mounts.is(v) end

---The bwrap arguments binding `list` from a data directory (used by orch.subcontainer).
---@return string[]|nil, string|nil
function Mounts.bind_args(list, data) end

---@class orch.MountsBuilder
local MountsBuilder = {}

---@param o orch.MountOptions
---@return orch.MountsBuilder
function MountsBuilder:mountVolume(o) end

---@param o orch.MountOptions
---@return orch.MountsBuilder
function MountsBuilder:mountAssets(o) end

---@param o orch.MountOptions
---@return orch.MountsBuilder
function MountsBuilder:mountDependency(o) end

---@param o orch.MountOptions
---@return orch.MountsBuilder
function MountsBuilder:mountBackups(o) end

---@return orch.MountDescriptor[]
function MountsBuilder:build() end

---@class orch.SubContainerOptions
---@field imageId string an image of the data directory (`orch image import`)
---@field sharedRun? boolean bind the host's /run (default false)

---`sub:describe()`: what a subcontainer is (its identity for a reload).
---@class orch.SubContainerDescription
---@field imageId string
---@field name? string
---@field sharedRun boolean
---@field mounts orch.MountDescriptor[]

---@class orch.SubExecOptions
---@field env? table<string, string|false> over the image's env
---@field user? string|integer default: the image's user, else root
---@field cwd? string default: the image's workdir, else /
---@field stdout? 'inherit'|'ignore'|fun(chunk: string|nil) spawn/launch only
---@field stderr? 'inherit'|'ignore'|fun(chunk: string|nil) spawn/launch only
---@field sigterm_timeout? integer spawn/launch only (ms)

---@class orch.SubExecResult
---@field exitCode integer|nil
---@field exitSignal string|nil e.g. 'SIGKILL' after timeoutMs
---@field stdout string
---@field stderr string

---@class orch.SubContainerModule
local SubContainerModule = {}

---A lazy subcontainer: it starts on first use or `hold()`.
---@param effects orch.Effects|nil `effects.dataDir` overrides the run's data directory
---@param opts orch.SubContainerOptions
---@param mounts? orch.MountsBuilder|orch.MountDescriptor[]
---@param name? string its name (and hostname)
---@return orch.SubContainer
function SubContainerModule.of(effects, opts, mounts, name) end

---A subcontainer started at once (a dynamic builder refuses those).
---@async
---@return orch.SubContainer
function SubContainerModule.eager(effects, opts, mounts, name) end

---Whether `v` is a SubContainer object.
---@return boolean
function SubContainerModule.is(v) end

---A subcontainer (its field `destroyCount` says how often it was torn down: 0 or 1).
---@class orch.SubContainer
local SubContainer = {}

---@return orch.SubContainerDescription
function SubContainer:describe() end

---@return boolean
function SubContainer:isEager() end

---The host path of its root filesystem (starts it).
---@async
---@return string
function SubContainer:rootfs() end

---The host path of `p` inside it (starts it).
---@async
---@return string
function SubContainer:subpath(p) end

---The image's config: user, workdir, env, entrypoint, cmd.
---@async
---@return table
function SubContainer:imageConfig() end

---The image's entrypoint followed by `override` or its cmd.
---@async
---@param override? string[]
---@return string[]|nil, string|nil
function SubContainer:useEntrypoint(override) end

---What orch.process.spawn needs to run a process in it (used by the entries).
---@async
---@return table|nil, string|nil
function SubContainer:spawn_plan(o) end

---Run `cmd` to completion inside (a string runs under sh -c); `timeoutMs` SIGKILLs it.
---@async
---@param cmd string|string[]
---@param opts? orch.SubExecOptions
---@param timeoutMs? integer
---@return orch.SubExecResult
function SubContainer:exec(cmd, opts, timeoutMs) end

---As `exec`, but raises unless the exit code is 0.
---@async
---@return orch.SubExecResult
function SubContainer:execFail(cmd, opts, timeoutMs) end

---Start `cmd` inside; the orch.process Command.
---@async
---@param opts? orch.SubExecOptions
function SubContainer:spawn(cmd, opts) end

---Start `cmd` as PID 1 of a PID namespace of its own, in its filesystem (runAsInit).
---@async
---@param opts? orch.SubExecOptions
function SubContainer:launch(cmd, opts) end

---Keep it alive (starting it if lazy); returns the idempotent release function.
---@return fun()
function SubContainer:hold() end

---Tear it down now, or when the last hold is released. Idempotent.
function SubContainer:destroy() end

---Whether its leader runs.
---@return boolean
function SubContainer:running() end

---The leader's pid (nil unless it runs).
---@return integer|nil
function SubContainer:leaderPid() end

---@class orch.ExecOptions
---@field env? table<string, string|false>
---@field cwd? string
---@field user? string|integer
---@field timeout? integer|false ms (default 30000; false: none), then the group is SIGKILLed

---@class orch
---@field Daemons orch.Daemons
---@field Daemon orch.Daemon
---@field healthCheck orch.healthCheck
---@field trigger orch.trigger
---@field SubContainer orch.SubContainerModule
---@field Mounts orch.MountsModule
---@field ABORTED any the error raised in a task aborted while it waits
local orch = {}

---A command from the subcontainer's image metadata: `entrypoint` then `override`, or `cmd`.
---@param override? string[]
---@return orch.UseEntrypoint
function orch.useEntrypoint(override) end

---The SDK's wrapper for main: returns `fn`, which orch calls with `ctx` (`dataDir`: the data
---directory of `orch run --data`, where images and volumes live).
---@generic F: fun(ctx: { effects: orch.Effects, args: string[], dataDir: string? }): orch.Daemons
---@param fn F
---@return F
function orch.setupMain(fn) end

---Sleep `ms` milliseconds.
---@async
---@param ms integer
function orch.sleep(ms) end

---Start `fn(...)` as a new task.
---@param fn async fun(...): ...
---@param ... any
---@return orch.Task
function orch.spawn(fn, ...) end

---Run a command to completion, collecting its output.
---@async
---@param command string|string[] a string runs under /bin/sh -c
---@param opts? orch.ExecOptions
---@return orch.ExecResult|nil result
---@return string|nil message
---@return string|nil code
function orch.exec(command, opts) end

---Run `fn` as the root task and drive the loop until it ends (specs and tools).
---@param fn async fun(...): ...
---@param opts? { timeout: integer|nil }
---@param ... any
---@return any ...
function orch.run(fn, opts, ...) end

---Loop time in milliseconds.
---@return integer
function orch.now() end

return orch
