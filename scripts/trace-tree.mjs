// Prints OTLP JSON traces (the demo's /traces, or a file) as trees: each span's name, start (from the trace's
// first span), duration, and a lock-wait span's attributes.
//   node scripts/trace-tree.mjs [http://127.0.0.1:6060/traces | file.json]
import { readFileSync } from 'node:fs';

const from = process.argv[2] ?? 'http://127.0.0.1:6060/traces';
const json = /^https?:/.test(from) ? await (await fetch(from)).json() : JSON.parse(readFileSync(from, 'utf8'));
const spans = json.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
const value = (v) => v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue;
const us = (ns) => Number(BigInt(ns) / 1000n);

for (const traceId of new Set(spans.map((s) => s.traceId))) {
  const mine = spans.filter((s) => s.traceId === traceId);
  const ids = new Set(mine.map((s) => s.spanId));
  const t0 = Math.min(...mine.map((s) => us(s.startTimeUnixNano)));
  const show = (parent, depth) => {
    const children = mine.filter((s) => (ids.has(s.parentSpanId) ? s.parentSpanId : '') === parent).sort((a, b) => us(a.startTimeUnixNano) - us(b.startTimeUnixNano));
    for (const s of children) {
      const start = ((us(s.startTimeUnixNano) - t0) / 1000).toFixed(1);
      const took = ((us(s.endTimeUnixNano) - us(s.startTimeUnixNano)) / 1000).toFixed(1);
      const attrs = s.name.startsWith('lock wait') ? ' ' + s.attributes.map((a) => `${a.key}=${value(a.value)}`).join(' ') : '';
      console.log(`${'  '.repeat(depth)}${s.name}  [+${start} ms, ${took} ms]${attrs}`);
      show(s.spanId, depth + 1);
    }
  };
  console.log(`trace ${traceId}`);
  show('', 1);
}
