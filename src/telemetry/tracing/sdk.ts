// The OpenTelemetry SDK as Turnout uses it, loaded only when tracing is on (observer.ts is imported
// dynamically by telemetry/index.ts): a TracerProvider with the configured sampler, a bounded
// BatchSpanProcessor and an OTLP/HTTP exporter (protobuf or JSON).
//
// Built on the SDK's lower layers (@opentelemetry/sdk-trace, the OTLP exporters), not NodeSDK, so
// nothing else is instrumented and nothing global is registered (no global tracer provider, context
// manager or propagator: Turnout creates its spans itself). Export is never on the request path: a
// collector that is down or slow only fills the bounded queue; spans that cannot be delivered
// (failed export batches, queue overflow) are counted through `onDropped`.
import { readFileSync } from 'node:fs'
import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Meter,
  type MeterProvider,
  type MetricOptions,
  type Tracer,
} from '@opentelemetry/api'
import { type ExportResult, ExportResultCode } from '@opentelemetry/core'
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'
import { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import type { SamplerName, TracingSettings } from './settings.js'

export function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio)
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

/** Counts the spans of every export batch that did not succeed. */
export class CountingExporter implements SpanExporter {
  constructor(
    readonly inner: SpanExporter,
    readonly onDropped: (count: number) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.onDropped(spans.length)
      done(result)
    })
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown()
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve()
  }
}

// The BatchSpanProcessor reports its queue overflow only through its self-observability counter
// (otel.sdk.processor.span.processed with error.type=queue_full); this meter provider listens to
// exactly that and hands everything else to a no-op meter.
const PROCESSED = 'otel.sdk.processor.span.processed'

class QueueFullMeter implements Meter {
  readonly #noop = createNoopMeter()
  constructor(readonly onDropped: (count: number) => void) {}

  createCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): Counter<A> {
    if (name !== PROCESSED) return this.#noop.createCounter<A>(name, options)
    const onDropped = this.onDropped
    return {
      add(value: number, attributes?: A) {
        if (attributes?.[ATTR_ERROR_TYPE] === 'queue_full') onDropped(value)
      },
    }
  }
  createGauge: Meter['createGauge'] = (n, o) => this.#noop.createGauge(n, o)
  createHistogram: Meter['createHistogram'] = (n, o) => this.#noop.createHistogram(n, o)
  createUpDownCounter: Meter['createUpDownCounter'] = (n, o) => this.#noop.createUpDownCounter(n, o)
  createObservableGauge: Meter['createObservableGauge'] = (n, o) => this.#noop.createObservableGauge(n, o)
  createObservableCounter: Meter['createObservableCounter'] = (n, o) =>
    this.#noop.createObservableCounter(n, o)
  createObservableUpDownCounter: Meter['createObservableUpDownCounter'] = (n, o) =>
    this.#noop.createObservableUpDownCounter(n, o)
  addBatchObservableCallback: Meter['addBatchObservableCallback'] = (c, o) =>
    this.#noop.addBatchObservableCallback(c, o)
  removeBatchObservableCallback: Meter['removeBatchObservableCallback'] = (c, o) =>
    this.#noop.removeBatchObservableCallback(c, o)
}

function queueFullMeterProvider(onDropped: (count: number) => void): MeterProvider {
  const meter = new QueueFullMeter(onDropped)
  return { getMeter: () => meter }
}

export function turnoutVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export interface TracerSetup {
  tracer: Tracer
  provider: TracerProvider
}

/**
 * The provider for the settings. The exporter gets url, headers and timeout from the settings (read
 * from Turnout's injected env); the OTLP TLS variables (OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE,
 * _CLIENT_KEY, _CLIENT_CERTIFICATE) and _COMPRESSION are left to the exporter, which reads them
 * from the process environment.
 */
export function createTracerSetup(
  settings: TracingSettings,
  onDropped: (count: number) => void,
): TracerSetup {
  const exporterConfig = {
    url: settings.url,
    headers: settings.headers,
    timeoutMillis: settings.timeoutMillis,
  }
  const exporter = new CountingExporter(
    settings.protocol === 'http/json'
      ? new OTLPJsonTraceExporter(exporterConfig)
      : new OTLPProtoTraceExporter(exporterConfig),
    onDropped,
  )
  const processor = new BatchSpanProcessor({
    exporter,
    ...settings.batch,
    selfObsMeterProvider: queueFullMeterProvider(onDropped),
  })
  const version = turnoutVersion()
  const provider = new TracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...settings.resourceAttributes,
        [ATTR_SERVICE_NAME]: settings.serviceName,
        [ATTR_SERVICE_VERSION]: settings.resourceAttributes[ATTR_SERVICE_VERSION] ?? version,
      }),
    ),
    sampler: createSampler(settings.sampler, settings.ratio),
    spanProcessors: [processor],
  })
  return { tracer: provider.getTracer('turnout', version), provider }
}
