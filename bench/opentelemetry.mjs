// What mutexprof/opentelemetry adds to a contended wait, beside tracing alone, in one process: 16 requests, each a
// span of OpenTelemetry's Node SDK (spans batched, then dropped, as an exporter that ships them elsewhere would),
// hand a Mutex to one another; every hand-off is one contended wait. Rows: the integration off (tracing alone), on at
// minWaitMs 5 (recommended) and 0, and off again (the A/A row: the noise of a ratio in this run). Two scenarios: the
// requests' traces are sampled (recording spans: every wait is followed), or not (head sampling dropped them: the
// waits are asked about and not followed). The service benchmark (`--settings` with the tracing rows) and
// bench/attribution.mjs say what this comes to in a service.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { compare } from './harness.mjs';

const require = createRequire(import.meta.url);

export async function opentelemetryBenchmarks({ quick, dist }) {
  const api = require('@opentelemetry/api');
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
  const { AlwaysOffSampler, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const dropped = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropped)] });
  provider.register();
  const unsampled = new NodeTracerProvider({ sampler: new AlwaysOffSampler() });
  const { Mutex } = await import(pathToFileURL(`${dist}/index.js`).href);
  const { MutexprofInstrumentation } = await import(pathToFileURL(`${dist}/opentelemetry.js`).href);
  const at5 = new MutexprofInstrumentation({ enabled: false, minWaitMs: 5 });
  const at0 = new MutexprofInstrumentation({ enabled: false, minWaitMs: 0 });
  const use = (i) => {
    at5.disable();
    at0.disable();
    i?.enable();
  };
  const handOff = (tracer, i) => async (n) => {
    use(i);
    const mu = new Mutex({ name: 'bench' });
    let left = n;
    const request = () =>
      tracer.startActiveSpan('request', async (span) => {
        while (left-- > 0) await mu.withLock(async () => {});
        span.end();
      });
    await Promise.all(Array.from({ length: 16 }, request));
    use(null);
  };
  const rows = (tracer) => ({
    'tracing alone': handOff(tracer, null),
    'tracing + mutexprof/opentelemetry, minWaitMs 5 (recommended)': handOff(tracer, at5),
    'tracing + mutexprof/opentelemetry, minWaitMs 0': handOff(tracer, at0),
    'tracing alone (A/A)': handOff(tracer, null),
  });
  const opt = { ops: quick ? 50_000 : 200_000, rounds: quick ? 5 : 15 };
  try {
    return [
      await compare('a contended wait, 16 traced requests (ns per wait)', rows(provider.getTracer('bench')), opt),
      await compare('a contended wait, 16 requests whose traces are not sampled (ns per wait)', rows(unsampled.getTracer('bench')), opt),
    ];
  } finally {
    use(null);
    await provider.shutdown();
    api.trace.disable();
    api.context.disable();
    api.propagation.disable();
  }
}
