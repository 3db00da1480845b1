// pprof-format's encodeAsync() against the chunked encoder, from sources (bench/encode-async.ts, its own process).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./encode-async.ts', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

export function encodeBenchmarks({ quick = false } = {}) {
  return (quick ? [10_000] : [10_000, 100_000]).map((n) => {
    const r = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script, String(n)], { cwd: root, encoding: 'utf8' }));
    return {
      title: `serialize + gzip ${r.samples.toLocaleString('en')} samples: longest event-loop block (ms, median of 5)`,
      baseline: 'chunked',
      unit: 'ms',
      rows: [
        { impl: 'chunked partial profiles (src/pprof/proto.ts)', ns: r.chunked, ratio: 1 },
        { impl: "pprof-format's encodeAsync()", ns: r.encodeAsync, ratio: r.encodeAsync / r.chunked },
      ],
    };
  });
}
