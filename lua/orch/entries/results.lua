--- The health results an entry reports, and which `ready.fn` may return.
-- @module orch.entries.results
local M = {}

--- The results, in the order the status view lists them.
M.RESULTS = { 'success', 'failure', 'starting', 'waiting', 'loading', 'disabled' }

--- The same as a set.
M.RESULT_SET = {}
for _, r in ipairs(M.RESULTS) do
  M.RESULT_SET[r] = true
end

return M
