--- The specs' fake core is the one shipped with the library (orch.testing.fake_core), so the
-- project's specs and `orch test` run on one simulated core.
-- @module spec.support.fake_core
return require 'orch.testing.fake_core'
