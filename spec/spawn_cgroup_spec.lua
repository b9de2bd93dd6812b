-- Where a daemon is born (#integration, root): in a cgroup of its own under orch's, whether
-- the kernel lets orch use clone3(CLONE_INTO_CGROUP) or a seccomp filter refuses clone3 (ENOSYS,
-- or EPERM as older container runtimes answer) and the child joins by a write to cgroup.procs.
local R = require 'fixtures.cli.runner'

local F = R.FIXTURES
local NO_CLONE3 = R.ROOT .. '/build/tests/no_clone3'

local function cgroup_of(prefix)
  local dir = R.tmpdir()
  local out = dir .. '/cgroup'
  local args = { 'run', '--no-control', '--until-ready=10000', F .. '/cgroup_probe.lua' }
  local r = R.run(args, { env = { CGROUP_OUT = out }, prefix = prefix })
  local text = R.read_file(out)
  R.cleanup(dir)
  return r, text
end

describe('a daemon is born in its own cgroup #integration', function()
  local root = R.capture('id -u'):match('^0') ~= nil
  local v2 = R.capture('grep -c cgroup2 /proc/self/mountinfo || true'):match('^[1-9]') ~= nil
  if not (root and v2) then
    it('needs root and a cgroup v2 hierarchy', function()
      pending('not root, or no cgroup2 mounted')
    end)
    return
  end

  local function assert_own_cgroup(r, text)
    assert.equal(0, r.code, r.err)
    assert.truthy(text, 'the daemon wrote nothing')
    assert.truthy(text:match('0::[^\n]*/orch%-%d+/%d+%-web\n'), text)
  end

  it('with clone3', function()
    assert_own_cgroup(cgroup_of())
  end)

  for _, errno in ipairs({ 'ENOSYS', 'EPERM' }) do
    it('when seccomp fails clone3 with ' .. errno, function()
      if not R.read_file(NO_CLONE3) then
        pending('no build/tests/no_clone3 (not x86_64)')
        return
      end
      assert_own_cgroup(cgroup_of(R.quote(NO_CLONE3) .. ' ' .. errno))
    end)
  end
end)
