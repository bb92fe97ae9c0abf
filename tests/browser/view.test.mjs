// Headless-Chromium test of the `lens view` page (node --test). Builds tests/browser/make_pages with
// build.sh, writes a tiny page, a page without attention and a 1000-token 32 x 32 page, opens them
// offline (file://; any other request is aborted and fails the test) and drives every view.
// Uses the system Chromium (/usr/bin/chromium or $LENS_CHROMIUM); skipped when it is absent.
// Output (pages, screenshots): $LENS_VIEW_OUT or <repo>/build/browser-test.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = process.env.LENS_VIEW_OUT || path.join(root, 'build/browser-test');
const pages = path.join(out, 'pages');
const shots = path.join(out, 'screenshots');
const chromiumPath = process.env.LENS_CHROMIUM || '/usr/bin/chromium';
const kLoadBudgetMs = 3000;

const skip = fs.existsSync(chromiumPath) ? false : `no Chromium at ${chromiumPath} (set LENS_CHROMIUM); browser test skipped`;
if (skip) console.log(`SKIP: ${skip}`);

let browser;
let offsite = [];  // non-file requests seen (all are aborted)

before(async () => {
  if (skip) return;
  fs.mkdirSync(pages, {recursive: true});
  fs.mkdirSync(shots, {recursive: true});
  execFileSync(path.join(here, 'build.sh'), [out], {stdio: 'inherit'});
  execFileSync(path.join(out, 'make_pages'), [pages, 'tiny', 'noattn', 'large'], {stdio: 'inherit'});
  const {chromium} = await import('playwright-core');
  browser = await chromium.launch({executablePath: chromiumPath});
}, {timeout: 300_000});

after(async () => {
  if (browser) await browser.close();
});

// Opens a page offline; returns {page, errors, ms}: ms from navigation start to the page's lensReady.
async function open(name, viewport = {width: 1300, height: 800}) {
  const context = await browser.newContext({viewport});
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith('file:')) offsite.push(r.url()); });
  const t0 = Date.now();
  await page.goto(pathToFileURL(path.join(pages, `${name}.html`)).href);
  await page.waitForFunction(() => window.lensReady === true, null, {timeout: 20_000});
  return {page, errors, ms: Date.now() - t0};
}

const shown = (token) => token.replace(/\n/g, '\u21b5').replace(/\t/g, '\u2192');  // Lens.tokenText
const readRun = (name) => JSON.parse(fs.readFileSync(path.join(pages, `${name}.json`), 'utf8'));
const shot = (page, name) => page.screenshot({path: path.join(shots, `${name}.png`)});
const linesDrawn = (page) => page.$eval('#head-area canvas', (c) => +c.dataset.lines);

test('tiny page: logit-lens table, slider, tooltip, colour toggle', {skip}, async () => {
  const run = readRun('tiny');
  const {page, errors} = await open('tiny');
  // Both lenses side by side.
  assert.deepEqual(await page.$$eval('.lens-panel h2', (h) => h.map((x) => x.textContent)), ['logit lens', 'tuned lens']);
  const nRows = run.layers.length;
  assert.equal(await page.$$eval('.lens-blocks[data-lens="0"] table:not(.heads) tbody tr', (r) => r.length), nRows);
  // Cell text is the top-1 token.
  const cell = (r, c) => `.lens-blocks[data-lens="0"] td[data-r="${r}"][data-c="${c}"]`;
  assert.equal(await page.textContent(cell(3, 2)), shown(run.layers[3].positions[2].top[0].token));

  // Slider to row 2: rows above are dimmed, row 2 is current, the strip shows layer 2's predictions.
  await page.locator('#lens-layer').fill('2');
  const states = await page.$$eval('.lens-blocks[data-lens="0"] table:not(.heads) tbody tr', (rows) => rows.map((r) => r.className));
  assert.match(states[2], /current/);
  assert.match(states[3], /dim/);
  assert.doesNotMatch(states[1], /dim/);
  const strip = await page.$$eval('#lens-strip .out', (s) => s.map((x) => x.textContent));
  assert.deepEqual(strip, run.layers[2].positions.map((p) => shown(p.top[0].token)));
  await page.check('#lens-hide-above');
  assert.equal(await page.$$eval('.lens-blocks[data-lens="0"] tbody tr.hidden', (r) => r.length), 2 * (nRows - 3));
  await page.uncheck('#lens-hide-above');

  // Hover: the tooltip lists that cell's top-k tokens in order, with entropy and KL.
  await page.hover(cell(2, 3));
  const tip = await page.textContent('#tooltip');
  const p = run.layers[2].positions[3];
  let at = -1;
  for (const t of p.top) {
    const i = tip.indexOf(JSON.stringify(shown(t.token)), at + 1);
    assert.ok(i > at, `tooltip lists ${JSON.stringify(t.token)} in order: ${tip}`);
    at = i;
  }
  assert.ok(tip.includes(`entropy ${p.entropy.toFixed(3)}`), tip);
  assert.ok(tip.includes(`KL(final || layer) ${p.kl_to_final.toFixed(3)}`), tip);
  assert.ok(tip.includes('layer 2') && tip.includes('pos 3'), tip);
  await shot(page, 'tiny_lens_tooltip');

  // Colour by entropy changes the cell colours.
  const before = await page.$eval(cell(0, 0), (td) => td.style.background);
  await page.selectOption('#lens-colour', 'entropy');
  assert.notEqual(await page.$eval(cell(0, 0), (td) => td.style.background), before);
  await page.mouse.move(1, 1);
  await shot(page, 'tiny_lens_entropy');
  assert.deepEqual(errors, []);
  assert.deepEqual(offsite, []);
  await page.context().close();
});

test('tiny page: head, model, neuron and sink views', {skip}, async () => {
  const run = readRun('tiny');
  const {page, errors} = await open('tiny');
  // Head view: all heads drawn; hovering a query token keeps only its lines; no heads, no lines.
  await page.click('#tabs button[data-view="head"]');
  await page.waitForFunction(() => +document.querySelector('#head-area canvas').dataset.lines > 0);
  const all = await linesDrawn(page);
  await page.hover('#head-area .head-col.left .tok[data-i="3"]');
  const one = await linesDrawn(page);
  assert.ok(one > 0 && one <= 4 * 4 && one < all, `lines: all ${all}, query 3 ${one}`);
  await shot(page, 'tiny_head_hover');
  await page.mouse.move(1, 1);
  await page.click('#head-none');
  assert.equal(await linesDrawn(page), 0);

  // Model view: layers x heads thumbnails; a click opens that pattern in the head view.
  await page.click('#tabs button[data-view="model"]');
  assert.equal(await page.$$eval('#model-grid canvas', (c) => c.length), 4 * 4);
  await shot(page, 'tiny_model');
  await page.click('#model-grid canvas[data-layer="2"][data-head="1"]');
  assert.equal(await page.getAttribute('#tabs button.active', 'data-view'), 'head');
  assert.equal(await page.inputValue('#head-layer'), '2');
  assert.deepEqual(await page.$$eval('#head-heads input:checked', (b) => b.map((x) => x.dataset.head)), ['1']);
  await page.waitForFunction(() => /^layer 2:/.test(document.querySelector('#head-status').textContent));
  assert.ok((await linesDrawn(page)) > 0);

  // Neuron view: one row per key j <= query; softmax of q.k matches the captured pattern (quantised).
  await page.click('#tabs button[data-view="neuron"]');
  await page.locator('#neuron-query').fill('4');
  await page.waitForFunction(() => document.querySelectorAll('.neuron-table tbody tr').length === 5);
  const rows = await page.$$eval('.neuron-table tbody tr', (trs) => trs.map((tr) => ({
    soft: +tr.querySelector('.soft').textContent, captured: +tr.querySelector('.captured').textContent,
    strips: tr.querySelectorAll('canvas').length})));
  for (const r of rows) {
    assert.equal(r.strips, 2);
    assert.ok(Math.abs(r.soft - r.captured) < 0.05, JSON.stringify(rows));
  }
  assert.equal(await page.$$eval('.neuron-query canvas', (c) => c.length), 1);
  await shot(page, 'tiny_neuron');

  // Sink table: one row per layer x head; sorting by bos_mass puts the largest first.
  await page.click('#tabs button[data-view="sinks"]');
  assert.equal(await page.$$eval('.sink-table tbody tr', (r) => r.length), run.attention.sinks.length);
  await page.click('.sink-table th[data-key="bos_mass"]');
  const first = await page.$eval('.sink-table tbody tr td:nth-child(3)', (td) => +td.textContent);
  assert.equal(first.toFixed(3), Math.max(...run.attention.sinks.map((s) => s.bos_mass)).toFixed(3));
  await page.check('#sinks-only');
  assert.equal(await page.$$eval('.sink-table tbody tr', (r) => r.length), run.attention.sinks.filter((s) => s.sink).length);
  await shot(page, 'tiny_sinks');
  assert.deepEqual(errors, []);
  assert.deepEqual(offsite, []);
  await page.context().close();
});

test('page without attention: attention tabs disabled; SVG written', {skip}, async () => {
  const {page, errors} = await open('noattn');
  for (const v of ['head', 'model', 'neuron', 'sinks']) {
    assert.equal(await page.$eval(`#tabs button[data-view="${v}"]`, (b) => b.disabled), true, v);
  }
  assert.equal(await page.$$eval('.lens-panel', (p) => p.length), 1);
  assert.deepEqual(errors, []);
  await page.context().close();
  const svg = fs.readFileSync(path.join(pages, 'tiny.svg'), 'utf8');
  const run = readRun('tiny');
  assert.ok(svg.startsWith('<svg'));
  assert.equal((svg.match(/<rect x=/g) || []).length, run.layers.length * run.tokens.length);
});

test('1000 tokens, 32 layers x 32 heads: opens in under 3 s and stays usable', {skip, timeout: 120_000}, async () => {
  assert.ok(fs.existsSync(path.join(pages, 'large_files', 'attn_31.js')), 'large patterns go to sibling files');
  const {page, errors, ms} = await open('large');
  const timings = await page.evaluate(() => window.lensTimings);
  console.log(`large page: ready ${ms} ms after navigation (in-page start-up ${JSON.stringify(timings)})`);
  assert.ok(ms < kLoadBudgetMs, `large page took ${ms} ms (budget ${kLoadBudgetMs})`);
  await shot(page, 'large_lens');

  // Scrolling right builds further column blocks.
  await page.$eval('.lens-scroll', (s) => { s.scrollLeft = 64 * 690; });
  await page.waitForSelector('.lens-blocks[data-lens="0"] td[data-c="700"]');
  await page.hover('.lens-blocks[data-lens="0"] td[data-r="10"][data-c="700"]');
  assert.ok((await page.textContent('#tooltip')).includes('pos 700'));

  // Head view loads large_files/attn_5.js lazily.
  let t0 = Date.now();
  await page.click('#tabs button[data-view="head"]');
  await page.selectOption('#head-layer', '5');
  await page.waitForFunction(() => /^layer 5:/.test(document.querySelector('#head-status').textContent));
  console.log(`large page: head view layer 5 loaded and drawn in ${Date.now() - t0} ms`);
  assert.ok((await linesDrawn(page)) > 0);
  await shot(page, 'large_head');

  t0 = Date.now();
  await page.click('#tabs button[data-view="model"]');
  assert.equal(await page.$$eval('#model-grid canvas', (c) => c.length), 32 * 32);
  console.log(`large page: model view (1024 thumbnails) built in ${Date.now() - t0} ms`);
  await shot(page, 'large_model');

  await page.click('#tabs button[data-view="neuron"]');
  await page.locator('#neuron-query').fill('900');
  await page.waitForFunction(() => document.querySelectorAll('.neuron-table tbody tr').length === 256);
  await shot(page, 'large_neuron');
  assert.deepEqual(errors, []);
  assert.deepEqual(offsite, []);
  await page.context().close();
});
