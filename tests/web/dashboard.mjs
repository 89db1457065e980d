// The dashboard seen by a real browser: headless Chromium (Debian's
// /usr/bin/chromium, never a downloaded one) driven by playwright-core (the
// build tree's webui/node_modules, else web/node_modules). One step per run, each in a fresh profile; every check
// prints "PASS ..." or "FAIL ..." for tests/integration/test_dashboard.sh to
// count, and screenshots go to --out.
//
//   node dashboard.mjs live   --url U --out D --nodes n1,n2,n3,n4 [--gpid G]
//   node dashboard.mjs dead   --url U --out D --node n3 --kill "CMD" [--within 15]
//   node dashboard.mjs drag   --url U --out D --gpid G --from n2 --to n3
//   node dashboard.mjs noauth --url U --out D
// U is the address `roam web` prints (http://ADDR:PORT/?token=T).
import { createRequire } from 'node:module';
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// playwright-core as web/package-lock.json pins it: the build tree's copy
// (cmake/WebUi.cmake's npm ci) when ROAM_WEBUI_MODULES names it.
const MODULES = process.env.ROAM_WEBUI_MODULES || path.join(HERE, '../../web/node_modules');
const require = createRequire(path.join(MODULES, '..', 'package.json'));
const { chromium } = require('playwright-core');

const [step, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const out = opt.out || '.';
fs.mkdirSync(out, { recursive: true });

let failures = 0;
const pass = (m) => console.log('PASS ' + m);
const fail = (m) => { failures++; console.log('FAIL ' + m); };
const check = (ok, m) => (ok ? pass(m) : fail(m));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const row = (page, n) => page.getByTestId('node-row-' + n);

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => fail(`the page threw: ${e.message}`));
  return { context, page, close: async () => { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); } };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(out, name + '.png'), fullPage: true });
}

// Opens U and waits for the first state drawn (the status line's data-time).
async function open(page, url, view = '') {
  const res = await page.goto(url + view, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#status[data-time]');
  return res;
}

async function statusTime(page) {
  return Number(await page.getByTestId('status').getAttribute('data-time'));
}

async function live(page) {
  const names = opt.nodes.split(',');
  const res = await open(page, opt.url);
  check(res.status() === 200, `the page loads with the token (HTTP ${res.status()})`);
  check(!page.url().includes('token='), `the token is dropped from the address bar (${page.url()})`);
  try {
    await page.waitForFunction((ns) => ns.every((n) =>
      document.querySelector(`[data-testid="node-row-${n}"]`)?.dataset.state === 'alive'), names, { timeout: 20000 });
    pass(`the node table shows ${names.join(', ')} alive`);
  } catch {
    fail(`the node table does not show ${names.join(', ')} alive: ${await page.getByTestId('node-table').innerText()}`);
  }
  // Live: the state's time advances and the load figures are redrawn.
  const read = () => page.evaluate((ns) => ns.map((n) => {
    const r = document.querySelector(`[data-testid="node-row-${n}"]`);
    return r ? ['load', 'cpu', 'mem'].map((c) => r.querySelector('td.' + c).textContent).join(' ') : '';
  }), names);
  const t0 = await statusTime(page);
  const first = await read();
  check(first.every((s) => /\d/.test(s)), `every node shows a load, CPU and memory figure (${first.join(' | ')})`);
  let changed = false;
  let times = new Set([t0]);
  let t1 = t0;
  // The first state comes twice (the page's fetch, then the stream's first
  // event) a moment apart: watch until the states span 2 s, not just count.
  for (let i = 0; i < 30 && !(changed && times.size >= 4 && t1 - t0 >= 2000); i++) {
    await sleep(500);
    t1 = await statusTime(page);
    times.add(t1);
    changed ||= (await read()).some((s, j) => s !== first[j]);
  }
  check(times.size >= 4 && t1 - t0 >= 2000, `updates arrive once a second (${times.size} states in ${((t1 - t0) / 1000).toFixed(1)} s)`);
  check(changed, `load figures change live (first: ${first.join(' | ')}; now: ${(await read()).join(' | ')})`);
  await shot(page, 'nodes');

  await page.getByTestId('tab-history').click();
  try {
    await page.waitForFunction((ns) => ns.every((n) =>
      document.querySelector(`[data-testid="history-${n}"] canvas`)), names, { timeout: 10000 });
    pass('a history plot for every node');
  } catch { fail('history plots missing'); }
  await sleep(1500);
  await shot(page, 'history');

  await page.getByTestId('tab-processes').click();
  if (opt.gpid) {
    const r = page.getByTestId('proc-row-' + opt.gpid);
    try {
      await r.waitFor({ timeout: 10000 });
      pass(`the processes view lists ${opt.gpid} (${(await r.innerText()).replace(/\s+/g, ' ')})`);
    } catch { fail(`the processes view does not list ${opt.gpid}`); }
  }
  await shot(page, 'processes');
  await page.getByTestId('tab-migmon').click();
  await page.waitForSelector('[data-testid^="node-box-"]');
  await shot(page, 'migmon');
}

async function dead(page) {
  const n = opt.node;
  const within = Number(opt.within || 15) * 1000;
  await open(page, opt.url);
  await page.waitForFunction((x) => document.querySelector(`[data-testid="node-row-${x}"]`)?.dataset.state === 'alive', n, { timeout: 20000 });
  execSync(opt.kill, { stdio: 'inherit' });
  const t0 = Date.now();
  const seen = new Set();
  let state = '';
  while (Date.now() - t0 < within) {
    state = await row(page, n).getAttribute('data-state');
    seen.add(state);
    if (state === 'dead') break;
    await sleep(100);
  }
  check(state === 'dead', `${n} turns dead on the page ${((Date.now() - t0) / 1000).toFixed(1)} s after its roamd was killed (states seen: ${[...seen].join(' -> ')})`);
  await shot(page, 'dead');
  await page.getByTestId('tab-migmon').click();
  await page.waitForSelector(`[data-testid="node-box-${n}"]`);
  await shot(page, 'dead-migmon');
}

async function drag(page) {
  const { gpid, from, to } = opt;
  await open(page, opt.url, '#migmon');
  const chip = page.getByTestId('proc-' + gpid);
  const fromBox = page.getByTestId('node-box-' + from);
  const toBox = page.getByTestId('node-box-' + to);
  try {
    await fromBox.getByTestId('proc-' + gpid).waitFor({ timeout: 15000 });
    pass(`${gpid} is drawn in ${from}'s box`);
  } catch {
    fail(`${gpid} is not in ${from}'s box`);
    return shot(page, 'drag-before');
  }
  await shot(page, 'drag-before');
  await chip.dragTo(toBox);
  const status = page.getByTestId('migrate-status');
  // The progress line, if the move lasts long enough to be polled.
  try {
    await page.waitForFunction(() => document.querySelector('[data-testid="migrate-status"]').dataset.result === 'moving', null, { timeout: 2000 });
    pass(`the page shows the move under way (${await status.innerText()})`);
    // The server's progress (GET /api/progress), if the move lasts long
    // enough to be polled (a small process moves in ~100 ms): reported only.
    try {
      await page.waitForFunction(() => {
        const st = document.querySelector('[data-testid="migrate-status"]');
        return st.dataset.result === 'moving' && /round \d/.test(st.textContent);
      }, null, { timeout: 3000 });
      console.log(`note: progress polled: ${await status.innerText()}`);
    } catch { console.log('note: the move ended before its progress was polled'); }
    await shot(page, 'drag-moving');
  } catch { console.log(`note: no progress line seen (${await status.innerText()})`); }
  await page.waitForFunction(() => ['ok', 'error'].includes(document.querySelector('[data-testid="migrate-status"]').dataset.result), null, { timeout: 60000 });
  const result = await status.getAttribute('data-result');
  const line = await status.innerText();
  check(result === 'ok' && line.includes(`${from} → ${to}`), `dragging ${gpid} onto ${to}'s box: ${line}`);
  try {
    await toBox.getByTestId('proc-' + gpid).waitFor({ timeout: 10000 });
    pass(`${gpid} is drawn in ${to}'s box after the move`);
  } catch { fail(`${gpid} is not drawn in ${to}'s box after the move`); }
  await shot(page, 'drag-after');
}

async function noauth(page, context) {
  const u = new URL(opt.url);
  const base = `${u.protocol}//${u.host}`;
  let res = await page.goto(base + '/');
  check(res.status() === 401, `the page without the token is refused (HTTP ${res.status()}: ${(await res.text()).trim().slice(0, 120)})`);
  res = await page.goto(base + '/?token=0123456789abcdef');
  check(res.status() === 401, `the page with a wrong token is refused (HTTP ${res.status()})`);
  const api = await context.request.get(base + '/api/state');
  check(api.status() === 401, `/api/state without the token is refused (HTTP ${api.status()})`);
  // Refused later (the cookie gone, a roamd restarted with another token):
  // the page says in one line what to do.
  await page.route('**/api/**', (r) => r.fulfill({ status: 401, contentType: 'text/plain', body: 'needs the token\n' }));
  await page.goto(opt.url);
  try {
    await page.getByTestId('auth-error').waitFor({ state: 'visible', timeout: 10000 });
    pass(`a refused page says so: "${await page.getByTestId('auth-error').innerText()}"`);
  } catch { fail('a refused page shows no line about the token'); }
  await shot(page, 'noauth');
}

const steps = { live, dead, drag, noauth };
if (!steps[step]) {
  console.error(`usage: dashboard.mjs ${Object.keys(steps).join('|')} --url U --out DIR ...`);
  process.exit(2);
}
const b = await launch();
try {
  await steps[step](b.page, b.context);
} catch (e) {
  fail(`${step}: ${e.message.split('\n')[0]}`);
  await shot(b.page, step + '-error').catch(() => {});
} finally {
  await b.close();
}
process.exit(failures ? 1 : 0);
