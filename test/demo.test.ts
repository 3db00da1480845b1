// The newcomer's path: the demo service says clearly when it cannot start, and leaves nothing behind.
import { test, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

test('a taken port: a clear message and a non-zero exit, not "listening"', async () => {
  const taken = http.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const port = (taken.address() as { port: number }).port;
    const demo = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { cwd: root, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(demo, 'exit')) as [number];
    expect(code).toBe(1);
    expect(err).toContain(`mutexprof demo: cannot listen on 127.0.0.1:${port}: the address is in use`);
    expect(out).not.toContain('listening');
  } finally {
    taken.close();
  }
});
