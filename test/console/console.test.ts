import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiSecret, hashPassword, randomId, randomSecret } from '../../src/security/hashing.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { type Browser, launchBrowser, PHONE } from './browser.js';

const PASSWORD = 'console test password';
const JOBS = 53;
const WAIT_MS = 10_000;

/** A device as CONTRACT §7 has it: announces itself, and with `answer` reports every request successful. */
async function connectDevice(
  mqttPort: number,
  id: string,
  token: string,
  answer: boolean,
): Promise<MqttClient> {
  const presence = `fleetjobs/${id}/presence`;
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
    clientId: id,
    username: id,
    password: token,
    protocolVersion: 4,
    reconnectPeriod: 0,
    will: { topic: presence, payload: Buffer.from('offline'), qos: 1, retain: true },
  });
  client.on('message', (topic) => {
    const request = /^fleetjobs\/[^/]+\/jobs\/(\d+)\/request$/.exec(topic);
    if (answer && request !== null) {
      client.publish(`fleetjobs/${id}/jobs/${request[1]}/status`, JSON.stringify({ status: 'successful' }), {
        qos: 1,
      });
    }
  });
  await client.subscribeAsync(`fleetjobs/${id}/jobs/+/request`, { qos: 1 });
  await client.publishAsync(presence, 'online', { qos: 1, retain: true });
  return client;
}

/** The little of the DOM the page-side checks use (this project's TypeScript has no DOM types). */
interface PageGlobals {
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    querySelectorAll(selector: string): { length: number };
  };
}

describe('the web console in chromium', () => {
  let dir: string;
  let server: RunningServer;
  let browser: Browser;
  let devices: MqttClient[];
  let key: { id: string; secret: string };
  let page: Page;

  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked by the assertions
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const id = (n: number) => `00000000-00000000-0000C0DE-${n.toString(16).toUpperCase().padStart(8, '0')}`;
  const rowCount = () => page.locator('table tbody tr').count();
  // Page-side checks are functions (self-contained), not text: the console's CSP forbids evaluating text.
  const waitCount = (selector: string, count: number) =>
    page.waitForFunction(
      ([sel, n]) => (globalThis as unknown as PageGlobals).document.querySelectorAll(sel).length === n,
      [selector, count] as const,
    );
  const waitExact = (selector: string, text: string) =>
    page.waitForFunction(
      ([sel, t]) => (globalThis as unknown as PageGlobals).document.querySelector(sel)?.textContent === t,
      [selector, text] as const,
    );
  /** Waits for the first element of `selector` that contains `text`. */
  const waitText = (selector: string, text: string) =>
    page.locator(selector, { hasText: text }).first().waitFor({ timeout: WAIT_MS });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetjobs-console-'));
    const db = join(dir, 'fleetjobs.db');
    const seed = await openSqliteStore(db);
    const { id: accountId } = await seed.ensureAccount('acme', Date.now());
    const alice = await seed.createUser({
      accountId,
      username: 'alice',
      passwordHash: await hashPassword(PASSWORD),
      role: 'user',
      now: Date.now(),
    });
    const secret = randomSecret();
    const created = await seed.createApiKey({
      id: randomId(),
      userId: alice.id,
      secretHash: hashApiSecret(secret),
      now: Date.now(),
    });
    key = { id: created.id, secret };
    await seed.close();

    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      mqttPort: 0,
      db,
      logger: pino({ level: 'silent' }),
    });
    const registered: { id: string; device_token: string }[] = (
      await api(
        'POST',
        '/ws/v1/devices/inventory',
        Array.from({ length: 30 }, (_, index) => ({
          id: id(index + 1),
          name: `pump ${index + 1}`,
          group: index < 10 ? '/NorthWest/Seattle' : "/South/O'Hare",
          tags: index % 3 === 0 ? ['sensor'] : [],
        })),
      )
    ).list;
    // Device 1 does every job it is sent, device 2 takes them and never ends: in progress.
    devices = await Promise.all(
      [0, 1].map((index) =>
        connectDevice(
          server.mqttPort as number,
          id(index + 1),
          registered[index]?.device_token ?? '',
          index === 0,
        ),
      ),
    );
    for (let n = 1; n <= JOBS; n++) {
      await api('POST', '/ws/v1/jobs/inventory', {
        job_type: n % 2 === 0 ? 'reboot' : 'send_message',
        description: `job number ${n}`,
        targets: n === JOBS ? { groups: ['/NorthWest'] } : { devices: [id((n % 30) + 1)] },
      });
    }
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(WAIT_MS);
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    for (const device of devices ?? []) await device.endAsync();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for credentials, refuses wrong ones, and signs in with a password', async () => {
    await page.goto(server.url);
    await page.getByLabel('Username', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toMatch(/password|credentials|unauthor/i);

    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    await waitText('table tbody tr', `job number ${JOBS}`);
    expect(await rowCount()).toBe(50);
    await browser.screenshot(page, 'jobs-1280x800');
  });

  it('pages through the jobs by cursor and orders them', async () => {
    await page.getByRole('button', { name: 'Next page' }).click();
    await waitText('.pager', 'Page 2');
    await waitText('table tbody tr', 'job number 1');
    expect(await rowCount()).toBe(JOBS - 50);
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await waitText('table tbody tr', `job number ${JOBS}`);

    await page.getByLabel('Direction').selectOption('asc');
    await waitExact('table tbody tr a', '#1');
    expect(page.url()).toContain('orderby=id+asc');
  });

  it('queries jobs with the v1 language, and shows a query error at its position', async () => {
    await page.getByLabel('Query').fill("job_type = 'reboot' and id <= 10");
    await page.getByRole('button', { name: 'Search' }).click();
    await waitCount('table tbody tr', 5);
    expect(await page.locator('table tbody tr td:nth-child(3)').allTextContents()).toEqual(
      Array(5).fill('reboot'),
    );

    await page.getByLabel('Query').fill("job_type = 'reboot' and and");
    await page.getByRole('button', { name: 'Search' }).click();
    const error = page.locator('.query-error');
    await error.waitFor();
    expect(await error.textContent()).toContain('Invalid query at position 25');
    const caret = (await error.locator('pre').textContent()) ?? '';
    expect(caret.split('\n')).toEqual(["job_type = 'reboot' and and", `${' '.repeat(24)}^`]);
    expect(await page.getByLabel('Query').getAttribute('aria-invalid')).toBe('true');
    await browser.screenshot(page, 'jobs-query-error-1280x800');
  });

  it('shows a job: counts as a stacked bar, targets with a status filter, updated live', async () => {
    await page.goto(`${server.url}/#/jobs`);
    await page.getByRole('link', { name: `#${JOBS}` }).click();
    await page.getByRole('heading', { name: `Job ${JOBS} · send_message` }).waitFor();
    // Ten targets: device 1 answers (successful), device 2 is in progress, eight wait queued.
    await waitExact('[data-count="progress_success"]', '1');
    expect(await page.locator('[data-count="progress_pending"]').textContent()).toBe('9');
    expect(await page.getByRole('img', { name: /10 targets: 1 successful/ }).count()).toBe(1);
    await waitText('table.targets tbody tr', id(2));
    expect(await rowCount()).toBe(10);

    await page.getByLabel('Status').selectOption('in_progress');
    await waitCount('table.targets tbody tr', 1);
    expect(await page.locator('table.targets tbody tr td').first().textContent()).toBe(id(2));
    await page.getByLabel('Status').selectOption('failed');
    await page.getByText('No target is failed.').waitFor();
    await page.getByLabel('Status').selectOption('');
    await browser.screenshot(page, 'job-1280x800');

    // A change made elsewhere shows up without reloading.
    await page.goto(`${server.url}/#/jobs/${JOBS - 1}`);
    await page.locator('.page-head .status', { hasText: 'in progress' }).waitFor();
    await api('PUT', `/ws/v1/jobs/cancel/${JOBS - 1}`);
    await page.locator('.page-head .status', { hasText: 'canceled' }).waitFor();
  });

  it('cancels a job, then forces the cancel of its target in progress', async () => {
    await page.goto(`${server.url}/#/jobs/${JOBS}`);
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.locator('.page-head .status', { hasText: 'canceled' }).waitFor();
    await waitExact('[data-count="progress_canceled"]', '8');
    expect(await page.getByRole('button', { name: 'Cancel', exact: true }).count()).toBe(0);

    await page.getByRole('button', { name: 'Force cancel' }).click();
    await waitExact('[data-count="progress_canceled"]', '9');
    expect(await page.getByRole('button', { name: 'Force cancel' }).count()).toBe(0);
    const job = await api('GET', `/ws/v1/jobs/${JOBS}`);
    expect(job).toMatchObject({
      job_status: 'canceled',
      progress_success: 1,
      progress_canceled: 9,
      progress_pending: 0,
    });
  });

  it('lists devices with their connection state and groups', async () => {
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await waitText('table.devices tbody tr', id(30));
    expect(await rowCount()).toBe(30);
    const presence = await page.locator('table.devices .presence').allTextContents();
    expect(presence.filter((state) => state === 'connected')).toHaveLength(2);
    expect(presence[0]).toBe('connected');
    await browser.screenshot(page, 'devices-1280x800');

    await page.getByRole('link', { name: "/South/O'Hare" }).first().click();
    await waitCount('table.devices tbody tr', 20);
    expect(await page.getByLabel('Query').inputValue()).toBe("group startsWith '/South/O''Hare'");
  });

  it('creates a job after previewing its targets', async () => {
    await page.getByRole('link', { name: 'New job' }).first().click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const create = page.getByRole('button', { name: 'Create job' });
    expect(await create.isDisabled()).toBe(true);

    await page.getByLabel('Groups').fill('/Nowhere');
    await page.getByRole('button', { name: 'Preview targets' }).click();
    await waitText('[role=alert]', 'The job has no target');

    await page.getByLabel('Job type').selectOption('reboot');
    await page.getByLabel('Description').fill('made in the console');
    await page.getByLabel('Groups').fill('/NorthWest');
    await page.getByLabel('Tags').fill('sensor');
    await page.getByRole('button', { name: 'Preview targets' }).click();
    await page.locator('[data-field="preview-count"]').waitFor();
    // Ten in /NorthWest, plus the six sensors (every third device) of the twenty others; two are connected.
    expect(await page.locator('[data-field="preview-count"]').textContent()).toBe('16');
    expect(await page.locator('[data-field="preview-offline"]').textContent()).toBe('14');
    expect(await page.locator('.preview-ids li').first().textContent()).toBe(id(1));
    await browser.screenshot(page, 'new-job-1280x800');

    await page.getByLabel('Tags').fill('');
    expect(await create.isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Preview targets' }).click();
    await waitExact('[data-field="preview-count"]', '10');
    await create.click();
    await page.getByRole('heading', { name: /^Job \d+ · reboot$/ }).waitFor();
    const latest = (await api('GET', '/ws/v1/jobs/inventory?size=1')).list[0];
    expect(latest).toMatchObject({
      description: 'made in the console',
      job_type: 'reboot',
      target_count: 10,
    });
    expect(page.url()).toContain(`#/jobs/${latest.id}`);

    // Back to the list by its link (whose request starts at the click): the new job is on top.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    await waitExact('table tbody tr a', `#${latest.id}`);
    expect(await page.locator('table tbody tr td:nth-child(4)').first().textContent()).toBe(
      'made in the console',
    );
  });

  it('creates a job with rollout controls, shows its rollout state, pauses and resumes it', async () => {
    await page.getByRole('link', { name: 'New job' }).first().click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    await page.getByLabel('Groups').fill('/NorthWest');
    await page.getByLabel('Requests per minute').fill('1');
    await page.getByLabel('Retries').fill('2');
    await page.getByLabel('Abort above (% failed)').fill('12.5');
    await page.getByLabel('After ended targets').fill('4');
    await page.getByLabel('Then').selectOption('pause');
    await page.getByRole('button', { name: 'Preview targets' }).click();
    await waitExact('[data-field="preview-count"]', '10');
    await browser.screenshot(page, 'new-job-rollout-1280x800');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.getByRole('heading', { name: /^Job \d+ · reboot$/ }).waitFor();
    const latest = (await api('GET', '/ws/v1/jobs/inventory?size=1')).list[0];
    expect(await api('GET', `/ws/v1/jobs/${latest.id}`)).toMatchObject({
      rollout: { max_per_minute: 1 },
      retry: { failed: 2, timed_out: 2 },
      abort: [{ failure: 'any', threshold_percent: 12.5, min_executed: 4, action: 'pause' }],
      schedule: null,
    });
    await waitExact('[data-field="rollout_state"]', 'running');
    await page.getByRole('button', { name: 'Pause' }).click();
    await waitExact('[data-field="rollout_state"]', 'paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await waitExact('[data-field="rollout_state"]', 'running');
    await browser.screenshot(page, 'job-rollout-1280x800');
  });

  it('signs in with an API key in a new tab, and reads well on a phone', async () => {
    const phone = await browser.newPage(PHONE);
    await phone.goto(server.url);
    await phone.getByLabel('an API key').check();
    await phone.getByLabel('API key id').fill(key.id);
    await phone.getByLabel('API key secret').fill(key.secret);
    await phone.getByRole('button', { name: 'Sign in' }).click();
    await phone.locator('table tbody tr').first().waitFor();
    const overflow = () => phone.evaluate('document.documentElement.scrollWidth - window.innerWidth');
    expect(await overflow()).toBeLessThanOrEqual(0);
    await browser.screenshot(phone, 'jobs-390x844');
    await phone.goto(`${server.url}/#/jobs/${JOBS}`);
    await phone.locator('.state-bar').first().waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await browser.screenshot(phone, 'job-390x844');
    await phone.goto(`${server.url}/#/new`);
    await phone.getByLabel('Groups').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await browser.screenshot(phone, 'new-job-390x844');

    await phone.getByRole('button', { name: 'Sign out' }).click();
    await phone.getByRole('button', { name: 'Sign in' }).waitFor();
    await phone.close();
  });

  it('can be used with the keyboard alone', async () => {
    await page.goto('about:blank');
    await page.goto(`${server.url}/#/jobs`);
    await page.locator('table tbody tr').first().waitFor();
    const focused = () => page.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''");
    const labels: string[] = [];
    for (let step = 0; step < 4; step++) {
      await page.keyboard.press('Tab');
      labels.push(await focused());
    }
    expect(labels).toEqual(['fleetjobs', 'Jobs', 'Devices', 'New job']);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    // The focus moved to the new page's heading; the form's first field follows it.
    expect(await focused()).toBe('New job');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>("document.activeElement?.id ?? ''")).toBe('new-job_type');
  });

  it('loads nothing from another host', () => {
    const foreign = browser.requested.filter(
      (url) => !url.startsWith(server.url) && !url.startsWith('data:'),
    );
    expect(foreign).toEqual([]);
    expect(browser.requested.length).toBeGreaterThan(10);
  });
});
