// The web console in headless chromium, as a user would use it: sign in,
// queue calls from a CSV file with good and bad rows, watch them complete,
// open a call, search and filter, cancel a call and a queue, pause and
// resume, sign out. Run by tools/run_browser.sh, which starts the services
// and passes OB_BROWSER_URL, OB_BROWSER_ADMIN_KEY and OB_BROWSER_SCREENSHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { chromium } from 'playwright-core';

const base = process.env.OB_BROWSER_URL;
const adminKey = process.env.OB_BROWSER_ADMIN_KEY;
const shots = process.env.OB_BROWSER_SCREENSHOTS || 'build/test-logs/screenshots';
const XSS = '<script>window.__xss = 1; alert("xss")</script><img src=x onerror="window.__xss=2">';

let browser, page, key, receiver;
const webhooks = []; // bodies the result_url receiver got
const dialogs = [];  // window.alert/confirm/prompt: none may ever open
const pageErrors = []; // uncaught errors and Content-Security-Policy violations
const ids = {};

async function api(method, p, body, k = key) {
  const resp = await fetch(base + p, {
    method,
    headers: { Authorization: 'Bearer ' + k, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  assert.ok(resp.ok, `${method} ${p}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function shot(name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
}

// Rows of the calls table (the "No calls." row excluded).
function callRows() {
  return page.locator('#calls tbody tr[data-call-id]');
}

// Waits until the calls table shows tab's answer with n rows.
async function waitRows(tab, n, timeout = 20000) {
  await page.waitForFunction(([t, k]) => {
    const table = document.querySelector('#calls');
    return table && table.dataset.tab === t && table.querySelectorAll('tbody tr[data-call-id]').length === k;
  }, [tab, n], { timeout });
}

async function uploadCsv(csv, { attempts, start } = {}) {
  await page.click('#queue-calls');
  await page.waitForSelector('#upload-dialog[open]');
  await page.setInputFiles('#csv-file', { name: 'calls.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  if (attempts) await page.fill('#max-attempts', String(attempts));
  if (start) await page.fill('#range-start', start);
  await page.click('#upload-submit');
  await page.waitForSelector('#report-queued');
}

before(async () => {
  assert.ok(base && adminKey, 'run through tools/run_browser.sh');
  const account = await api('POST', '/api/v1/accounts',
    { email: `browser-${Date.now()}@example.com`, name: 'Browser test' }, adminKey);
  key = account.api_key.key;
  // The live deployment's result_url: a receiver that answers 200.
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { webhooks.push(body); res.end('ok'); });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const app = await api('POST', '/api/v1/applications', { name: 'Reminders' });
  ids.live = (await api('POST', `/api/v1/applications/${app.application_id}/deployments`,
    { name: 'live', capacity: 5, max_attempts: 1,
      result_url: `http://127.0.0.1:${receiver.address().port}/results` })).deployment_id;
  ids.later = (await api('POST', `/api/v1/applications/${app.application_id}/deployments`,
    { name: 'later', capacity: 5 })).deployment_id;
  ids.many = (await api('POST', `/api/v1/applications/${app.application_id}/deployments`,
    { name: 'many', capacity: 5 })).deployment_id;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text()); });
});

after(async () => {
  await browser?.close();
  receiver?.close();
});

test('the console is served with a strict Content-Security-Policy', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/console/app.js', 'text/javascript'], ['/console/app.css', 'text/css']]) {
    const resp = await fetch(base + p);
    assert.equal(resp.status, 200, p);
    assert.ok(resp.headers.get('content-type').startsWith(type), p);
    const csp = resp.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(resp.headers.get('x-content-type-options'), 'nosniff');
    const etag = resp.headers.get('etag');
    assert.ok(etag, p);
    const again = await fetch(base + p, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, p);
  }
  assert.equal((await fetch(base + '/console/missing.js')).status, 404);
});

test('sign in: a wrong key is refused, the right one shows the deployments', async () => {
  await page.goto(base + '/');
  await page.fill('#api-key', 'obk_not_a_real_key_000000000000000000000000');
  await page.click('button[type=submit]');
  await page.getByText('That API key is not valid.').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  await page.fill('#api-key', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('#deployments table');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'the key is never in localStorage');
  const text = await page.textContent('#deployments');
  assert.match(text, /Reminders/);
  assert.match(text, /live/);
  assert.match(text, /later/);
  await shot('deployments');
});

test('queue calls from a CSV file: good rows queued, bad rows reported with their reason', async () => {
  await page.click(`a[href="#/deployments/${ids.live}"] >> nth=0`);
  await page.waitForSelector('#app-name');
  assert.equal(await page.textContent('#app-name'), 'Reminders');
  const csv = [
    'phone_number,message_reference',
    '+12125550100,ref-voice',
    '+12125550110,ref-machine',
    '12,ref-short',
    '+12125550130,ref-busy',
    `+12125550120,"${XSS.replace(/"/g, '""')}"`,
    'not a number,ref-bad',
  ].join('\n') + '\n';
  await uploadCsv(csv, { attempts: 1 });
  assert.equal(await page.textContent('#report-queued'), '4');
  assert.equal(await page.textContent('#report-rejected'), '2');
  const rejected = await page.locator('#rejected-rows tbody tr').allTextContents();
  assert.equal(rejected.length, 2);
  assert.match(rejected[0], /^3/);
  assert.match(rejected[0], /phone_number/);
  assert.match(rejected[0], /invalid_phone_number/);
  assert.match(rejected[1], /^6/);
  assert.ok(await page.evaluate(() => document.querySelector('#upload-progress').value) === 100);
  await shot('upload-report');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-report')]);
  const report = fs.readFileSync(await download.path(), 'utf8');
  assert.match(report, /row/);
  assert.match(report, /invalid_phone_number/);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#upload-dialog', { state: 'detached' });
});

test('calls go from pending to completed, live', async () => {
  await page.click('#tab-completed');
  await waitRows('completed', 4, 60000);
  const statuses = await page.locator('#calls tbody tr[data-call-id] td:nth-child(3)').allTextContents();
  assert.deepEqual(statuses.sort(), ['completed', 'completed', 'completed', 'failed']);
  await page.click('#tab-pending');
  await waitRows('pending', 0);
  await page.click('#tab-completed');
  await waitRows('completed', 4);
  // The charts have the results.
  await page.waitForSelector('#chart-results svg');
  assert.match(await page.getAttribute('#chart-results svg', 'aria-label'), /voice 1/);
  await shot('queue');
});

test('a message_reference with markup is shown as text, never run', async () => {
  const cell = page.locator('#calls tbody td.ref', { hasText: '<script>' });
  assert.equal(await cell.textContent(), XSS);
  assert.equal(await page.locator('#calls script, #calls img').count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(dialogs, []);
});

test('search by number and filter by result', async () => {
  await page.fill('#search-number', '+1 212-555-0100');
  await page.click('#filters button[type=submit]');
  await waitRows('completed', 1);
  assert.match(await callRows().first().textContent(), /ref-voice/);
  await page.click('#filters button[type=reset]');
  await page.selectOption('#filter-result', 'busy');
  await page.click('#filters button[type=submit]');
  await waitRows('completed', 1);
  assert.match(await callRows().first().textContent(), /ref-busy/);
  await page.click('#filters button[type=reset]');
  await page.fill('#search-reference', 'ref-machine');
  await page.click('#filters button[type=submit]');
  await waitRows('completed', 1);
  assert.match(await callRows().first().textContent(), /answeringmachine/);
});

test('call detail: attempts with times, the timeline, the callee type', async () => {
  await page.click('#calls tbody tr[data-call-id] a');
  await page.waitForSelector('#attempts');
  assert.doesNotMatch(await page.textContent('#call'), /\b(null|undefined|NaN)\b/);
  const fields = await page.textContent('#call-fields');
  assert.match(fields, /Callee type\s*answeringmachine/);
  assert.match(fields, /ref-machine/);
  const attempt = await page.locator('#attempts tbody tr').first().textContent();
  assert.match(attempt, /answeringmachine/);
  assert.match(attempt, /\d+(\.\d)? (ms|s)/);
  const timeline = await page.textContent('#timeline');
  for (const step of ['queued', 'dialing', 'connected', 'completed']) assert.match(timeline, new RegExp(step));
  // Its result webhook was delivered to the receiver, and the page shows it.
  await page.waitForSelector('#deliveries', { timeout: 30000 });
  await page.waitForFunction(() => /delivered/.test(document.querySelector('#deliveries tbody').textContent));
  assert.match(await page.textContent('#deliveries tbody'), /\/results.*delivered.*200/s);
  assert.ok(webhooks.some((b) => b.includes('ref-machine')));
  await shot('call');
  await page.click('text=← Queue');
  await page.waitForSelector('#app-name');
});

test('cancel one call, then the whole queue', async () => {
  await page.goto(`${base}/#/deployments/${ids.later}`);
  await page.waitForSelector('#app-name');
  const tomorrow = new Date(Date.now() + 86400000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await uploadCsv('phone_number,message_reference\n+12125550100,later-1\n+12125550100,later-2\n+12125550100,later-3\n',
    { start: local });
  assert.equal(await page.textContent('#report-queued'), '3');
  await page.keyboard.press('Escape');
  await waitRows('pending', 3, 30000);
  const call = await api('GET', `/api/v1/deployments/${ids.later}/calls?message_reference=later-2`);
  assert.equal(call.calls[0].state, 'queued');
  await page.click(`#calls tr[data-call-id="${call.calls[0].call_id}"] button`);
  await waitRows('pending', 2);
  const cancelled = await api('GET', `/api/v1/calls/${call.calls[0].call_id}`);
  assert.equal(cancelled.status, 'uncalled');
  assert.equal(cancelled.reason, 'cancelled');

  await page.click('#cancel-queue');
  await page.waitForSelector('#confirm[open]');
  await shot('cancel-queue');
  await page.click('#confirm-yes');
  await waitRows('pending', 0, 30000);
  await page.click('#tab-completed');
  await waitRows('completed', 3);
  const statuses = await page.locator('#calls tbody tr[data-call-id] td:nth-child(3)').allTextContents();
  assert.deepEqual(statuses, ['uncalled', 'uncalled', 'uncalled']);
});

test('pages of 25 calls, older and newer', async () => {
  await page.goto(`${base}/#/deployments/${ids.many}`);
  await page.waitForSelector('#app-name');
  const rows = Array.from({ length: 30 }, (_, i) => `+12125550100,page-${i + 1}`).join('\n');
  await uploadCsv(`phone_number,message_reference\n${rows}\n`, { start: '2099-01-01T09:00' });
  assert.equal(await page.textContent('#report-queued'), '30');
  await page.keyboard.press('Escape');
  const refs = () => page.locator('#calls tbody td.ref').allTextContents();
  await waitRows('pending', 25, 30000);
  assert.equal(await page.isDisabled('#newer'), true);
  const first = await refs();
  await page.click('#older');
  await waitRows('pending', 5);
  assert.equal(await page.isDisabled('#older'), true);
  assert.match(await page.textContent('#calls-panel .pager'), /Page 2/);
  const second = await refs();
  assert.equal(new Set([...first, ...second]).size, 30, 'every call once, on one page or the other');
  await page.click('#newer');
  await waitRows('pending', 25);
  assert.deepEqual(await refs(), first);
});

test('pause and resume the queue', async () => {
  await page.click('#pause');
  await page.waitForFunction(() => document.querySelector('[data-stat="State"] .v').textContent === 'paused');
  assert.equal(await page.textContent('#pause'), 'Resume');
  assert.equal((await api('GET', `/api/v1/deployments/${ids.many}/summary`)).paused, true);
  await page.click('#pause');
  await page.waitForFunction(() => document.querySelector('[data-stat="State"] .v').textContent === 'running');
  assert.equal((await api('GET', `/api/v1/deployments/${ids.many}/summary`)).paused, false);
});

test('a tablet-sized window shows the same queue page', async () => {
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.goto(`${base}/#/deployments/${ids.live}`);
  await page.waitForSelector('#calls tbody tr');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling of the page');
  await shot('queue-tablet');
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('sign out forgets the key', async () => {
  await page.click('#sign-out');
  await page.waitForSelector('#api-key');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
});
