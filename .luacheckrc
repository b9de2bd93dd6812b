std = 'lua54'
max_line_length = 100
files['spec/**'] = { std = '+busted' }
files['examples/**/*_spec.lua'] = { std = '+busted' } -- run by orch test
-- spec/fixtures/bad: broken on purpose (syntax errors, unused values), see bad_scripts_spec
exclude_files = { 'build/**', 'build-asan/**', 'spec/fixtures/bad/**' }
