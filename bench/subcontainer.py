"""bench/subcontainer.py: the `subcontainer` scenario of bench/run (its own section and table).

1. create + first process + destroy of one subcontainer, median over 50 iterations (5 rounds
   of 10, the runtimes taking turns), and the CPU time per cycle (the runtime's processes, and
   for orch its own process too):
   orch (bench/subcontainer_cycle.lua: SubContainer.eager, exec /bin/true, destroy, in one
   lua5.4 process on orch's library) side by side with the raw runtimes on the same busybox root
   filesystem, each started from this harness: `bwrap` as orch runs it (PID, UTS and IPC
   namespaces, /proc, /dev, /sys) over a read-only bind of it (Debian 12's bwrap 0.8 has no
   --overlay: orch mounts its copy-on-write layer itself), `crun run` of an OCI bundle, and
   `podman run --rm` when podman is there.
2. 100 daemons, each in a subcontainer of its own, under `orch run`: time until every daemon
   runs, orch's RSS, and what the 100 leaders (bwrap + orch-init) cost.

Needs root, bubblewrap, busybox-static, lua5.4 (and crun for its column). Imported by bench/run,
whose helpers (the Watcher, mem_of, the Orch tool...) it uses through `b`.
"""
import json
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def lua_env(b):
    env = dict(os.environ)
    env['LUA_PATH'] = '%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;;' % (ROOT, ROOT, ROOT)
    env['LUA_CPATH'] = '%s/lib/?.so;;' % b.BUILD
    return env


def missing():
    """Why the scenario cannot run here, or None."""
    if os.getuid() != 0:
        return 'subcontainers are benchmarked as root'
    for exe in ('bwrap', 'lua5.4'):
        if not shutil.which(exe):
            return '%s is not installed' % exe
    if not any(os.path.exists(p) for p in ('/bin/busybox', '/usr/bin/busybox')):
        return 'busybox-static is not installed'
    return None


def make_image(b, data, image):
    """The busybox image of the specs (spec/support/images.lua), straight into `data`."""
    code = ("require('spec.support.images').busybox(%s, %s, {config = {env = {'PATH=/bin'}}})"
            % (b.lua_str(data), b.lua_str(image)))
    subprocess.run(['lua5.4', '-e', code], check=True, env=lua_env(b), cwd=ROOT)
    return os.path.join(data, 'images', image, 'rootfs')


def spawn_wait(argv):
    """posix_spawn + waitpid of argv, output to /dev/null (no subprocess.run: its pipes and
    fd closing cost milliseconds, which orch's libuv spawn does not pay); the exit status."""
    devnull = os.open('/dev/null', os.O_RDWR)
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2)])
    finally:
        os.close(devnull)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def children_cpu_ms():
    t = os.times()
    return (t.children_user + t.children_system) * 1000


def time_runs(argv_of, n, cpu=None):
    """Wall time (ms) of `n` runs of argv_of(i) from here, each to its exit (must be 0); the
    CPU time of the runs (ms per run) is appended to `cpu` when given."""
    out = []
    c0 = children_cpu_ms()
    for i in range(n):
        argv = argv_of(i)
        t0 = time.monotonic_ns()
        code = spawn_wait(argv)
        t1 = time.monotonic_ns()
        if code != 0:
            r = subprocess.run(argv, capture_output=True, text=True)  # again, to say why
            raise RuntimeError('%s: exit %d: %s' % (' '.join(argv[:3]), code, r.stderr[-300:]))
        out.append((t1 - t0) / 1e6)
    if cpu is not None:
        cpu.append((children_cpu_ms() - c0) / n)
    return out


def bwrap_argv(rootfs):
    """bwrap with the namespaces and file systems orch's leader has (lua/orch/subcontainer/
    leader.lua), running /bin/true."""
    return ['bwrap', '--unshare-pid', '--unshare-uts', '--unshare-ipc', '--hostname', 'bench',
            '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev',
            '--ro-bind', '/sys', '/sys', '/bin/true']


CRUN_LOOP = r'''
import json, os, subprocess, sys, time
bundle, n, umount = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
if umount:  # crun 1.8 refuses cgroup v1 with a v2 hierarchy beside it ("hybrid mode")
    subprocess.run(['umount', '/sys/fs/cgroup/unified'], check=True)
out = []
c0 = os.times()
for i in range(n):
    argv = ['crun', '--cgroup-manager=disabled', 'run', '--bundle', bundle,
            'orch-bench-%d-%d' % (os.getpid(), i)]
    devnull = os.open('/dev/null', os.O_RDWR)
    t0 = time.monotonic_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2)])
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    t1 = time.monotonic_ns()
    os.close(devnull)
    if code != 0:
        r = subprocess.run(argv, capture_output=True, text=True)
        sys.exit('crun: exit %d: %s' % (code, r.stderr[-300:]))
    out.append((t1 - t0) / 1e6)
c1 = os.times()
cpu = (c1.children_user + c1.children_system - c0.children_user - c0.children_system) * 1000 / n
print(json.dumps({'ms': out, 'cpu_ms': cpu}))
'''


def crun_times(b, rootfs, bundle, n):
    """`crun run` of a bundle whose root is `rootfs` (read-only), /bin/true, the PID, IPC, UTS
    and mount namespaces (the host's network, as a subcontainer), `crun spec`'s defaults
    otherwise (capabilities, masked and read-only paths). Run from a private mount namespace
    where, on a hybrid cgroup machine, the v2 hierarchy is unmounted: crun 1.8 refuses hybrid
    mode, and the cgroup is not what is measured (--cgroup-manager=disabled)."""
    os.makedirs(bundle, exist_ok=True)
    subprocess.run(['crun', 'spec'], cwd=bundle, check=True)
    path = os.path.join(bundle, 'config.json')
    with open(path) as f:
        cfg = json.load(f)
    cfg['root'] = {'path': rootfs, 'readonly': True}
    cfg['process'].update(terminal=False, args=['/bin/true'])
    cfg['linux']['namespaces'] = [x for x in cfg['linux']['namespaces']
                                  if x['type'] != 'network']
    cfg['linux'].pop('resources', None)
    with open(path, 'w') as f:
        json.dump(cfg, f)
    hybrid = any(line.split()[1:3] == ['/sys/fs/cgroup/unified', 'cgroup2']
                 for line in open('/proc/mounts'))
    r = subprocess.run(['unshare', '-m', '--propagation', 'private', 'python3', '-c', CRUN_LOOP,
                        bundle, str(n), '1' if hybrid else '0'],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-400:])
    return json.loads(r.stdout)  # {ms: [...], cpu_ms: per run}


def orch_times(b, data, image, n):
    r = subprocess.run(['lua5.4', os.path.join(HERE, 'subcontainer_cycle.lua'), data, image,
                        str(n)], capture_output=True, text=True, env=lua_env(b), cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError('bench/subcontainer_cycle.lua: %s' % r.stderr.strip()[-400:])
    return json.loads(r.stdout)


def podman_note():
    if not shutil.which('podman'):
        return 'not installed (Debian has it, but it would need an image in its store and a ' \
               'network-less set-up: not tried)'
    return None


def many_daemons(b, ctx, data, image, n):
    """`orch run --data data` of n daemons, each `sleep <marker>` in a subcontainer of its own.
    Returns the time until all n run (from the start of orch), orch's RSS and peak RSS once
    they do, and the RSS of the n leaders."""
    tool = b.make_tool(ctx, 'orch', 'sub%d' % n)
    tool.n, tool.use_status = n, False
    lines = ['-- generated by bench/subcontainer.py', "local orch = require 'orch'",
             'return orch.setupMain(function(ctx)',
             '  local d = orch.Daemons.of{effects = ctx.effects}']
    for i in range(n):
        lines.append("  d = d:addDaemon('d%d', {subcontainer = orch.SubContainer.of(ctx.effects,"
                     " {imageId = %s}, nil, 's%d'), exec = {command = {'sleep', %s}},"
                     " requires = {}})" % (i, b.lua_str(image), i, b.lua_str(ctx.marker(i))))
    lines += ['  return d', 'end)']
    tool.script = os.path.join(tool.dir, 'main.lua')
    with open(tool.script, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    argv = [b.ORCH, 'run', '--data', data, '--control', os.path.join(tool.dir, 'control.sock'),
            tool.script]
    w = b.Watcher(ctx.prefix)
    try:
        t0 = b.now_ns()
        tool._popen(argv, env=lua_env(b))
        t_all = w.wait(lambda c: c >= n, 120)
        if t_all is None:
            raise RuntimeError('only %d of %d subcontainer daemons running (see %s/tool.log)'
                               % (w.count, n, tool.dir))
        time.sleep(0.5)
        mem = b.mem_of(tool.own_pids())
        t = b.proc_table()
        leaders = [p for p, (_, comm, _) in t.items() if comm in ('bwrap', 'orch-init')
                   and p in b.descendants(tool.proc.pid, t)]
        lmem = b.mem_of(leaders)
        return {'time_ms': (t_all - t0) / 1e6, 'rss_mib': mem['rss_kib'] / 1024,
                'peak_rss_mib': mem['hwm_kib'] / 1024, 'leaders': len(leaders),
                'leaders_rss_mib': lmem['rss_kib'] / 1024,
                'leaders_pss_mib': lmem['pss_kib'] / 1024}
    finally:
        w.close()


def fmt_cell(b, vs):
    if not vs:
        return '-'
    m = statistics.median(vs)
    return '%s (%s-%s)' % (b.fmt(m), b.fmt(min(vs)), b.fmt(max(vs)))


def run(b, ctx, quick):
    """The scenario: records raw figures through ctx and returns the markdown lines of its
    section (or why it was skipped)."""
    why = missing()
    if why:
        b.log('subcontainer: skipped: %s' % why)
        ctx.record(scenario='subcontainer', skipped=why)
        return ['Subcontainers: skipped (%s).' % why]
    n = 10 if quick else 50
    many = 20 if quick else 100
    base = ctx.rundir('subcontainer')
    data = os.path.join(base, 'data')
    image = 'bench'
    rootfs = make_image(b, data, image)
    # Rounds of n/ROUNDS runs, the runtimes taking turns: a burst of load on this shared
    # machine then hits each of them alike. CPU is summed over the rounds.
    rounds = 2 if quick else 5
    per = n // rounds
    cols = {'orch': [], 'bwrap': [], 'crun run': []}
    cpu_sum = {k: 0.0 for k in cols}
    steps = {'create': [], 'exec': [], 'destroy': []}
    failed = set()
    have_crun = shutil.which('crun') is not None

    def attempt(tool, fn):
        if tool in failed:
            return
        try:
            vs, c = fn()
            cols[tool] += vs
            cpu_sum[tool] += c * len(vs)
        except Exception as e:
            b.log('subcontainer %s failed: %s' % (tool, e))
            ctx.record(scenario='subcontainer', tool=tool, error=str(e))
            failed.add(tool)
        finally:
            ctx.cleanup()

    def orch_round():
        res = orch_times(b, data, image, per)
        for k in steps:
            steps[k] += res[k]
        return res['total'], res['cpu_ms']

    def bwrap_round():
        c = []
        vs = time_runs(lambda i: bwrap_argv(rootfs), per, c)
        return vs, c[0]

    def crun_round():
        r = crun_times(b, rootfs, os.path.join(base, 'bundle'), per)
        return r['ms'], r['cpu_ms']

    b.log('subcontainer: create + /bin/true + destroy, %d times each, in %d rounds'
          % (n, rounds))
    for _ in range(rounds):
        attempt('orch', orch_round)
        attempt('bwrap', bwrap_round)
        if have_crun:
            attempt('crun run', crun_round)
    cpu = {k: cpu_sum[k] / len(v) for k, v in cols.items() if v}
    cols = {k: v for k, v in cols.items() if v}
    for step, vs in steps.items():
        ctx.record(scenario='subcontainer', variant='cycle', tool='orch', step=step, values=vs)
    if steps['create']:
        cols['orch steps'] = steps
    for tool, vs in cols.items():
        if tool != 'orch steps':
            ctx.record(scenario='subcontainer', variant='cycle', tool=tool, values=vs,
                       cpu_ms=cpu.get(tool))
    b.log('subcontainer: %d daemons, each in its own subcontainer' % many)
    mres = []
    for r in range(1 if quick else 3):
        try:
            m = many_daemons(b, ctx, data, image, many)
            ctx.record(scenario='subcontainer', variant='daemons', tool='orch', run=r, n=many,
                       **m)
            mres.append(m)
        except Exception as e:
            b.log('subcontainer daemons failed: %s' % e)
            ctx.record(scenario='subcontainer', variant='daemons', error=str(e))
        finally:
            ctx.cleanup()

    out = ['Subcontainers: create + first process (/bin/true) + destroy, ms, median (min-max) '
           'of %d; the same busybox root filesystem for all.' % n, '',
           '| runtime | wall ms | orch / it | CPU ms per cycle | orch / it |',
           '|---|---|---|---|---|']
    orch_med = statistics.median(cols['orch']) if cols.get('orch') else None
    for tool in ('orch', 'bwrap', 'crun run'):
        vs = cols.get(tool)
        ratio = b.ratio(orch_med, statistics.median(vs)) if vs and tool != 'orch' else ''
        c = cpu.get(tool)
        cratio = b.ratio(cpu.get('orch'), c) if c is not None and tool != 'orch' else ''
        out.append('| %s | %s | %s | %s | %s |' % (tool, fmt_cell(b, vs or []), ratio,
                                                   b.fmt(c) if c is not None else '-', cratio))
    note = podman_note()
    out.append('| podman run --rm | - | %s | - | |' % (note or 'not measured'))
    steps = cols.get('orch steps')
    if steps:
        out.append('')
        out.append('orch by step, median ms: create %s, exec %s, destroy %s. Targets: within '
                   '1.5x of the raw runtime (bwrap: %s), under 20 ms (%s).' % (
                       b.fmt(statistics.median(steps['create'])),
                       b.fmt(statistics.median(steps['exec'])),
                       b.fmt(statistics.median(steps['destroy'])),
                       'yes' if cols.get('bwrap') and orch_med <= 1.5 * statistics
                       .median(cols['bwrap']) else '**NO**',
                       'yes' if orch_med < 20 else '**NO**'))
    if mres:
        out.append('')
        out.append('%d daemons, each in a subcontainer of its own (`orch run`, runs: %d): all '
                   'running after %s ms; orch RSS %s MiB (peak %s MiB); the %d leaders (bwrap + '
                   'orch-init) %s MiB RSS, %s MiB PSS.' % (
                       many, len(mres), fmt_cell(b, [m['time_ms'] for m in mres]),
                       fmt_cell(b, [m['rss_mib'] for m in mres]),
                       fmt_cell(b, [m['peak_rss_mib'] for m in mres]), mres[0]['leaders'],
                       fmt_cell(b, [m['leaders_rss_mib'] for m in mres]),
                       fmt_cell(b, [m['leaders_pss_mib'] for m in mres])))
    return out
