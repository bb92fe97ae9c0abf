// Times how long a `lens view` page takes to become ready in headless Chromium (offline), for
// pages made from real `lens run --attention` captures. Not a test; see bench/README.md.
// Usage: node bench/time_view_page.mjs PAGE.html [runs]   (needs tests/browser's playwright-core)
import {createRequire} from 'node:module';
import path from 'node:path';
import {pathToFileURL} from 'node:url';

const require = createRequire(path.resolve('tests/browser/package.json'));
const {chromium} = require('playwright-core');
const page_path = process.argv[2];
const runs = Number(process.argv[3] || 3);
const browser = await chromium.launch({executablePath: process.env.LENS_CHROMIUM || '/usr/bin/chromium'});
const times = [];
for (let i = 0; i < runs; ++i) {
  const context = await browser.newContext({viewport: {width: 1300, height: 800}});
  await context.route('**/*', (r) => (r.request().url().startsWith('file:') ? r.continue() : r.abort()));
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(pathToFileURL(path.resolve(page_path)).href);
  await page.waitForFunction(() => window.lensReady === true, null, {timeout: 60_000});
  const ready = Date.now() - t0;
  const t1 = Date.now();
  await page.click('#tabs button[data-view="model"]');
  const thumbs = await page.$$eval('#model-grid canvas', (c) => c.length);
  times.push({ready_ms: ready, model_view_ms: Date.now() - t1, thumbnails: thumbs});
  await context.close();
}
await browser.close();
console.log(JSON.stringify({page: page_path, runs: times}));
