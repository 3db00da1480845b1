// The flame-graph page's script (bundled with d3-flame-graph into dist/ui/flamegraph.js, see tsup.config.ts).
// It asks data.json for the chosen profile, lock, value and window, and draws the tree with d3-flame-graph; the
// choices live in the page's query string, so a view can be linked to, and each choice is a history entry, so
// Back undoes it.
import flamegraph from 'd3-flame-graph';
import { select } from 'd3-selection';
import type { FlameData, TreeNode } from './data.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const profileSel = $<HTMLSelectElement>('profile');
const lockSel = $<HTMLSelectElement>('lock');
const valueSel = $<HTMLSelectElement>('value');
const windowSel = $<HTMLSelectElement>('window');
const ALL = '\u0000all';
/** The windows offered: since the process started, or the delta of the next N seconds. */
const WINDOWS: Array<[string, string]> = [
  ['', 'since the start'],
  ['10', 'the next 10 s'],
  ['60', 'the next 60 s'],
];
/** What a sample type's values are, in words: delay is a time (shown in s, ms, µs), the others are counts. */
const MEANING: Record<string, string> = { nanoseconds: 'time', count: 'count' };

function format(v: number, unit: string): string {
  if (unit === 'nanoseconds') {
    if (v >= 1e9) return `${(v / 1e9).toFixed(2)} s`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(1)} µs`;
    return `${v} ns`;
  }
  return `${v.toLocaleString('en')} ${unit === 'count' ? '' : unit}`.trim();
}

function options(sel: HTMLSelectElement, items: Array<[string, string]>, chosen: string): void {
  sel.replaceChildren(
    ...items.map(([value, text]) => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      o.selected = value === chosen;
      return o;
    }),
  );
}

let chart: ReturnType<typeof flamegraph> | null = null;

async function load(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const q = new URLSearchParams({ profile: params.get('profile') ?? 'mutex' });
  if (params.has('lock')) q.set('lock', params.get('lock')!);
  if (params.has('value')) q.set('value', params.get('value')!);
  if (params.has('seconds')) q.set('seconds', params.get('seconds')!);
  if (params.has('seconds')) $('summary').textContent = `Collecting the next ${params.get('seconds')} s…`;
  const res = await fetch(`data.json?${q}`);
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  const d = (await res.json()) as FlameData;
  const unit = d.sampleTypes.find((t) => t.type === d.value)?.unit ?? '';
  options(
    profileSel,
    d.profiles.map((p) => [p, p]),
    d.profile,
  );
  const lock = params.has('lock') ? params.get('lock')! : ALL;
  const locks: Array<[string, string]> = d.locks.map((l) => [l.name, `${l.name === '' ? '(unnamed)' : l.name} — ${format(l.value, unit)}`]);
  if (lock !== ALL && !d.locks.some((l) => l.name === lock)) locks.push([lock, `${lock} — none`]);
  options(lockSel, [[ALL, 'all locks'], ...locks], lock);
  options(
    valueSel,
    d.sampleTypes.map((t) => [t.type, `${t.type} (${MEANING[t.unit] ?? t.unit})`]),
    d.value,
  );
  const windows =
    d.seconds === null
      ? [['', 'now'] as [string, string]]
      : WINDOWS.some(([v]) => v === String(d.seconds)) || d.seconds === 0
        ? WINDOWS
        : [...WINDOWS, [String(d.seconds), `the next ${d.seconds} s`] as [string, string]];
  options(windowSel, windows, d.seconds === null || d.seconds === 0 ? '' : String(d.seconds));
  windowSel.disabled = d.seconds === null;
  const over = d.seconds === null ? ' now' : d.seconds === 0 ? ' since the process started' : ` over ${d.seconds} s`;
  $('summary').textContent =
    `${d.profile}: ${format(d.total, unit)} ${d.value}${lock === ALL ? '' : ` on ${lock === '' ? 'unnamed locks' : `lock ${lock}`}`}${over}. Click a frame to zoom in, hover for details.`;
  $('comments').replaceChildren(
    ...d.comments.map((c) => {
      const li = document.createElement('li');
      li.textContent = c;
      return li;
    }),
  );
  const width = Math.max(400, $('chart').clientWidth);
  chart?.destroy();
  chart = flamegraph()
    .width(width)
    .cellHeight(18)
    .transitionDuration(0)
    .minFrameSize(1)
    .sort(true)
    .setDetailsElement($('details'))
    .label((n: { data: TreeNode; value: number }) => `${n.data.name}${n.data.file ? ` (${n.data.file})` : ''}: ${format(n.value, unit)}, ${((100 * n.value) / Math.max(1, d.total)).toFixed(1)} %`);
  select('#chart').datum(d.tree).call(chart);
}

function choose(key: string, value: string): void {
  const params = new URLSearchParams(location.search);
  if (value === ALL) params.delete(key);
  else params.set(key, value);
  if (key === 'profile') {
    params.delete('value'); // the sample types differ between profiles
    params.delete('lock');
    params.delete('seconds');
  }
  history.pushState(null, '', `?${params}`); // Back returns to the view before
  void show();
}

async function show(): Promise<void> {
  try {
    await load();
  } catch (e) {
    $('summary').textContent = `Cannot load the profile: ${e instanceof Error ? e.message : String(e)}`;
  }
}

profileSel.addEventListener('change', () => choose('profile', profileSel.value));
lockSel.addEventListener('change', () => choose('lock', lockSel.value));
valueSel.addEventListener('change', () => choose('value', valueSel.value));
windowSel.addEventListener('change', () => choose('seconds', windowSel.value === '' ? ALL : windowSel.value));
addEventListener('popstate', () => void show());
$('refresh').addEventListener('click', () => void show());
void show();
