-- The timeline's SVG as a person sees it (#integration): headless Chromium (Debian `chromium`,
-- installed by make deps) loads it as an image (strict XML: a broken document fails to load),
-- lays it out in a page (its rows, in order, with text of real size), and screenshots it: the
-- PNG has the size asked for and the colours of the results. Drawn from a real run of
-- spec/fixtures/timeline/crash.lua and from docs/timeline-example.jsonl (the README's picture).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local MAIN = R.ROOT .. '/spec/fixtures/timeline/crash.lua'
local PNG_COLORS = R.ROOT .. '/spec/fixtures/timeline/png_colors.py'
local CHROMIUM = R.capture('command -v chromium chromium-browser 2>/dev/null'):match('[^\n]+')

local session = R.session()

-- Run chromium headless on `url` with `args` (60 s at most); its stdout.
local function chromium(dir, args, url)
  return R.capture(('timeout 60 %s --headless --no-sandbox --disable-gpu --hide-scrollbars '
    .. '--user-data-dir=%s %s %s 2>/dev/null'):format(R.quote(CHROMIUM),
    R.quote(dir .. '/profile'), args, R.quote(url)))
end

-- A page that loads `svg_path` as an image and lays `svg_text` out inline, then writes what it
-- found into <pre id="r"> as JSON: `img` ("loaded WxH" or "error"), `parse` ("ok" or the
-- parser's error), `rows` ({id, y, w} of each row label), `spans`, `size`.
local function wrapper(svg_path, svg_text)
  local literal = cjson.encode(svg_text):gsub('</', '<\\/')
  return ([[<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<img id="img" src="file://%s"><div id="host"></div><pre id="r">pending</pre>
<script>
const res = {};
const doc = new DOMParser().parseFromString(%s, 'image/svg+xml');
const perr = doc.querySelector('parsererror');
res.parse = perr ? perr.textContent.slice(0, 300) : 'ok';
if (!perr) {
  const svg = document.importNode(doc.documentElement, true);
  document.getElementById('host').appendChild(svg);
  res.rows = [...svg.querySelectorAll('text[data-id]')].map(t => {
    const b = t.getBBox();
    return { id: t.dataset.id, y: Math.round(b.y), w: Math.round(b.width) };
  });
  res.spans = svg.querySelectorAll('rect.s').length;
  const box = svg.getBoundingClientRect();
  res.size = [Math.round(box.width), Math.round(box.height)];
}
function done(what) {
  res.img = what;
  document.getElementById('r').textContent = JSON.stringify(res);
}
const img = document.getElementById('img');
if (img.complete) {
  done(img.naturalWidth ? 'loaded ' + img.naturalWidth + 'x' + img.naturalHeight : 'error');
} else {
  img.onload = () => done('loaded ' + img.naturalWidth + 'x' + img.naturalHeight);
  img.onerror = () => done('error');
}
</script></body></html>
]]):format(svg_path, literal)
end

-- What the page of `wrapper` found about the SVG file `path`.
local function inspect(dir, path)
  local page = dir .. '/page.html'
  R.write_file(page, wrapper(path, assert(R.read_file(path))))
  local dom = chromium(dir, '--virtual-time-budget=5000 --dump-dom', 'file://' .. page)
  local json = dom:match('<pre id="r">(.-)</pre>')
  assert(json and json ~= 'pending', 'the page did not report: ' .. dom:sub(1, 2000))
  json = json:gsub('&lt;', '<'):gsub('&gt;', '>'):gsub('&quot;', '"'):gsub('&amp;', '&')
  return cjson.decode(json)
end

local function draw(dir, log, name, width)
  local svg = dir .. '/' .. name .. '.svg'
  local r = R.run({ 'timeline', log, '-o', svg, '--width', tostring(width) })
  assert(r.code == 0, r.err)
  return svg
end

describe('orch timeline in Chromium #integration', function()
  if not CHROMIUM then
    it('needs chromium', function()
      pending('chromium is not installed (make deps installs it): the SVG is not rendered')
    end)
    return
  end

  local dir, real_log
  setup(function()
    dir = session.tmpdir()
    local r = R.run({ 'run', '--until-ready=20000', '--log-format', 'json', MAIN,
      dir .. '/marker' })
    assert(r.code == 0, r.err)
    real_log = dir .. '/run.jsonl'
    R.write_file(real_log, r.out)
  end)
  teardown(session.cleanup)

  it('loads the SVG of a real run without errors, with its rows in order', function()
    local svg = draw(dir, real_log, 'run', 900)
    local res = inspect(dir, svg)
    assert.equal('ok', res.parse)
    assert.matches('^loaded 900x%d+$', res.img)
    local ids = {}
    for i, row in ipairs(res.rows) do
      ids[i] = row.id
      assert.truthy(row.w > 0, row.id .. ' has a label of real width')
      if i > 1 then
        assert.truthy(row.y > res.rows[i - 1].y, row.id .. ' is below the row before')
      end
    end
    assert.same({ 'db', 'migrate', 'api' }, ids)
    assert.truthy(res.spans >= 3)
    assert.equal(900, res.size[1])
  end)

  it('fails to load a broken SVG (the check can fail)', function()
    local svg = draw(dir, real_log, 'broken', 900)
    R.write_file(svg, (R.read_file(svg):gsub('&amp;', '&'):gsub('</svg>', '<g></svg>')))
    local res = inspect(dir, svg)
    assert.equal('error', res.img)
    assert.are_not.equal('ok', res.parse)
  end)

  it("screenshots the README's example: its size, and the colours of its results", function()
    local svg = draw(dir, R.ROOT .. '/docs/timeline-example.jsonl', 'example', 1000)
    local res = inspect(dir, svg)
    assert.equal('ok', res.parse)
    assert.same({ 'content', 'web', 'warmup', 'site' }, (function()
      local out = {}
      for i, row in ipairs(res.rows) do
        out[i] = row.id
      end
      return out
    end)())
    local png = dir .. '/example.png'
    chromium(dir, ('--screenshot=%s --window-size=1000,%d'):format(R.quote(png),
      res.size[2]), 'file://' .. svg)
    local info = cjson.decode(R.capture(('python3 %s %s'):format(R.quote(PNG_COLORS),
      R.quote(png))))
    assert.same({ 1000, res.size[2] }, { info.width, info.height })
    local c = info.colors
    -- success (green), failure (red: web killed), waiting (blue), starting (amber)
    assert.truthy((c['#2da44e'] or 0) > 5000, 'green success spans')
    assert.truthy((c['#d1242f'] or 0) > 2000, 'red failure spans')
    assert.truthy((c['#8fb3de'] or 0) > 2000, 'blue waiting spans')
    assert.truthy((c['#e3a008'] or 0) > 500, 'amber starting spans')
  end)
end)
