// The flame-graph page in a real browser: headless Chromium (Debian's chromium, as .ci/run installs it) driven by
// playwright-core, against the demo service. MUTEXPROF_SCREENSHOT=docs/ui.png also saves the README's screenshot.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

// The browser globals the page functions below use (this file is compiled without the DOM's types).
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null }>;
};

const root = fileURLToPath(new URL('..', import.meta.url));
const browserPath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));

describe.skipIf(!browserPath)('/debug/pprof/ui/ in headless Chromium', () => {
  let demo: ChildProcess;
  let base = '';
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const offsite: string[] = [];

  beforeAll(async () => {
    demo = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], {
      cwd: root,
      env: { ...process.env, PORT: '0', LOAD_SECONDS: '60', LOAD_RATE: '3000', MUTEX_PROFILE_FRACTION: '1', BLOCK_PROFILE_RATE: '1', BLOCK_PROFILE_FRACTION: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    while (!/listening on (http:\S+)/.test(out)) out += ((await once(demo.stdout!, 'data')) as [Buffer])[0].toString();
    base = /listening on (http:\S+)/.exec(out)![1];
    demo.stdout!.resume();
    // contention on each of the demo's locks first (bounded wait), each function wide enough to be drawn: the chart
    // leaves out frames narrower than a pixel, and the first reload's few waiters weigh little beside the rest
    interface Node {
      name: string;
      value: number;
      children?: Node[];
    }
    const widest = (n: Node, name: string): number => Math.max(n.name === name ? n.value : 0, ...(n.children ?? []).map((c) => widest(c, name)));
    for (let i = 0; i < 300; i++) {
      const data = (await (await fetch(`${base}/debug/pprof/ui/data.json?profile=mutex`)).json()) as { locks: Array<{ name: string }>; tree: Node };
      const locks = data.locks.map((l) => l.name);
      const wide = (n: string): boolean => widest(data.tree, n) >= 0.01 * data.tree.value;
      if (['SettingsStore.reload', 'UserCache.get', 'EventQueue.flush'].every(wide) && ['settings', 'user-cache', 'event-flush'].every((n) => locks.includes(n))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) offsite.push(r.url());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (demo !== undefined && demo.exitCode === null) {
      demo.kill();
      await once(demo, 'exit');
    }
  });

  // the page's state, read in the browser (functions, not strings: the page's CSP forbids eval)
  const summaryMatches = (re: RegExp): Promise<unknown> => page.waitForFunction((src) => new RegExp(src).test(document.getElementById('summary')?.textContent ?? ''), re.source);
  const frames = (): Promise<string[]> => page.$$eval('#chart g.frame', (gs) => gs.map((g) => g.getAttribute('name') ?? ''));

  test('reached from the index; shows the demo’s locks as frames, with nothing from outside the service', async () => {
    await page.goto(`${base}/debug/pprof/`);
    await page.click('text=Flame graphs');
    await page.waitForURL(/\/debug\/pprof\/ui\/$/);
    await page.waitForSelector('#chart g.frame');
    const names = await frames();
    for (const n of ['SettingsStore.reload', 'UserCache.get', 'EventQueue.flush', 'RWMutex.unlock']) expect(names).toContain(n);
    const locks = await page.$$eval('#lock option', (os) => os.map((o) => o.getAttribute('value')));
    expect(locks).toEqual(expect.arrayContaining(['settings', 'user-cache', 'event-flush']));
    // over every lock, each lock is a frame of its own below the root: one function of two locks is drawn twice
    for (const n of ['lock settings', 'lock user-cache', 'lock event-flush']) expect(names).toContain(n);
    expect(await page.textContent('#summary')).toMatch(/^mutex: [\d.]+ (ns|µs|ms|s) delay since the process started/);
    // the value menu says what the numbers are, as the summary shows them (a time, not nanoseconds)
    expect(await page.$$eval('#value option', (os) => os.map((o) => o.textContent))).toEqual(['contentions (count)', 'delay (time)']);
  });

  test('the lock filter changes what is shown; the value switch shows counts', async () => {
    await page.selectOption('#lock', 'settings');
    await summaryMatches(/on lock settings/);
    const names = await frames();
    expect(names).toContain('SettingsStore.reload');
    expect(names).not.toContain('UserCache.get');
    expect(names).not.toContain('EventQueue.flush');
    expect(page.url()).toContain('lock=settings');

    await page.selectOption('#value', 'contentions');
    await summaryMatches(/ contentions on lock settings/);
    expect(await frames()).toContain('SettingsStore.reload');

    await page.selectOption('#profile', 'block');
    await summaryMatches(/^block:/);
    expect((await frames()).some((n) => /RWMutex\.(r?[Ll]ock|withRLock)|Mutex\.(lock|withLock)|KeyedMutex\.lock|Semaphore\.acquire/.test(n))).toBe(true);

    // Back undoes each choice, in turn
    await page.goBack();
    await summaryMatches(/^mutex: .* contentions on lock settings/);
    await page.goBack();
    await summaryMatches(/^mutex: .* delay on lock settings/);
    await page.goBack();
    await summaryMatches(/^mutex: [^ ]+ [^ ]+ delay since the process started/);
    expect(page.url()).not.toContain('lock=');

    await page.selectOption('#profile', 'mutex');
    await summaryMatches(/^mutex:/);
    if (process.env.MUTEXPROF_SCREENSHOT) {
      // d3 grows new frames from width 0: wait until the root frame spans the chart
      await page.waitForFunction(
        () => Math.max(...Array.from(document.querySelectorAll('#chart rect'), (r) => Number(r.getAttribute('width')))) >= 0.99 * Number(document.querySelector('#chart svg')?.getAttribute('width')),
      );
      await page.screenshot({ path: process.env.MUTEXPROF_SCREENSHOT, fullPage: true });
    }
  });

  test('the last N seconds: a delta of what happens from now on', async () => {
    await page.goto(`${base}/debug/pprof/ui/?profile=block&seconds=1`);
    await summaryMatches(/^block: .* over 1 s\./);
    expect(await page.$eval('#window', (s) => (s as unknown as { value: string }).value)).toBe('1');
    await page.goto(`${base}/debug/pprof/ui/?profile=locks`);
    await summaryMatches(/^locks: .* now\./);
  });

  test('no console error, no request outside the service', () => {
    expect(problems).toEqual([]);
    expect(offsite).toEqual([]);
  });
});
