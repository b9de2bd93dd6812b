--- The help texts of the `orch` command line: `orch --help` and `orch <command> --help`, one
-- per command.
-- @module orch.cli.usage

local USAGE = {
  main = [[
Usage: orch <command> [options] main.lua [args...]

Commands:
  run     evaluate main.lua, start its graph and supervise it until stopped
  check   evaluate and validate main.lua; print its entries in start order
  graph   print the dependency graph (Graphviz dot or Mermaid)
  export  translate the graph to Kubernetes, docker compose or systemd units
  import  translate a docker compose file to a main.lua
  probe   run one entry's readiness check once (or until it passes)
  image   import, list and remove the images subcontainers run from (import|ls|rm)
  test    run the *_spec.lua files next to main.lua with busted, on a simulated world

Control of a running orch (through its control socket):
  status [id]            the state of every entry
  logs [id...] [-n N] [-f]   recent output (from the log files when there are some), then
                             follow; logs --reopen reopens the log files
  stop|start|restart ID  act on one entry and what requires it
  signal ID SIGNAL       signal the entry's process group
  shutdown               stop the orch as SIGTERM does
  reload [--full]        re-evaluate main.lua; restart only what changed
  ui [NAME]              interactive terminal view: entries, logs, keys to act on them

Pictures of a run:
  timeline [FILE|-]      draw a JSON log (orch run --log-format json), or the recent events
                         of a running orch, as a timeline: SVG, or --format term

Options:
  -h, --help     show this help (orch <command> --help for a command)
  -V, --version  print the version

`orch main.lua` is short for `orch run main.lua`.
Exit status: 0 clean, 1 runtime failure, 2 usage error.
]],
  run = [[
Usage: orch run [options] main.lua [args...]

Evaluate main.lua (it returns a Daemons chain, or a function(ctx) returning one), start the
graph and supervise it. Arguments after main.lua are passed to the script (`...`, ctx.args).

Options:
  --until-ready[=MS]    start everything, wait until every entry is ready at once, shut down
                        cleanly and exit 0; exit 1 after MS milliseconds (default 60000,
                        0 = no limit)
  --log-format FORMAT   text (default) or json (one object per line)
  --no-color, --color   never colour the text log (also: NO_COLOR set), or always
  --timestamps          prefix text log lines with the local time
  --status-file PATH    keep PATH holding the state of every entry as JSON, rewritten
                        atomically on every change
  --log-lines N         output lines kept per entry in memory (default 1000)
  --log-dir DIR         also write each entry's output to DIR/<id>.log and orch's events to
                        DIR/orch.log, rotated at 10M keeping 5 (per entry: exec.log)
  --no-contain          do not run in a PID namespace of its own (also: ORCH_CONTAIN=0)
  --name NAME           the name of this orch (default: the name of the script's
                        directory), for its control socket
  --control PATH        the control socket (default /run/orch/NAME.sock as root,
                        $XDG_RUNTIME_DIR/orch/NAME.sock otherwise)
  --no-control          no control socket (also: ORCH_CONTROL=0, unless --control or
                        --name is given)
  --watch               reload when main.lua or a file it read while evaluated changes
  --ui                  show the interactive view (orch ui) instead of the log; q stops
                        orch and its shutdown is logged as usual
  --data DIR            the data directory: images, volumes, assets, backups (default
                        /var/lib/orch/NAME as root, $XDG_DATA_HOME/orch/NAME otherwise)
  -h, --help            show this help

On a terminal (text log, no --ui) a status line under the log shows start-up progress:
entries ready out of total and what is waited on; it is cleared once all are ready.

orch status, logs, stop, start, restart, signal, shutdown and reload talk to the control
socket.

As root, orch runs as PID 1 of a PID namespace of its own, so nothing it started survives it,
even a SIGKILL of orch; pids it reports are those the host sees. Otherwise a watcher process
(orch-relay in watch mode) kills the process groups and cgroups orch leaves when it dies.

Signals: SIGINT/SIGTERM stop the graph in reverse dependency order (exit 0), a second SIGINT
SIGKILLs every process group (exit 1 within 5 s; repeated SIGTERMs are ignored); SIGHUP reloads
main.lua (as orch reload: only the entries that changed restart); SIGQUIT/SIGUSR1 dump the
state of every entry to stderr; SIGUSR2 reopens log files.
]],
  test = [[
Usage: orch test [--timeline DIR] [busted options] [paths...]

Run specs with busted inside orch: the *_spec.lua files next to main.lua in the current
directory, or those given, or those in the given directories, or those next to a given
main.lua. The specs `require 'orch.testing'` to load a main.lua into a simulated world: no
process is started, time is virtual, every command is played by a scripted fake process (see
orch-lua(7), TESTING). Busted's options pass through (-o TAP, -o json, -o junit, --filter...);
the output and the exit status are busted's.

Options:
  --timeline DIR   for each failing test, write the log of its simulated run (as
                   orch run --log-format json writes it) to DIR/<test name>.jsonl, and its
                   timeline picture to DIR/<test name>.svg
  -h, --help       show this help
]],
  check = [[
Usage: orch check [options] main.lua [args...]

Evaluate and validate main.lua without starting anything; print its entries in start order
with their kind, requirements, readiness check and command. Exit 0 when valid, 1 otherwise.

Options:
  --data DIR    the data directory, as for orch run (images the script's subcontainers use)
  --name NAME   the orch's name, for the default data directory (default: the name of the
                script's directory)
  -h, --help    show this help
]],
  graph = [[
Usage: orch graph [--format dot|mermaid] main.lua [args...]

Print the dependency graph of main.lua: oneshots as boxes, daemons as ellipses (rounded in
Mermaid), health checks as hexagons; an arrow goes from a requirement to its dependent.

Options:
  --format FORMAT   dot (default, for Graphviz) or mermaid
  -h, --help        show this help
]],
  export = [[
Usage: orch export k8s|compose|systemd [options] main.lua [args...] [-o DIR]

Evaluate main.lua as orch check does (nothing is started) and translate its graph:
  k8s      one Deployment (a Job when there are only oneshots): oneshots as init containers,
           required daemons as native sidecars gated by a startupProbe, the rest containers
  compose  one service per entry, depends_on with conditions, healthcheck, restart, limits
  systemd  one unit per entry and a target, into DIR (-o is required)
Everything that did not translate exactly is listed on stderr (`<format>: loss: <id>: <field>:
<what>`).

Options:
  -o, --output DIR      write into DIR (k8s: kubernetes.yaml, compose: compose.yaml) instead of
                        stdout
  --strict              any loss is an error: exit 1, nothing written
  --name NAME           the application's name (default: the script's directory)
  --registry PREFIX     prefix image ids with PREFIX/ (k8s, compose)
  --host-image IMAGE    the image host processes and health checks run in (k8s, compose;
                        default debian:bookworm-slim)
  --orch-image          the images hold orch and the script at /orch/main.lua: Lua readiness
                        checks become `orch probe` commands (k8s, compose)
  --orch PATH           the orch binary systemd units call for readiness (default: this one)
  --data DIR            the data directory (as orch run's): systemd units of subcontainers
                        run in its images and volumes
  -h, --help            show this help
]],
  probe = [=[
Usage: orch probe [--wait[=MS]] [--data DIR] main.lua ID [-- args...]

Evaluate main.lua (nothing is started), run the ready.fn of entry ID once and print its result.
With --wait, probe again (when its trigger says) until it succeeds or MS
milliseconds have passed (default: no limit). Exit 0 on success, 1 otherwise. The exported
Kubernetes, compose and systemd checks call it.

Options:
  --wait[=MS]   probe until success (or MS ms)
  --data DIR    the data directory (as orch run's), for checks that run in a subcontainer
  -h, --help    show this help
]=],
  import = [[
Usage: orch import compose FILE

Translate a docker compose file into a readable main.lua on stdout: one addDaemon (addOneshot
for services others wait for with service_completed_successfully) per service, health checks
as runHealthScript, depends_on conditions as requires, restart policies, environment, env_file,
user, working directory, stop signal and grace period, limits. What has no equivalent (build,
networks, published ports, ...) is listed on stderr (`import: loss: <service>: <key>: <what>`).

Options:
  --strict      any loss is an error: exit 1, nothing written
  -h, --help    show this help
]],
  image = [[
Usage: orch image import PATH ID [--ref REF] [--data DIR | --name NAME]
       orch image ls [--json] [--data DIR | --name NAME]
       orch image rm ID... [--data DIR | --name NAME]

The images of a data directory, from which subcontainers (orch.SubContainer) run: each is a
root filesystem, images/ID/rootfs, with its config (user, workdir, env, entrypoint, cmd) in
images/ID/config.json.

  import PATH ID   import PATH as the image ID: an OCI layout directory, an OCI archive or a
                   docker save archive (unpacked with skopeo and umoci, whiteouts included;
                   the image config gives user, workdir, env, entrypoint and cmd), or a plain
                   directory (copied as the root filesystem, with no config). Offline; the
                   image appears whole or not at all; an existing ID is refused.
  ls               list the images: id, user, workdir, entrypoint and cmd
  rm ID...         remove images (refused while a subcontainer uses one)

Options:
  --ref REF     which image of a layout or archive holding several: an OCI ref name
                (the tag), or NAME:TAG of a docker save archive
  --json        ls: a JSON array of {id, rootfs, user, workdir, env, entrypoint, cmd}
  --data DIR    the data directory (default /var/lib/orch/NAME as root,
                $XDG_DATA_HOME/orch/NAME or ~/.local/share/orch/NAME otherwise)
  --name NAME   the orch's name, for the default data directory (default: the name of the
                current directory)
  -h, --help    show this help

An ID is letters, digits, '.', '_' and '-', starting with a letter or a digit. Exit status:
0 done, 1 the import or removal failed (the reason on stderr), 2 usage error.
]],
  status = [[
Usage: orch status [id] [--json] [--watch] [--control PATH | --name NAME]

Ask a running orch for the state of its entries: kind, state (with the reported health when
it differs), pid, uptime, restarts, last exit, what it waits on and the health message, as an
aligned table (coloured on a terminal).

Options:
  --json            print the raw status object (one JSON line per update with --watch)
  -w, --watch       print it again on every change (redrawn in place on a terminal) until
                    orch stops
  --no-color, --color
  --control PATH    the control socket (default: see below)
  --name NAME       the orch's name (default: the name of the current directory)
  -h, --help        show this help

Every control command (status, logs, stop, start, restart, signal, shutdown, reload) finds the
socket the same way: --control PATH, else /run/orch/NAME.sock as root and
$XDG_RUNTIME_DIR/orch/NAME.sock otherwise. Exit status: 0 done, 1 no such orch or the request
failed (the reason on stderr), 2 usage error.
]],
  logs = [[
Usage: orch logs [id...] [-n N] [-f] [--since TIME] [--control PATH | --name NAME]
       orch logs --reopen [--control PATH | --name NAME]

Print the last N lines of output of each entry (all entries by default), oldest first, with
the same prefixes as the run log: from the entry's log files (orch run --log-dir, exec.log)
when it has some, else from the lines orch keeps in memory (orch run --log-lines).

Options:
  -n, --lines N     lines per entry (default 10; 'all' for everything kept)
  -f, --follow      then print new lines as they come, until orch stops
  --since TIME      only lines from TIME on (all of them unless -n): an ISO 8601 UTC time
                    (2026-12-03T18:00:00Z), @EPOCH-SECONDS, or a duration before now
                    (30s, 10m, 2h, 1d)
  --reopen          make orch close and reopen its log files (as SIGUSR2), after an
                    external logrotate moved them
  --json            one JSON object per line, as orch run --log-format json
  --timestamps      prefix lines with the local time they were received by orch
  --no-color, --color
  --control PATH, --name NAME, -h, --help   as for orch status
]],
  stop = [[
Usage: orch stop ID [--json] [--control PATH | --name NAME]

Stop an entry and everything that requires it, directly or not, dependents first, each
process with SIGTERM (SIGKILL after its timeout); returns when they have stopped. They report
disabled "stopped" and stay stopped until orch start.
]],
  start = [[
Usage: orch start ID [--json] [--control PATH | --name NAME]

Let a stopped entry and its stopped dependents start again, each as soon as its requirements
are ready. Returns at once.
]],
  restart = [[
Usage: orch restart ID [--json] [--control PATH | --name NAME]

Stop the entry and what requires it (dependents first, as orch stop), then start them again;
dependents stopped on their own stay stopped. On a stopped entry it is orch start. Returns
once the stop is done.
]],
  signal = [[
Usage: orch signal ID SIGNAL [--json] [--control PATH | --name NAME]

Send SIGNAL (HUP, SIGHUP, 1...) to the process group of the entry's current process.
SIGNAL reload sends the entry's exec.reloadSignal.
]],
  ui = [[
Usage: orch ui [NAME] [--control PATH | --name NAME]

An interactive view of a running orch (NAME, or --name; see orch status --help for how the
socket is found): its entries with kind, state, pid, uptime, restarts, last exit, what they
require and their message, updated live, and a log pane below. Needs a terminal on stdin
and stdout (exit 2 otherwise); exit 0 once quit, 1 when orch cannot be reached.

Keys:
  up/down         select an entry           pgup/pgdn   scroll the log pane
  enter, l        log pane: the selected entry / all entries
  r, s, S         restart, stop, start the selected entry (and what requires it)
  k               send a signal to the selected entry (asks for its name)
  /               filter by text (esc clears)
  h               show / hide hidden entries (those without a display name)
  t               dependency tree / table
  ?               help
  q, ctrl-c       quit (orch keeps running)
  ctrl-z          suspend

Options:
  --control PATH, --name NAME, -h, --help   as for orch status
]],
  timeline = [[
Usage: orch timeline [FILE|-] [--format svg|term] [-o OUT] [--width N]
       orch timeline [--control NAME|PATH | --name NAME] [--format svg|term] [-o OUT]

Draw a run as a timeline: one row per entry, coloured spans for its results (starting,
waiting, success, failure, loading, disabled), a line while a process runs, ticks for spawns,
exits (code or signal), signals sent and restarts, arrows where a requirement became ready,
and orch's own messages on a row of their own. The run is read from FILE, the JSON log of
orch run (its log format json; '-' reads stdin), or, without FILE, from the recent events a
running orch keeps (the last 10000) through its control socket.

Options:
  --format FORMAT   svg (default): a self-contained SVG a browser opens, with a tooltip on
                    everything; term: Unicode blocks for a terminal, coloured on a TTY
  -o, --output OUT  write to OUT instead of stdout
  --width N         pixels (svg, default 1200) or columns (term, default: the terminal's)
  --no-color, --color   for term
  --control NAME|PATH   the running orch: a name (as --name), or its socket's path (with a /)
  --name NAME       the running orch's name (default: the name of the current directory)
  -h, --help        show this help

Exit status: 0 drawn, 1 the input is not a JSON log (the message names the line) or orch
cannot be reached, 2 usage error.
]],
  shutdown = [[
Usage: orch shutdown [--no-wait] [--json] [--control PATH | --name NAME]

Stop the orch as SIGTERM does: the graph in reverse dependency order. Waits until it has
stopped, unless --no-wait. --json prints the reply object.
]],
  reload = [[
Usage: orch reload [--full] [--json] [--control PATH | --name NAME]

Re-evaluate main.lua and apply it as SIGHUP does: entries whose configuration changed (command,
env, cwd, user, requirements, ready.display...), and everything that requires them, restart,
dependents stopped first; removed entries stop; new ones start; the others keep running with
the same pid. Waits until it is done and prints what was kept, restarted (and why), added and
removed. With --full, the whole graph is stopped and the new one started. Exit 1, with the
message, when the script fails to evaluate or validate: the running graph is left as it is.
]],
}

return USAGE
