-- orch export over generated graphs (#17): in each output every requires edge is an ordering
-- constraint (Kubernetes: the requirement is an init container before its dependent; compose:
-- depends_on; systemd: After= with Requires= or Wants=), nothing refers to a name that is not
-- defined, and every Kubernetes name is a DNS-1123 label.
package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path
local R = require 'fixtures.cli.runner'
local yaml_read = require 'orch.export.yaml_read'

local GRAPHS = 12

-- A main.lua of `n` entries with random kinds, edges (with reactions) and ids that need
-- mapping (underscores, capitals: hidden entries allow them).
local function graph(seed)
  math.randomseed(seed)
  local n = math.random(2, 9)
  local lines = { "local orch = require 'orch'", 'return orch.Daemons.of{}' }
  local ids, edges = {}, {}
  for i = 1, n do
    local kind = ({ 'daemon', 'daemon', 'oneshot', 'health' })[math.random(4)]
    if i == 1 and kind == 'health' then
      kind = 'daemon'
    end
    local id = ('e%d'):format(i)
    if kind == 'daemon' and math.random(3) == 1 then
      id = ('Svc_%d'):format(i) -- hidden, so allowed; maps to svc-<i>
    end
    local req = {}
    for j = 1, i - 1 do
      if math.random(3) == 1 then
        local react = ({ 'stop', 'ignore', 'restart' })[math.random(3)]
        req[#req + 1] = ('[%q] = { onUnhealthy = %q }'):format(ids[j], react)
        edges[#edges + 1] = { ids[j], id }
      end
    end
    local requires = '{ ' .. table.concat(req, ', ') .. ' }'
    local ready = ("ready = { display = %q, fn = function() return "
      .. 'orch.healthCheck.checkPortListening(%d) end },'):format('Check ' .. i, 20000 + i)
    if kind == 'daemon' then
      lines[#lines + 1] = ('  :addDaemon(%q, { exec = { command = { "sleep", "100" } }, %s '
        .. 'requires = %s })'):format(id, id:match('^e') and ready or '', requires)
    elseif kind == 'oneshot' then
      lines[#lines + 1] = ('  :addOneshot(%q, { exec = { command = "true" }, requires = %s })')
        :format(id, requires)
    else
      lines[#lines + 1] = ('  :addHealthCheck(%q, { %s requires = %s })'):format(id, ready,
        requires)
    end
    ids[i] = id
  end
  return table.concat(lines, '\n') .. '\n', ids, edges
end

local function dns(id)
  return (id:lower():gsub('[^a-z0-9]+', '-'))
end

local function docs(text)
  local out = {}
  for body in (text .. '---\n'):gmatch('(.-)%-%-%-\n') do
    if body:match('%S') then
      out[#out + 1] = assert(yaml_read.decode(body))
    end
  end
  return out
end

describe('orch export over generated graphs', function()
  local dir
  setup(function()
    dir = R.tmpdir()
  end)
  teardown(function()
    R.cleanup(dir)
  end)

  for seed = 1, GRAPHS do
    it(('graph %d: every edge is an ordering constraint, no dangling name'):format(seed),
      function()
        local src, ids, edges = graph(seed)
        local script = ('%s/g%d.lua'):format(dir, seed)
        R.write_file(script, src)

        -- Kubernetes
        local r = R.run({ 'export', 'k8s', '--name', 'g', script })
        assert.are.equal(0, r.code, r.err .. src)
        local pod
        for _, d in ipairs(docs(r.out)) do
          if d.kind == 'Deployment' or d.kind == 'Job' then
            pod = d.spec.template.spec
          end
        end
        assert.is_table(pod, r.out)
        local pos, init = {}, {}
        local order = {}
        for _, c in ipairs(pod.initContainers or {}) do
          order[#order + 1] = c.name
          init[c.name] = true
        end
        for _, c in ipairs(pod.containers) do
          order[#order + 1] = c.name
        end
        for i, name in ipairs(order) do
          assert.is_nil(pos[name], 'duplicate container ' .. name)
          assert.is_truthy(#name <= 63 and name:match('^[a-z0-9][a-z0-9-]*$')
            and not name:match('%-$'), name .. ' is not a DNS-1123 label')
          pos[name] = i
        end
        for _, id in ipairs(ids) do
          assert.is_number(pos[dns(id)], 'no container for ' .. id)
        end
        for _, e in ipairs(edges) do
          local a, b = dns(e[1]), dns(e[2])
          assert.is_true(pos[a] < pos[b], ('%s before %s'):format(a, b))
          assert.is_true(init[a], a .. ' gates its dependents: an init container')
          if init[b] == nil then
            assert.is_true(pos[a] <= #(pod.initContainers or {}))
          end
        end

        -- compose
        r = R.run({ 'export', 'compose', script })
        assert.are.equal(0, r.code, r.err)
        local c = assert(yaml_read.decode(r.out))
        for name, s in pairs(c.services) do
          for dep in pairs(s.depends_on or {}) do
            assert.is_table(c.services[dep], ('%s depends on missing %s'):format(name, dep))
          end
        end
        for _, e in ipairs(edges) do
          local s = c.services[e[2]:gsub('[^%w._-]+', '-')]
          assert.is_table(s.depends_on, e[2])
          assert.is_table(s.depends_on[e[1]], ('%s depends_on %s'):format(e[2], e[1]))
        end

        -- systemd
        local out = ('%s/sd%d'):format(dir, seed)
        r = R.run({ 'export', 'systemd', '--name', 'g', '-o', out, script })
        assert.are.equal(0, r.code, r.err)
        local units = {}
        for f in R.capture(('ls %s'):format(R.quote(out))):gmatch('[^\n]+') do
          units[f] = R.read_file(out .. '/' .. f)
        end
        for name, text in pairs(units) do
          for ref in text:gmatch('\n[A-Za-z]+=([^\n]*%.service)') do
            for u in ref:gmatch('%S+') do
              assert.is_string(units[u], ('%s refers to missing %s'):format(name, u))
            end
          end
        end
        for _, e in ipairs(edges) do
          local text = units[('g-%s.service'):format(e[2])]
          local dep = ('g-%s.service'):format(e[1])
          assert.matches('\nAfter=' .. dep:gsub('%p', '%%%0') .. '\n', text)
          assert.is_truthy(text:find('\nRequires=' .. dep .. '\n', 1, true)
            or text:find('\nWants=' .. dep .. '\n', 1, true))
        end
      end)
  end
end)
