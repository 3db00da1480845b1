// End to end, as a user would: start the demo service and point the real `go tool pprof` at it.
// CI installs Debian's golang-go when go is missing, so this always runs there.
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { goBinary } from './helpers.js';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
const go = goBinary();

describe.skipIf(!go)('go tool pprof against the demo service', () => {
  let demo: ChildProcess;
  let base = '';
  let home = ''; // go tool pprof saves fetched profiles under $HOME/pprof
  const pprof = async (...args: string[]): Promise<string> => (await run(go!, ['tool', 'pprof', ...args], { env: { ...process.env, HOME: home, PPROF_TMPDIR: home }, timeout: 60_000 })).stdout;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'mutexprof-e2e-'));
    demo = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], {
      cwd: root,
      env: { ...process.env, PORT: '0', LOAD_SECONDS: '60', LOAD_RATE: '3000', MUTEX_PROFILE_FRACTION: '1', BLOCK_PROFILE_RATE: '1', BLOCK_PROFILE_FRACTION: '1', HOLD_PROFILE_FRACTION: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    while (!/listening on (http:\S+)/.test(out)) out += ((await once(demo.stdout!, 'data')) as [Buffer])[0].toString();
    base = /listening on (http:\S+)/.exec(out)![1];
    expect(out).toContain(`go tool pprof -top ${base}/debug/pprof/mutex`);
    expect(out).toContain('-http=127.0.0.1:8080'); // Go's web UI on loopback, not on every interface
    expect(out).toContain('-tagfocus lock=');
    expect(out).toContain('/debug/pprof/block');
    // let the load loop make contention on every lock (bounded wait, no fixed sleep deciding the outcome)
    for (let i = 0; i < 300; i++) {
      const text = await (await fetch(`${base}/debug/pprof/mutex?debug=1`)).text();
      if (['SettingsStore.reload', 'UserCache.get', 'EventQueue.flush'].every((n) => text.includes(n))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    if (demo !== undefined && demo.exitCode === null) {
      demo.kill();
      await once(demo, 'exit'); // the demo removes its own temp dir on SIGTERM
    }
    rmSync(home, { recursive: true, force: true });
  });

  test('-top names the demo’s holders', async () => {
    const out = await pprof('-top', `${base}/debug/pprof/mutex`);
    expect(out).toContain('Type: delay');
    for (const name of ['RWMutex.unlock', 'Mutex.unlock', 'SettingsStore.reload', 'UserCache.get']) expect(out).toContain(name);
  });

  test('-raw: Go’s sample types, labels and a positive total', async () => {
    const out = await pprof('-raw', `${base}/debug/pprof/mutex`);
    expect(out).toContain('PeriodType: contentions count');
    expect(out).toContain('contentions/count delay/nanoseconds');
    expect(out).toMatch(/lock:\[settings\]/);
    expect(out).toMatch(/trace_endpoint:\[(GET \/users\/:id|POST \/events|POST \/admin\/reload)\]/); // from OpenTelemetry: no labels in the demo's code
    const total = [...out.matchAll(/^\s+\d+\s+(\d+):/gm)].reduce((t, m) => t + Number(m[1]), 0);
    expect(total).toBeGreaterThan(1e6); // > 1 ms of delay in 3 s of load
    expect(out).toMatch(/examples\/demo\.ts:\d+/); // TypeScript positions (tsx source maps)
  });

  test('-traces shows labels above stacks; -tagfocus keeps one lock', async () => {
    const traces = await pprof('-traces', `${base}/debug/pprof/block`);
    expect(traces).toMatch(/lock:\s+(settings|user-cache|event-flush)/);
    expect(traces).toMatch(/RWMutex\.(r?[Ll]ock)|Mutex\.lock/);
    const focused = await pprof('-top', '-tagfocus', 'lock=settings', `${base}/debug/pprof/mutex`);
    expect(focused).toContain('tagfocus=lock=settings');
    expect(focused).not.toMatch(/EventQueue\.flush|UserCache/);
  });

  test('-seconds 2 fetches a delta profile', async () => {
    const { stderr, stdout } = await run(go!, ['tool', 'pprof', '-raw', '-seconds', '2', `${base}/debug/pprof/mutex`], {
      env: { ...process.env, HOME: home, PPROF_TMPDIR: home },
    });
    expect(stderr).toContain('/debug/pprof/mutex?seconds=2');
    expect(stdout).toMatch(/Duration: 2\.\d\d/);
    expect(stdout).toContain('contentions/count delay/nanoseconds');
  });

  test('debug=1 text fetched over HTTP: parsed, symbolized through /debug/pprof/symbol', async () => {
    const out = await pprof('-raw', `${base}/debug/pprof/mutex?debug=1`);
    expect(out).toContain('PeriodType: contentions count');
    expect(out).toMatch(/RWMutex\.unlock/);
  });

  test('-traces reads who holds and waits now (/locks); -top reads the hold profile', async () => {
    // a moment when something is held (the load keeps 24 requests in flight; tracking is on in the demo)
    let traces = '';
    for (let i = 0; i < 50 && !/state:\s+held/.test(traces); i++) traces = await pprof('-traces', `${base}/debug/pprof/locks`);
    expect(traces).toContain('Type: age');
    expect(traces).toMatch(/state:\s+held/);
    expect(traces).toMatch(/lock:\s+(settings|user-cache|event-flush|db-pool)/);
    const hold = await pprof('-top', `${base}/debug/pprof/hold`);
    expect(hold).toContain('Type: hold');
    expect(hold).toMatch(/SettingsStore\.(read|reload)|UserCache\.get|EventQueue\.flush/);
    const counts = await pprof('-top', '-sample_index=acquisitions', `${base}/debug/pprof/hold`);
    expect(counts).toContain('Type: acquisitions');
  });

  test('the demo’s /metrics: prom-client text with the lock metrics of every lock', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const lock of ['settings', 'user-cache', 'event-flush']) {
      expect(text).toMatch(new RegExp(`^mutexprof_lock_wait_seconds_bucket\\{le="\\+Inf",lock="${lock}",kind="\\w+",mode="\\w+"\\} [1-9]`, 'm'));
      expect(text).toMatch(new RegExp(`^mutexprof_lock_contentions_total\\{lock="${lock}",`, 'm'));
    }
    expect(text).toMatch(/^# TYPE mutexprof_lock_hold_seconds histogram$/m);
    expect(text).toMatch(/^mutexprof_lock_hold_seconds_count\{lock="settings",kind="RWMutex",mode="shared"\} [1-9]/m); // tracking is on in the demo
    expect(text).toMatch(/^process_cpu_user_seconds_total /m); // the app's own metrics beside them
  });

  test('errors reach the user through X-Go-Pprof', async () => {
    const r = await run(go!, ['tool', 'pprof', '-raw', `${base}/debug/pprof/nosuch`], { env: { ...process.env, HOME: home } }).catch((e: { stderr: string }) => e);
    expect(r.stderr).toContain('404 Not Found - Unknown profile');
  });
});
