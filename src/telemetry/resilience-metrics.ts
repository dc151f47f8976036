// The resilience families (endpoint health, retries, failover, panic, circuit breaker, health checks),
// read from the HealthRegistry at scrape time: the request path only bumps plain counters there.
// Registered on TurnoutMetrics' registry by telemetry/index.ts.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { EndpointHealth, HealthRegistry, VariantHealth } from '../upstream/health.js'

type Labels = Record<string, string>

function counter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  values: () => Iterable<[Labels, number]>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset()
      for (const [labels, n] of values()) this.inc(labels, n)
    },
  })
}

function gauge(
  registry: Registry,
  name: string,
  help: string,
  aggregator: 'min' | 'max',
  values: () => Iterable<[Labels, number]>,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['route', 'variant', 'endpoint'],
    registers: [registry],
    aggregator,
    collect() {
      this.reset()
      for (const [labels, n] of values()) this.set(labels, n)
    },
  })
}

export function registerResilienceMetrics(registry: Registry, health: HealthRegistry): void {
  registerEndpointFamilies(registry, health)
  registerVariantFamilies(registry, health)
}

function* endpointSamples(
  health: HealthRegistry,
  checkedOnly: boolean,
  value: (e: EndpointHealth) => number,
): Generator<[Labels, number]> {
  for (const e of health.endpoints.values()) {
    if (checkedOnly && !e.checked) continue
    yield [{ route: e.route, variant: e.variant, endpoint: e.url }, value(e)]
  }
}

function* variantSamples(
  health: HealthRegistry,
  value: (v: VariantHealth) => number,
): Generator<[Labels, number]> {
  for (const v of health.variants.values()) yield [{ route: v.route, variant: v.variant }, value(v)]
}

const EP = ['route', 'variant', 'endpoint']
const RV = ['route', 'variant']

function registerEndpointFamilies(registry: Registry, health: HealthRegistry): void {
  gauge(
    registry,
    'turnout_endpoint_up',
    '1 while active health checks pass (or before the first result), 0 once they mark the endpoint down. Only endpoints with healthCheck.',
    'min',
    () => endpointSamples(health, true, (e) => (e.down ? 0 : 1)),
  )
  gauge(
    registry,
    'turnout_endpoint_ejected',
    '1 while outlier detection keeps the endpoint out of traffic, else 0.',
    'max',
    () => endpointSamples(health, false, (e) => (e.ejectedUntil > Date.now() ? 1 : 0)),
  )
  counter(
    registry,
    'turnout_endpoint_ejections_total',
    'Times outlier detection ejected the endpoint.',
    EP,
    () => endpointSamples(health, false, (e) => e.ejections),
  )
  counter(
    registry,
    'turnout_health_checks_total',
    'Active health checks by result: pass, fail (never counted as live requests).',
    [...EP, 'result'],
    function* () {
      for (const [labels, n] of endpointSamples(health, true, (e) => e.checks.pass))
        yield [{ ...labels, result: 'pass' }, n]
      for (const [labels, n] of endpointSamples(health, true, (e) => e.checks.fail))
        yield [{ ...labels, result: 'fail' }, n]
    },
  )
}

function registerVariantFamilies(registry: Registry, health: HealthRegistry): void {
  counter(
    registry,
    'turnout_upstream_retries_total',
    'Upstream retries by reason: connect-failure, reset, gateway-error, 5xx, a status code, or ejected (a connect failure re-sent because its endpoint was ejected meanwhile).',
    [...RV, 'reason'],
    function* () {
      for (const v of health.variants.values())
        for (const [reason, n] of v.retries) yield [{ route: v.route, variant: v.variant, reason }, n]
    },
  )
  counter(
    registry,
    'turnout_retry_budget_exhausted_total',
    'Retries not made because the retry budget was spent.',
    RV,
    () => variantSamples(health, (v) => v.budgetExhausted),
  )
  counter(
    registry,
    'turnout_failover_total',
    'Canary-bound requests sent to the primary because the canary had no usable endpoint.',
    ['route'],
    function* () {
      for (const v of health.variants.values())
        if (v.variant === 'canary') yield [{ route: v.route }, v.failovers]
    },
  )
  counter(
    registry,
    'turnout_panic_total',
    'Requests sent to a variant whose endpoints were all ejected or down (panic mode: all its endpoints are used).',
    RV,
    () => variantSamples(health, (v) => v.panics),
  )
  counter(
    registry,
    'turnout_overload_rejections_total',
    'Requests answered 503 at once because the variant had maxInFlight requests in flight (circuit breaker).',
    RV,
    () => variantSamples(health, (v) => v.overloads),
  )
}
