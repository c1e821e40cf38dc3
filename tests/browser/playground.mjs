// The playground page in headless Chromium: node playground.mjs URL [SCREENSHOT_DIR]
//
// Scenarios, each printing `OK <scenario>` (or `FAIL <scenario>: why`, and
// the run exits 1), each leaving a screenshot in SCREENSHOT_DIR:
//   card      the page loads, the agent card is shown
//   factors   "prime factors 600851475143": progress lines, then the factors
//   csv       a CSV file uploaded: its statistics table
//   cancel    a long factorization canceled from the task list
//   phone     the page at a phone's size
//
// CHROMIUM (default /usr/bin/chromium) is the browser; it is driven by
// playwright-core, which downloads no browser of its own.

import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const [url, outDir = 'target/playground-screenshots'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node playground.mjs URL [SCREENSHOT_DIR]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const FACTORS = '71 × 839 × 1471 × 6857';
// 3 × 311 × a 57-digit cofactor far beyond what Pollard rho splits in the
// CPU budget (the first two factors show as progress lines).
const SEMIPRIME = '671998030559713968361666935769282348564453734211131263736711';
const TIMEOUT = 15_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
});

let failed = false;

async function scenario(name, run) {
  try {
    await run();
    if (problems.length) throw new Error(problems.splice(0).join('; '));
    console.log(`OK ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.message.split('\n')[0]}`);
  } finally {
    await page.screenshot({ path: join(outDir, `${name}.png`) }).catch(() => {});
  }
}

function expect(condition, what) {
  if (!condition) throw new Error(what);
}

// Sends `text` (and whatever is attached) and waits for its turn to settle.
async function ask(text) {
  const before = await page.locator('#log .turn.agent').count();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  const turn = page.locator('#log .turn.agent').nth(before);
  await turn.waitFor({ timeout: TIMEOUT });
  return turn;
}

async function settled(turn) {
  await page.waitForFunction((node) => !node.hasAttribute('aria-busy'), await turn.elementHandle(), { timeout: TIMEOUT });
}

await scenario('card', async () => {
  const resp = await page.goto(url, { waitUntil: 'load' });
  expect(resp.status() === 200, `GET / answered ${resp.status()}`);
  expect((resp.headers()['content-security-policy'] || '').includes("default-src 'self'"), 'no Content-Security-Policy');
  await page.locator('#card .skills li').first().waitFor({ timeout: TIMEOUT });
  const name = await page.locator('#agent-name').textContent();
  expect(/abacus/i.test(name), `agent name ${JSON.stringify(name)}`);
  const skills = await page.locator('#card .skills li').count();
  expect(skills > 0, 'no skills listed');
  expect((await page.locator('#card').textContent()).includes('JSONRPC'), 'bindings not listed');
});

await scenario('factors', async () => {
  const turn = await ask('prime factors 600851475143');
  await settled(turn);
  const progress = await turn.locator('.progress li').allTextContents();
  expect(progress.length >= 2, `progress lines: ${JSON.stringify(progress)}`);
  expect(progress.every((l) => l.startsWith('found factor')), `progress lines: ${JSON.stringify(progress)}`);
  const result = await turn.locator('.artifact').textContent();
  expect(result.includes(FACTORS), `result: ${JSON.stringify(result)}`);
  expect((await turn.locator('.state').textContent()) === 'completed', 'the task did not complete');
});

await scenario('csv', async () => {
  const csv = join(tmpdir(), 'abacus-points.csv');
  writeFileSync(csv, 'x,y\n1,2\n3,5\n4,9\n');
  await page.locator('#attach summary').click();
  await page.getByLabel('Files (CSV, JSON, text or an image)').setInputFiles(csv);
  const turn = await ask('');
  await settled(turn);
  const table = turn.locator('table.stats').first();
  await table.waitFor({ timeout: TIMEOUT });
  const caption = await table.locator('caption').textContent();
  expect(caption.includes('abacus-points.csv') && caption.includes('3 records'), `caption: ${caption}`);
  const rows = await table.locator('tbody tr').allTextContents();
  expect(rows.length === 2, `rows: ${JSON.stringify(rows)}`);
  const x = await table.locator('tbody tr').first().locator('th, td').allTextContents();
  // field, count, missing, mean, median, sd, min, max
  expect(JSON.stringify(x) === JSON.stringify(['x', '3', '0', '2.66667', '3', '1.52753', '1', '4']), `x: ${JSON.stringify(x)}`);
  await table.scrollIntoViewIfNeeded();
});

await scenario('cancel', async () => {
  const turn = await ask(`prime factors ${SEMIPRIME}`);
  const taskId = await turn.getAttribute('data-task-id', { timeout: TIMEOUT }).then(async (id) => {
    if (id) return id;
    await page.waitForFunction((node) => node.dataset.taskId, await turn.elementHandle(), { timeout: TIMEOUT });
    return turn.getAttribute('data-task-id');
  });
  const row = page.locator(`#tasks tr[data-task-id="${taskId}"]`);
  await row.waitFor({ timeout: TIMEOUT });
  const running = await row.getAttribute('data-state');
  expect(['submitted', 'working'].includes(running), `the task is not running: ${running}`);
  await row.getByRole('button', { name: /^Cancel task/ }).click();
  await page.locator(`#tasks tr[data-task-id="${taskId}"][data-state="canceled"]`).waitFor({ timeout: TIMEOUT });
  await settled(turn);
  expect((await turn.locator('.state').textContent()) === 'canceled', 'the stream did not end canceled');
  // GetTask from the list shows the same.
  await page.locator(`#tasks tr[data-task-id="${taskId}"]`).getByRole('button', { name: /^Get task/ }).click();
  await page.locator('#task-detail .state[data-state="canceled"]').waitFor({ timeout: TIMEOUT });
});

await scenario('phone', async () => {
  // The same page, its conversation and tables included, on a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('#log .turn.agent').last().scrollIntoViewIfNeeded();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `the page is ${overflow} px wider than the phone`);
  const box = await page.getByLabel('Message', { exact: true }).boundingBox();
  expect(box && box.width > 200, 'the message box is too narrow');
});

await browser.close();
process.exit(failed ? 1 : 0);
