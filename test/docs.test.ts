// Every TypeScript and JavaScript block of README.md and docs/ is a module that type-checks against the built package
// (strict, node16 resolution: what a user's project sees), and the blocks marked `<!-- run -->` (a whole program that
// exits) or `<!-- run: serves -->` (a program that serves /debug/pprof on 127.0.0.1:6060) run: no example drifts from
// the API.
import { describe, test, expect, afterAll } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mutexprof-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Block {
  readonly where: string;
  readonly lang: 'ts' | 'js';
  readonly code: string;
  readonly run: 'exits' | 'serves' | null;
}

function blocksOf(file: string): Block[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: Block[] = [];
  const re = /(?:<!-- run(: serves)? -->\n)?```(ts|typescript|js|javascript)\n([\s\S]*?)```/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const line = text.slice(0, m.index).split('\n').length;
    const run = m[0].startsWith('<!-- run') ? (m[1] ? 'serves' : 'exits') : null;
    out.push({ where: `${file}:${line}`, lang: m[2].startsWith('t') ? 'ts' : 'js', code: m[3], run });
  }
  return out;
}

const files = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = files.flatMap(blocksOf);

/** A project that depends on the built package and on what the examples import (the repository's node_modules). */
function project(): string {
  const modules = join(dir, 'node_modules');
  mkdirSync(modules);
  for (const name of readdirSync(join(root, 'node_modules'))) if (!name.startsWith('.')) symlinkSync(join(root, 'node_modules', name), join(modules, name));
  symlinkSync(root, join(modules, 'mutexprof'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs', private: true, type: 'module' }));
  const compilerOptions = {
    strict: true,
    module: 'node16',
    moduleResolution: 'node16',
    target: 'ES2022',
    lib: ['ES2022', 'ESNext.Disposable'],
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
    allowJs: true,
    checkJs: true,
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts', '*.mjs'] }));
  return dir;
}

const fileOf = (b: Block, i: number): string => `block${i}.${b.lang === 'ts' ? 'ts' : 'mjs'}`;

describe('the examples of README.md and docs/', () => {
  test('there are examples, and some run', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.some((b) => b.run !== null)).toBe(true);
  });

  test('every block type-checks against the built package', async () => {
    const p = project();
    blocks.forEach((b, i) => writeFileSync(join(p, fileOf(b, i)), `// ${b.where}\n${b.code}${b.code.includes('export ') || b.code.includes('import ') ? '' : '\nexport {};\n'}`));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const r = await promisify(execFile)(process.execPath, [tsc, '-p', p], { cwd: p }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    // name each error by the README or docs line it comes from
    const named = r.stdout.replace(/block(\d+)\.(ts|mjs)\((\d+),\d+\)/g, (_m, i: string, _e, line: string) => `${blocks[Number(i)].where} (+${Number(line) - 1})`);
    expect(named).toBe('');
  }, 120_000);

  test.each(blocks.map((b, i) => [b.where, b, i] as const).filter(([, b]) => b.run !== null))(
    '%s runs',
    async (_, b, i) => {
      const file = join(dir, fileOf(b, i));
      const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      try {
        if (b.run === 'exits') {
          expect(await exited, out).toBe(0);
          return;
        }
        for (let t = 0; t < 200 && !out.includes('go tool pprof'); t++) await new Promise((r) => setTimeout(r, 50));
        expect(out).toContain('go tool pprof');
        const res = await fetch('http://127.0.0.1:6060/debug/pprof/mutex');
        const p = Profile.decode(gunzipSync(Buffer.from(await res.arrayBuffer())));
        expect(p.sample.length).toBeGreaterThan(0);
      } finally {
        child.kill();
        await exited;
      }
    },
    60_000,
  );
});
