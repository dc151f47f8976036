// Prometheus metrics: Turnout's own registry (never prom-client's global one), served at GET /metrics.
//
// Hot path: prom-client's label children still build a label object and a hash string on every
// inc()/observe() (about 1 µs per request for the four live families). So the live-traffic and
// mirror families are plain numbers in per-(route, variant) accumulators that the observer bumps
// (no allocation, no string work per request), and prom-client reads them only when /metrics is
// scraped (each family's `collect()`, or AccumulatedHistogram.get()). Rare events (config reloads,
// dropped spans, rollout state) use prom-client's metrics directly.
//
// Requests that match no route (Turnout's local 404) never reach the observer and are not counted:
// there is no route or variant to label them with, and the path must never become a label.
import {
  type Aggregator,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type LabelValues,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
  Registry,
} from 'prom-client'
import type { Variant } from '../config/schema.js'
import type {
  CompiledRoute,
  FaultKind,
  Observer,
  RequestContext,
  UpstreamErrorKind,
} from '../core/pipeline.js'
import { ROLLOUT_PHASES, type RolloutMetrics, type RolloutPhase } from '../rollout/phases.js'
import type { CheckResult } from '../rollout/stats.js'
import type { Reason } from '../routing/decide.js'

/** Request duration buckets (seconds): 1 ms to 30 s, roughly 1-2.5-5 per decade. */
export const DURATION_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]

export const UPSTREAM_ERROR_KINDS: readonly UpstreamErrorKind[] = [
  'connect',
  'timeout',
  'reset',
  'protocol',
  'dns',
]
export const REASONS: readonly Reason[] = ['weight', 'sticky', 'override']
export const FAULT_KINDS: readonly FaultKind[] = ['delay', 'abort']
export const MIRROR_DROP_REASONS = ['in_flight_limit', 'body_too_large', 'timeout', 'upstream_error'] as const
export const COMPARISON_RESULTS = ['match', 'mismatch', 'noise'] as const
export const MISMATCH_FIELDS = ['status', 'header', 'body'] as const

export type MirrorDropReason = (typeof MIRROR_DROP_REASONS)[number]
export type ComparisonResult = (typeof COMPARISON_RESULTS)[number]
export type MismatchField = (typeof MISMATCH_FIELDS)[number]
export type ReloadResult = 'success' | 'error'
/** Also counted by the cluster primary (a reload it rejects never reaches the workers). */
export const CONFIG_RELOADS = {
  name: 'turnout_config_reloads_total',
  help: 'Config reload attempts by result: success, error.',
} as const
export const CLIENT_ERROR_KINDS = [
  'bad_request',
  'headers_too_large',
  'request_timeout',
  'not_implemented',
  'method_not_allowed',
  'http_version_not_supported',
] as const
export type ClientErrorKind = (typeof CLIENT_ERROR_KINDS)[number]
export const SUPPRESSED_LOG_KINDS = ['upstream_error', 'client_error'] as const
export type SuppressedLogKind = (typeof SUPPRESSED_LOG_KINDS)[number]

/**
 * The recording handle other parts of Turnout use (mirror, config reload, tracing, rollout). Every
 * method is cheap and never throws; with `metrics.enabled: false` it is `noopMetrics`.
 * Live requests are recorded by `Metrics.observer`, not through these methods.
 */
export interface Metrics extends RolloutMetrics {
  readonly enabled: boolean
  /** A mirrored (shadow) request got an answer: its status and duration (seconds). */
  mirrorRequest(route: string, variant: Variant, code: number, seconds: number): void
  /** A mirror that yielded no usable answer (never sent, or sent and lost). */
  mirrorDropped(route: string, reason: MirrorDropReason): void
  /** One mirror comparison finished. */
  mirrorComparison(route: string, result: ComparisonResult): void
  /** A field that differed in a comparison classified as a mismatch (once per field kind). */
  mirrorMismatch(route: string, field: MismatchField): void
  /** A config reload attempt (file watch, SIGHUP, API): `success`, or `error` when rejected. */
  configReload(result: ReloadResult): void
  /** A client request refused before routing (malformed or smuggling-shaped, header block too large, too slow). */
  clientError(kind: ClientErrorKind): void
  /** A new client connection answered 503 and closed because limits.maxConnections were open. */
  connectionRejected(): void
  /** Spans the tracer could not deliver (export failed, or the export queue was full). */
  droppedSpans(count: number): void
  /** Log lines left out by a rate limit (an upstream failure storm), by the kind of line. */
  logSuppressed(kind: SuppressedLogKind, count: number): void
  // rolloutPhase, rolloutStep, analysisCheck: see RolloutMetrics (rollout/phases.ts).
  /** A request observer (metrics, tracing, access_log, rollout) threw; the request carried on. */
  observerError(observer: string): void
}

export const noopMetrics: Metrics = {
  enabled: false,
  mirrorRequest() {},
  mirrorDropped() {},
  mirrorComparison() {},
  mirrorMismatch() {},
  configReload() {},
  clientError() {},
  connectionRejected() {},
  droppedSpans() {},
  logSuppressed() {},
  rolloutPhase() {},
  rolloutStep() {},
  analysisCheck() {},
  observerError() {},
}

/** Bucket counts (not cumulative; the last slot is +Inf), sum and count of one histogram series. */
export class HistogramAcc {
  readonly counts = new Float64Array(DURATION_BUCKETS.length + 1)
  sum = 0
  count = 0

  observe(seconds: number): void {
    const bounds = DURATION_BUCKETS
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    this.counts[i]!++
    this.sum += seconds
    this.count++
  }
}

/** Increments `map[key]`, adding the key at 0 first. */
function bump(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

/** Live traffic of one (route, variant). */
export class VariantStats {
  inFlight = 0
  /** status → requests */
  readonly codes = new Map<number, number>()
  readonly duration = new HistogramAcc()
  /** Indexed like UPSTREAM_ERROR_KINDS / REASONS / FAULT_KINDS. */
  readonly upstreamErrors = [0, 0, 0, 0, 0]
  readonly decisions = [0, 0, 0]
  readonly faults = [0, 0]
}

export class RouteStats {
  readonly primary = new VariantStats()
  readonly canary = new VariantStats()
  canarySeen = false

  variant(v: Variant): VariantStats {
    if (v === 'canary') {
      this.canarySeen = true
      return this.canary
    }
    return this.primary
  }
}

/** Shadow traffic of one route. */
export class MirrorStats {
  readonly codes: Record<Variant, Map<number, number>> = { primary: new Map(), canary: new Map() }
  readonly duration: Record<Variant, HistogramAcc | null> = { primary: null, canary: null }
  readonly dropped = [0, 0, 0, 0]
  readonly comparisons = [0, 0, 0]
  readonly mismatches = [0, 0, 0]
}

const KIND_INDEX: Record<UpstreamErrorKind, number> = {
  connect: 0,
  timeout: 1,
  reset: 2,
  protocol: 3,
  dns: 4,
}
const REASON_INDEX: Record<Reason, number> = { weight: 0, sticky: 1, override: 2 }
const FAULT_INDEX: Record<FaultKind, number> = { delay: 0, abort: 1 }

type RV = 'route' | 'variant'

/** One histogram series as the accumulators hold it. */
interface HistogramSeries {
  labels: LabelValues<RV>
  acc: HistogramAcc
}

/**
 * A prom-client Histogram whose series come from accumulators at scrape time instead of observe().
 * Registered like any metric, so the text format and `getMetricsAsJSON()` (cluster aggregation)
 * both work.
 */
class AccumulatedHistogram extends Histogram<RV> {
  // Set by prom-client's Metric constructor; its typings leave them out.
  declare readonly name: string
  declare readonly help: string
  declare readonly type: MetricType
  declare readonly aggregator: Aggregator

  constructor(
    registry: Registry,
    name: string,
    help: string,
    readonly series: () => Iterable<HistogramSeries>,
  ) {
    super({
      name,
      help,
      labelNames: ['route', 'variant'],
      buckets: [...DURATION_BUCKETS],
      registers: [registry],
    })
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<RV>>> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      collect: () => {},
      values: this.values(),
    }
  }

  /** The registry prefers this to get() for the text format. */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<RV>>> {
    return this.get()
  }

  values(): MetricValueWithName<RV>[] {
    const out: MetricValueWithName<RV>[] = []
    const bucketName = `${this.name}_bucket`
    for (const { labels, acc } of this.series()) {
      let cumulative = 0
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        cumulative += acc.counts[i]!
        out.push({
          metricName: bucketName,
          labels: { ...labels, le: DURATION_BUCKETS[i] } as LabelValues<RV>,
          value: cumulative,
        })
      }
      out.push({
        metricName: bucketName,
        labels: { ...labels, le: '+Inf' } as LabelValues<RV>,
        value: acc.count,
      })
      out.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: acc.sum })
      out.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: acc.count })
    }
    return out
  }
}

export interface MetricsRegistryOptions {
  /** The live route table (the weight gauge reads each route's WeightCell at scrape time). */
  table: () => { readonly routes: readonly CompiledRoute[] }
  /** Default Node process metrics under `turnout_` (default true). */
  processMetrics?: boolean
}

type Family<L extends string> = { name: string; help: string; labelNames: readonly L[] }
type Add<L extends string> = (labels: LabelValues<L>, n: number) => void
type VariantRows = () => Iterable<[string, Variant, VariantStats]>
type MirrorRows = ReadonlyMap<string, MirrorStats>

/** A counter whose values are copied from accumulators at scrape time. */
function collectedCounter<L extends string>(registry: Registry, f: Family<L>, fill: (add: Add<L>) => void) {
  new Counter<L>({
    ...f,
    labelNames: [...f.labelNames],
    registers: [registry],
    collect() {
      this.reset()
      fill((labels, n) => this.inc(labels, n))
    },
  })
}

/** A gauge whose values are read at scrape time. */
function collectedGauge<L extends string>(
  registry: Registry,
  f: Family<L> & { aggregator?: Aggregator },
  fill: (set: Add<L>) => void,
) {
  new Gauge<L>({
    ...f,
    labelNames: [...f.labelNames],
    registers: [registry],
    collect() {
      this.reset()
      fill((labels, n) => this.set(labels, n))
    },
  })
}

/** One counter family per (route, variant) and one label indexed like `values` (error kinds…). */
function indexedVariantCounter<K extends string>(
  registry: Registry,
  f: Family<'route' | 'variant' | K> & { key: K; values: readonly string[] },
  rows: VariantRows,
  pick: (s: VariantStats) => readonly number[],
) {
  collectedCounter(registry, f, (add) => {
    for (const [route, variant, s] of rows()) {
      const counts = pick(s)
      for (let i = 0; i < f.values.length; i++) {
        add({ route, variant, [f.key]: f.values[i] } as LabelValues<'route' | 'variant' | K>, counts[i]!)
      }
    }
  })
}

/** One counter family per mirrored route and one label indexed like `values`. */
function indexedMirrorCounter<K extends string>(
  registry: Registry,
  f: Family<'route' | K> & { key: K; values: readonly string[] },
  mirror: MirrorRows,
  pick: (m: MirrorStats) => readonly number[],
) {
  collectedCounter(registry, f, (add) => {
    for (const [route, m] of mirror) {
      const counts = pick(m)
      for (let i = 0; i < f.values.length; i++) {
        add({ route, [f.key]: f.values[i] } as LabelValues<'route' | K>, counts[i]!)
      }
    }
  })
}

function requestsFamilies(registry: Registry, rows: VariantRows): void {
  collectedCounter(
    registry,
    {
      name: 'turnout_requests_total',
      help: 'Live requests by route, variant and the status sent to the client (0: the client left before any status).',
      labelNames: ['route', 'variant', 'code'],
    },
    (add) => {
      for (const [route, variant, s] of rows())
        for (const [code, n] of s.codes) add({ route, variant, code }, n)
    },
  )
  new AccumulatedHistogram(
    registry,
    'turnout_request_duration_seconds',
    'Live request duration from the first byte in to the last byte out (WebSocket tunnels excluded).',
    function* () {
      for (const [route, variant, s] of rows()) yield { labels: { route, variant }, acc: s.duration }
    },
  )
  indexedVariantCounter(
    registry,
    {
      name: 'turnout_upstream_errors_total',
      help: 'Upstream failures by kind: connect, timeout, reset, protocol, dns (the host name did not resolve).',
      labelNames: ['route', 'variant', 'kind'],
      key: 'kind',
      values: UPSTREAM_ERROR_KINDS,
    },
    rows,
    (s) => s.upstreamErrors,
  )
  collectedGauge(
    registry,
    {
      name: 'turnout_requests_in_flight',
      help: 'Live requests currently being handled.',
      labelNames: ['route', 'variant'],
    },
    (set) => {
      for (const [route, variant, s] of rows()) set({ route, variant }, s.inFlight)
    },
  )
}

function routingFamilies(
  registry: Registry,
  rows: VariantRows,
  table: MetricsRegistryOptions['table'],
): void {
  collectedGauge(
    registry,
    {
      name: 'turnout_canary_weight',
      help: "The route's current canary share, in percent (0 to 100).",
      labelNames: ['route'],
      // Every cluster worker holds the same weight: aggregated /metrics shows it once, not summed.
      aggregator: 'first',
    },
    (set) => {
      for (const r of table().routes) set({ route: r.name }, r.weight.canary)
    },
  )
  indexedVariantCounter(
    registry,
    {
      name: 'turnout_split_decisions_total',
      help: 'Split decisions by variant and reason: weight, sticky, override.',
      labelNames: ['route', 'variant', 'reason'],
      key: 'reason',
      values: REASONS,
    },
    rows,
    (s) => s.decisions,
  )
  indexedVariantCounter(
    registry,
    {
      name: 'turnout_faults_injected_total',
      help: 'Injected faults by kind: delay, abort.',
      labelNames: ['route', 'variant', 'kind'],
      key: 'kind',
      values: FAULT_KINDS,
    },
    rows,
    (s) => s.faults,
  )
}

/** Mirror (shadow) traffic. */
function mirrorFamilies(registry: Registry, mirror: MirrorRows): void {
  const VARIANTS = ['primary', 'canary'] as const
  collectedCounter(
    registry,
    {
      name: 'turnout_mirror_requests_total',
      help: 'Mirrored requests by route, variant and the status the mirror target answered.',
      labelNames: ['route', 'variant', 'code'],
    },
    (add) => {
      for (const [route, m] of mirror)
        for (const variant of VARIANTS)
          for (const [code, n] of m.codes[variant]) add({ route, variant, code }, n)
    },
  )
  new AccumulatedHistogram(
    registry,
    'turnout_mirror_request_duration_seconds',
    'Mirrored request duration, from sending the copy to the end of its answer.',
    function* () {
      for (const [route, m] of mirror) {
        for (const variant of VARIANTS) {
          const acc = m.duration[variant]
          if (acc !== null) yield { labels: { route, variant }, acc }
        }
      }
    },
  )
  indexedMirrorCounter(
    registry,
    {
      name: 'turnout_mirror_dropped_total',
      help: 'Mirrors with no usable answer: in_flight_limit, body_too_large (never sent), timeout, upstream_error.',
      labelNames: ['route', 'reason'],
      key: 'reason',
      values: MIRROR_DROP_REASONS,
    },
    mirror,
    (m) => m.dropped,
  )
  indexedMirrorCounter(
    registry,
    {
      name: 'turnout_mirror_comparisons_total',
      help: 'Mirror comparisons by result: match, mismatch, noise.',
      labelNames: ['route', 'result'],
      key: 'result',
      values: COMPARISON_RESULTS,
    },
    mirror,
    (m) => m.comparisons,
  )
  indexedMirrorCounter(
    registry,
    {
      name: 'turnout_mirror_mismatches_total',
      help: 'Fields that differed in mismatched comparisons: status, header, body.',
      labelNames: ['route', 'field'],
      key: 'field',
      values: MISMATCH_FIELDS,
    },
    mirror,
    (m) => m.mismatches,
  )
}

/** A counter for rare events, incremented directly; `zero` lists label sets exported at 0 from the start. */
function eventCounter<L extends string>(
  registry: Registry,
  f: Family<L>,
  zero: ReadonlyArray<LabelValues<L>> = [],
): Counter<L> {
  const c = new Counter<L>({ ...f, labelNames: [...f.labelNames], registers: [registry] })
  for (const labels of zero) c.inc(labels, 0)
  return c
}

function eventGauge<L extends string>(registry: Registry, f: Family<L>): Gauge<L> {
  return new Gauge<L>({ ...f, labelNames: [...f.labelNames], registers: [registry] })
}

/** Default Node process metrics under `turnout_`. */
function processFamilies(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'turnout_' })
  // Gauges named *_total fail `promtool check metrics`; their per-type twins (same names without
  // _total, labelled by type) carry the same information.
  for (const name of ['active_handles', 'active_requests', 'active_resources']) {
    registry.removeSingleMetric(`turnout_nodejs_${name}_total`)
  }
}

/** The live-traffic observer: bumps the accumulators, nothing else (no allocation per request). */
function statsObserver(stats: (route: string) => RouteStats): Observer {
  return {
    name: 'metrics',
    requestStart(ctx: RequestContext) {
      const s = stats(ctx.route!.name).variant(ctx.variant)
      s.inFlight++
      s.decisions[REASON_INDEX[ctx.reason]]!++
    },
    upstreamAttempt() {},
    upstreamError(ctx: RequestContext, kind: UpstreamErrorKind) {
      stats(ctx.route!.name).variant(ctx.variant).upstreamErrors[KIND_INDEX[kind]]!++
    },
    requestEnd(ctx: RequestContext) {
      const s = stats(ctx.route!.name).variant(ctx.variant)
      if (ctx.switchedFrom === null) s.inFlight--
      else stats(ctx.route!.name).variant(ctx.switchedFrom).inFlight-- // failed over midway
      // Refused because of the client: counted in turnout_client_errors_total, not as the variant's.
      if (ctx.refused !== null) return
      bump(s.codes, ctx.status)
      // A WebSocket tunnel's lifetime is not a request latency.
      if (ctx.status !== 101) s.duration.observe((performance.now() - ctx.start) / 1000)
      if (ctx.fault !== null) s.faults[FAULT_INDEX[ctx.fault]]!++
    },
  }
}

/** Rare events (reloads, client errors, dropped spans, rollouts, observer errors): prom-client directly. */
function eventFamilies(registry: Registry) {
  return {
    reloads: eventCounter(registry, { ...CONFIG_RELOADS, labelNames: ['result'] }, [
      { result: 'success' },
      { result: 'error' },
    ]),
    clientErrors: eventCounter(
      registry,
      {
        name: 'turnout_client_errors_total',
        help: "Client requests refused because of the client, never counted as a variant's: bad_request (400), headers_too_large (431), request_timeout (408), not_implemented (501), method_not_allowed (405, CONNECT), http_version_not_supported (505).",
        labelNames: ['kind'],
      },
      CLIENT_ERROR_KINDS.map((kind) => ({ kind })),
    ),
    connectionsRejected: eventCounter(registry, {
      name: 'turnout_connections_rejected_total',
      help: 'Client connections answered 503 and closed because limits.maxConnections connections were open.',
      labelNames: [],
    }),
    logSuppressed: eventCounter(
      registry,
      {
        name: 'turnout_log_lines_suppressed_total',
        help: 'Log lines left out by the rate limit on failure lines (at most 20 a second per kind), by kind.',
        labelNames: ['kind'],
      },
      SUPPRESSED_LOG_KINDS.map((kind) => ({ kind })),
    ),
    droppedSpans: eventCounter(registry, {
      name: 'turnout_telemetry_dropped_spans_total',
      help: 'Trace spans dropped: the export failed (endpoint down or refusing) or the export queue was full.',
      labelNames: [],
    }),
    rolloutPhase: eventGauge(registry, {
      name: 'turnout_rollout_phase',
      help: "1 for the rollout's current phase, 0 for the others.",
      labelNames: ['route', 'phase'],
    }),
    rolloutStep: eventGauge(registry, {
      name: 'turnout_rollout_step',
      help: "The rollout's current step (0-based).",
      labelNames: ['route'],
    }),
    checks: eventCounter(registry, {
      name: 'turnout_analysis_checks_total',
      help: 'Rollout analysis check results by check: pass, fail, inconclusive.',
      labelNames: ['route', 'check', 'result'],
    }),
    observerErrors: eventCounter(registry, {
      name: 'turnout_observer_errors_total',
      help: 'Exceptions thrown by a request observer (metrics, tracing, access_log, rollout); the request and the other observers carried on.',
      labelNames: ['observer'],
    }),
  }
}
type EventFamilies = ReturnType<typeof eventFamilies>

/** The metric registry with every Turnout family, its request Observer and its recording handle. */
export class TurnoutMetrics implements Metrics {
  readonly enabled = true
  readonly registry = new Registry()
  readonly routes = new Map<string, RouteStats>()
  readonly mirror = new Map<string, MirrorStats>()
  readonly observer: Observer = statsObserver((route) => this.stats(route))
  readonly #events: EventFamilies

  constructor(readonly opts: MetricsRegistryOptions) {
    const rows: VariantRows = () => this.#variants()
    requestsFamilies(this.registry, rows)
    routingFamilies(this.registry, rows, opts.table)
    mirrorFamilies(this.registry, this.mirror)
    this.#events = eventFamilies(this.registry)
    if (opts.processMetrics !== false) processFamilies(this.registry)
  }

  /** The accumulators of a route (created on first use; kept across reloads so counters stay monotonic). */
  stats(route: string): RouteStats {
    let s = this.routes.get(route)
    if (s === undefined) {
      s = new RouteStats()
      this.routes.set(route, s)
    }
    return s
  }

  #mirrorStats(route: string): MirrorStats {
    let m = this.mirror.get(route)
    if (m === undefined) {
      m = new MirrorStats()
      this.mirror.set(route, m)
    }
    return m
  }

  /**
   * Every (route, variant) to export: the current table's routes (primary, and canary when the route
   * has one) so a dashboard shows 0 rather than no data, plus any route seen since start.
   */
  *#variants(): Generator<[string, Variant, VariantStats]> {
    for (const r of this.opts.table().routes) {
      const s = this.stats(r.name)
      if (r.canary !== null) s.canarySeen = true
    }
    for (const [route, s] of this.routes) {
      yield [route, 'primary', s.primary]
      if (s.canarySeen) yield [route, 'canary', s.canary]
    }
  }

  /** Prometheus text format of every family. */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }

  mirrorRequest(route: string, variant: Variant, code: number, seconds: number): void {
    const m = this.#mirrorStats(route)
    bump(m.codes[variant], code)
    m.duration[variant] ??= new HistogramAcc()
    m.duration[variant].observe(seconds)
  }

  mirrorDropped(route: string, reason: MirrorDropReason): void {
    const i = MIRROR_DROP_REASONS.indexOf(reason)
    if (i >= 0) this.#mirrorStats(route).dropped[i]!++
  }

  mirrorComparison(route: string, result: ComparisonResult): void {
    const i = COMPARISON_RESULTS.indexOf(result)
    if (i >= 0) this.#mirrorStats(route).comparisons[i]!++
  }

  mirrorMismatch(route: string, field: MismatchField): void {
    const i = MISMATCH_FIELDS.indexOf(field)
    if (i >= 0) this.#mirrorStats(route).mismatches[i]!++
  }

  configReload(result: ReloadResult): void {
    this.#events.reloads.inc({ result })
  }

  clientError(kind: ClientErrorKind): void {
    this.#events.clientErrors.inc({ kind })
  }

  droppedSpans(count: number): void {
    if (count > 0) this.#events.droppedSpans.inc(count)
  }

  connectionRejected(): void {
    this.#events.connectionsRejected.inc()
  }

  logSuppressed(kind: SuppressedLogKind, count: number): void {
    if (count > 0) this.#events.logSuppressed.inc({ kind }, count)
  }

  rolloutPhase(route: string, phase: RolloutPhase): void {
    for (const p of ROLLOUT_PHASES) this.#events.rolloutPhase.set({ route, phase: p }, p === phase ? 1 : 0)
  }

  rolloutStep(route: string, step: number): void {
    this.#events.rolloutStep.set({ route }, step)
  }

  analysisCheck(route: string, check: string, result: CheckResult): void {
    this.#events.checks.inc({ route, check, result })
  }

  observerError(observer: string): void {
    this.#events.observerErrors.inc({ observer })
  }
}
