// /debug/pprof/ui/: every profile as an interactive flame graph in the browser, without Go or graphviz.
//
// The page (ui/) and its script and styles (ui/flamegraph.js, ui/flamegraph.css) are files of this package:
// d3-flame-graph and the d3 modules it uses, bundled at build time (tsup.config.ts) — nothing is fetched from a
// CDN, so an air-gapped service shows the same page. d3-flame-graph rather than speedscope: the page needs a
// filter by the `lock` label and a choice of sample type (delay or count), which speedscope's pprof import does
// not offer, and a flame graph is all it needs to draw; the tree it draws is built here (ui/data.json), from the
// same snapshots the profiles are encoded from (merged over the cluster with { cluster: true }).
//
// ui/data.json?profile=mutex&lock=orders&value=delay answers { profile, profiles, sampleTypes, value, locks,
// total, tree, comments }: `tree` is { name, file, value, children } from the root (all samples) to the leaves,
// functions merged by name and file as pprof's default granularity does; `locks` the lock names of the profile
// with their totals, largest first. Building it yields to the event loop every few milliseconds, as every build of
// a profile does (src/profile/slice.ts); the tree has at most one node per distinct (stack prefix), bounded by the
// profile's own bound.

import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { profiles, sourceOf, type ProfileSnapshot } from '../pprof/registry.js';
import { Slicer } from '../profile/slice.js';
import type { FlameData, TreeNode } from './ui/data.js';

/**
 * The flame graph of `s` for sample type `value` (its index), restricted to `lock` if not null. Over every
 * lock, the first level below the root is the lock (`lock orders`, `unnamed locks`): one function released by
 * several locks is drawn once per lock, as the lock filter would show it.
 */
export async function flameData(s: ProfileSnapshot, valueIndex: number, lock: string | null): Promise<Omit<FlameData, 'profiles' | 'sampleTypes' | 'value' | 'seconds'>> {
  const root: TreeNode = { name: 'all', file: '', value: 0, children: [] };
  const index = new Map<TreeNode, Map<string, TreeNode>>();
  const locks = new Map<string, number>();
  const childOf = (node: TreeNode, name: string, file: string): TreeNode => {
    const key = `${name}\0${file}`;
    let children = index.get(node);
    if (children === undefined) index.set(node, (children = new Map()));
    let child = children.get(key);
    if (child === undefined) {
      child = { name, file, value: 0, children: [] };
      children.set(key, child);
      node.children.push(child);
    }
    return child;
  };
  const slice = new Slicer();
  for (const sample of s.samples) {
    const pause = slice.tick();
    if (pause !== null) await pause;
    const v = sample.values[valueIndex] ?? 0;
    const name = sample.labels.find(([k]) => k === 'lock')?.[1] ?? '';
    locks.set(name, (locks.get(name) ?? 0) + v);
    if (lock !== null && name !== lock) continue;
    root.value += v;
    let node = lock !== null ? root : childOf(root, name === '' ? 'unnamed locks' : `lock ${name}`, '');
    if (node !== root) node.value += v;
    for (let i = sample.frames.length - 1; i >= 0; i--) {
      const f = sample.frames[i];
      node = childOf(node, f.name, f.file);
      node.value += v;
    }
  }
  return {
    profile: s.name,
    locks: [...locks].map(([name, value]) => ({ name, value })).sort((a, b) => b.value - a.value),
    total: root.value,
    tree: root,
    comments: s.comments,
  };
}

const PAGE = `<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<title>mutexprof: flame graphs</title>
<link rel=icon href="data:,">
<link rel=stylesheet href=flamegraph.css>
</head>
<body>
<header>
<strong>mutexprof</strong>
<label>Profile <select id=profile></select></label>
<label>Lock <select id=lock><option value="">all locks</option></select></label>
<label>Value <select id=value></select></label>
<label>Over <select id=window></select></label>
<button id=refresh type=button>Refresh</button>
<a href="../">all profiles</a>
</header>
<p id=summary>Loading…</p>
<div id=chart></div>
<p id=details>&nbsp;</p>
<ul id=comments></ul>
<script src=flamegraph.js></script>
</body>
</html>
`;

const ASSETS: Record<string, string> = {
  'flamegraph.js': 'text/javascript; charset=utf-8',
  'flamegraph.css': 'text/css; charset=utf-8',
};

/** Where the built page assets are: beside this bundle (dist/ui/), or, running from sources, in dist/ui/. */
const assetDirs = [new URL('./ui/', import.meta.url), new URL('../../dist/ui/', import.meta.url)].map((u) => fileURLToPath(u));
const assets = new Map<string, Promise<Buffer>>();

function asset(file: string): Promise<Buffer> {
  let a = assets.get(file);
  if (a === undefined) {
    a = (async () => {
      for (const dir of assetDirs) {
        try {
          return await readFile(dir + file);
        } catch {
          /* the next place */
        }
      }
      throw new Error(`mutexprof: the flame-graph page's ${file} is missing (run npm run build)`);
    })();
    a.catch(() => assets.delete(file)); // tried again next time
    assets.set(file, a);
  }
  return a;
}

/** The HTTP side of the page, given how the endpoint sends bodies, errors and snapshots. */
export interface UiServer {
  send(type: string, body: string | Buffer | Buffer[]): Promise<void>;
  error(status: number, message: string): void;
  snapshot(name: string): Promise<ProfileSnapshot | null>;
  /** what happened in the next `seconds`: a delta, as ?seconds=N serves it (null: the client went away) */
  delta(name: string, seconds: number): Promise<ProfileSnapshot | null>;
  /** the largest `seconds` accepted */
  readonly maxSeconds: number;
  /** made once per snapshot and key (concurrent requests of one snapshot share it) */
  derived<T>(s: ProfileSnapshot, key: string, make: () => Promise<T>): Promise<T>;
}

/**
 * Serves `sub`, the path below ui/: '' the page, an asset, or data.json.
 */
export async function serveUi(res: ServerResponse, sub: string, query: URLSearchParams, io: UiServer): Promise<void> {
  // the page's own resources only; d3 sets styles through the CSSOM, which style-src does not restrict
  res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:");
  if (sub === '') return io.send('text/html; charset=utf-8', PAGE);
  const type = ASSETS[sub];
  if (type !== undefined) {
    res.setHeader('Cache-Control', 'no-cache');
    return io.send(type, await asset(sub));
  }
  if (sub !== 'data.json') return io.error(404, 'Not found');
  const name = query.get('profile') ?? 'mutex';
  const source = sourceOf(name);
  if (source === undefined) return io.error(404, 'Unknown profile');
  const want = query.get('value');
  const valueIndex = want === null || want === '' ? source.sampleTypes.length - 1 : source.sampleTypes.findIndex((t) => t.type === want);
  if (valueIndex < 0) return io.error(400, `unknown value ${JSON.stringify(want)}: one of ${source.sampleTypes.map((t) => t.type).join(', ')}`);
  const lock = query.get('lock'); // absent: every lock; '' the unnamed ones
  // seconds=N: only what happens in the next N seconds (a delta), for the profiles that count since the start
  const secondsArg = query.get('seconds');
  let seconds = 0;
  if (secondsArg !== null && secondsArg !== '') {
    seconds = /^\d{1,9}$/.test(secondsArg) ? Number(secondsArg) : -1;
    if (seconds < 1 || seconds > io.maxSeconds) return io.error(400, `invalid value for "seconds" - must be a positive integer no larger than ${io.maxSeconds}`);
    if (source.window === undefined) return io.error(400, `${name} is not a cumulative profile: seconds is not supported`);
  }
  const snapshot = seconds === 0 ? await io.snapshot(name) : await io.delta(name, seconds);
  if (snapshot === null) return;
  const body = await io.derived(snapshot, `flame\0${valueIndex}\0${lock ?? '\0all'}`, async () =>
    jsonChunks({
      ...(await flameData(snapshot, valueIndex, lock)),
      profiles: profiles().map((p) => p.name),
      sampleTypes: source.sampleTypes,
      value: source.sampleTypes[valueIndex].type,
      seconds: source.window === undefined ? null : seconds,
    }),
  );
  return io.send('application/json; charset=utf-8', body);
}

/** `data` as JSON in chunks of about 64 KiB, the tree written node by node, yielding every few milliseconds. */
export async function jsonChunks(data: FlameData): Promise<Buffer[]> {
  const { tree, ...rest } = data;
  const chunks: Buffer[] = [];
  let out = JSON.stringify(rest).slice(0, -1) + ',"tree":';
  // depth first, iteratively: a node's opening, then its children separated by commas, then its closing
  const todo: Array<TreeNode | string> = [tree];
  const slice = new Slicer();
  while (todo.length > 0) {
    const pause = slice.tick();
    if (pause !== null) await pause;
    const x = todo.pop()!;
    if (typeof x === 'string') out += x;
    else {
      out += `{"name":${JSON.stringify(x.name)},"file":${JSON.stringify(x.file)},"value":${x.value},"children":[`;
      todo.push(']}');
      for (let i = x.children.length - 1; i >= 0; i--) {
        todo.push(x.children[i]);
        if (i > 0) todo.push(',');
      }
    }
    if (out.length >= 65_536) {
      chunks.push(Buffer.from(out));
      out = '';
    }
  }
  chunks.push(Buffer.from(out + '}'));
  return chunks;
}
