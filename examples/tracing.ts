// The demo's tracing: OpenTelemetry's Node SDK with the http and express instrumentations and mutexprof's
// (mutexprof/opentelemetry: lock waits as spans, profiles labelled trace_endpoint), spans kept in memory and served
// as OTLP JSON. Start it before http and express are loaded: OpenTelemetry's instrumentations patch them then.
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MutexprofInstrumentation } from 'mutexprof/opentelemetry';

const KEEP = 5000;

/** Keeps the last KEEP finished spans. */
class Recent implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans.push(...spans);
    if (this.spans.length > KEEP) this.spans.splice(0, this.spans.length - KEEP);
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Starts tracing; `traces(n)` is the OTLP JSON of the last n traces that waited for a lock. */
export function startTracing(): { traces(n: number): string } {
  const recent = new Recent();
  const provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'mutexprof-demo' }), spanProcessors: [new SimpleSpanProcessor(recent)] });
  provider.register();
  registerInstrumentations({
    instrumentations: [new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url?.startsWith('/debug/') === true }), new ExpressInstrumentation(), new MutexprofInstrumentation()],
  });
  return {
    traces(n: number): string {
      const waited = [...new Set(recent.spans.filter((s) => s.name.startsWith('lock wait')).map((s) => s.spanContext().traceId))].slice(-n);
      const spans = recent.spans.filter((s) => waited.includes(s.spanContext().traceId));
      return new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans));
    },
  };
}
