--- tools/luac.lua: the bytecode bundle of orch's Lua library (run by the build, see
-- CMakeLists.txt; read by src/bytecode.c). Compiling the library's modules took about 10 ms of
-- every `orch` start; loading their bytecode takes about 2.
--
-- Usage: lua5.4 tools/luac.lua SRC_DIR LUA_DIR OUT
--   SRC_DIR  the directory holding orch/ (the source tree's lua/)
--   LUA_DIR  the directory the binary will load the library from (the chunk names, and the
--            files whose text must still match for a module's bytecode to be used)
--   OUT      the bundle file
--
-- Format (native byte order and sizes, as string.pack writes them): "ORCHBC1\0", LUA_DIR as
-- s4, the number of modules as I4, then per module its path under LUA_DIR (s4), the FNV-1a
-- 64-bit hash of its source text (j), the offset and length of its bytecode in the file (I4,
-- I4); then the bytecode (string.dump, debug information kept: tracebacks and the error
-- locator read it).

local src, lua_dir, out = arg[1], arg[2], arg[3]
if not (src and lua_dir and out) then
  io.stderr:write('usage: lua5.4 tools/luac.lua SRC_DIR LUA_DIR OUT\n')
  os.exit(2)
end

local function fnv1a(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001b3
  end
  return h
end

local list = assert(io.popen(("cd '%s' && find orch -name '*.lua' | LC_ALL=C sort"):format(
  src:gsub("'", "'\\''"))))
local mods = {}
for rel in list:lines() do
  local f = assert(io.open(src .. '/' .. rel, 'rb'))
  local text = f:read('a')
  f:close()
  local fn = assert(load(text, '@' .. lua_dir .. '/' .. rel))
  mods[#mods + 1] = { rel = rel, hash = fnv1a(text), code = string.dump(fn) }
end
assert(list:close())

local head = { 'ORCHBC1\0', string.pack('s4', lua_dir), string.pack('I4', #mods) }
local size = #head[1] + #head[2] + #head[3]
for _, m in ipairs(mods) do
  size = size + #string.pack('s4jI4I4', m.rel, 0, 0, 0)
end
local index, offset = {}, size
for i, m in ipairs(mods) do
  index[i] = string.pack('s4jI4I4', m.rel, m.hash, offset, #m.code)
  offset = offset + #m.code
end
local tmp = out .. '.tmp'
local f = assert(io.open(tmp, 'wb'))
assert(f:write(table.concat(head), table.concat(index)))
for _, m in ipairs(mods) do
  assert(f:write(m.code))
end
assert(f:close())
assert(os.rename(tmp, out))
