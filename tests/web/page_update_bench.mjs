// The dashboard page's update time with many nodes and processes (issue 12's
// benchmark: 100 nodes, 1,000 processes): headless Chromium watches the page
// and reads how long each state event took to draw (the status line's
// data-update-ms), per view. Against a running roamd or, by default, against
// mock_server.mjs started here with --nodes and --procs.
//   node page_update_bench.mjs [--url U] [--nodes 100] [--procs 1000] [--samples 10] [--dist DIR]
// Prints one line per view: "view nodes: median 2.1 ms, max 4.0 ms (10 updates)":
// the time of the views' code for one event (uPlot paints in a microtask after).
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = process.env.ROAM_WEBUI_MODULES || path.join(HERE, '../../web/node_modules');
const { chromium } = createRequire(path.join(MODULES, '..', 'package.json'))('playwright-core');

const opt = { nodes: '100', procs: '1000', samples: '10', dist: path.join(MODULES, '..', 'dist') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];

let mock = null;
let url = opt.url;
if (!url) {
  if (!fs.existsSync(path.join(opt.dist, 'index.html'))) {
    console.error(`no built page in ${opt.dist}: give --dist (BUILD/webui/dist) or --url`);
    process.exit(2);
  }
  mock = spawn(process.execPath, [path.join(HERE, 'mock_server.mjs'), '--dist', opt.dist, '--port', '8096',
    '--nodes', opt.nodes, '--procs', opt.procs], { stdio: 'ignore' });
  url = 'http://127.0.0.1:8096/?token=mocktoken';
  await new Promise((r) => setTimeout(r, 1000));
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  await page.goto(url);
  await page.waitForSelector('#status[data-time]');
  for (const view of ['nodes', 'history', 'processes', 'migmon']) {
    await page.getByTestId('tab-' + view).click();
    await page.waitForTimeout(1500);  // the first draw of a view is not an update
    const ms = [];
    let last = await page.getByTestId('status').getAttribute('data-time');
    while (ms.length < Number(opt.samples)) {
      await page.waitForFunction((t) => document.getElementById('status').dataset.time !== t, last, { timeout: 10000 });
      last = await page.getByTestId('status').getAttribute('data-time');
      ms.push(Number(await page.getByTestId('status').getAttribute('data-update-ms')));
    }
    ms.sort((a, b) => a - b);
    console.log(`view ${view}: median ${ms[ms.length >> 1].toFixed(1)} ms, max ${ms[ms.length - 1].toFixed(1)} ms (${ms.length} updates)`);
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  if (mock) mock.kill();
}
