// Endpoint health that outlives route tables: ejection (outlier.ts), active-check status and
// requests in flight, per (route, variant, endpoint URL), plus per-variant counters (retry budget,
// circuit breaker, panics). A reload or a weight change compiles a new table whose endpoints get
// the same state objects back from the registry, the way they get the same pools back from Pools.
import type { OutlierConfig, Variant } from '../config/schema.js'
import { isEjected, type OutlierState, recordFailure, recordSuccess } from './outlier.js'

export class EndpointHealth implements OutlierState {
  /** Requests currently outstanding on this endpoint (least-request balancing reads it). */
  inFlight = 0
  consecutive = 0
  ejections = 0
  ejectedUntil = 0
  probation = false
  /** Marked down by active health checks (false before the first result: usable). */
  down = false
  /** Active checks in a row that passed / failed (the other count is 0). */
  checkPasses = 0
  checkFailures = 0
  /** Active checks done, by result, for turnout_health_checks_total. */
  readonly checks = { pass: 0, fail: 0 }
  /** Whether active checks run for this endpoint (turnout_endpoint_up is exported for it). */
  checked = false

  constructor(
    readonly route: string,
    readonly variant: Variant,
    readonly url: string,
    readonly group: VariantHealth,
  ) {}

  /** May get traffic: not ejected (an ejection whose time passed ends here) and not down. */
  usable(): boolean {
    if (this.down) return false
    return this.ejectedUntil === 0 || !isEjected(this, Date.now())
  }

  /** An answer or gateway error from live traffic. Returns true when it ejected the endpoint. */
  record(ok: boolean): boolean {
    if (ok) {
      if (this.consecutive !== 0 || this.probation) recordSuccess(this)
      return false
    }
    const now = Date.now()
    const members = this.group.members
    let ejected = 0
    for (const m of members) if (m !== this && isEjected(m, now)) ejected++
    if (!recordFailure(this, this.group.outlier, now, ejected, members.length)) return false
    this.group.ejectionsTotal++
    return true
  }
}

/** Apply one active check result; returns true when the endpoint's down/up status changed. */
export function recordCheck(
  h: Pick<EndpointHealth, 'down' | 'checkPasses' | 'checkFailures'>,
  passed: boolean,
  thresholds: { healthyThreshold: number; unhealthyThreshold: number },
): boolean {
  if (passed) {
    h.checkFailures = 0
    h.checkPasses++
    if (h.down && h.checkPasses >= thresholds.healthyThreshold) {
      h.down = false
      return true
    }
    return false
  }
  h.checkPasses = 0
  h.checkFailures++
  if (!h.down && h.checkFailures >= thresholds.unhealthyThreshold) {
    h.down = true
    return true
  }
  return false
}

const DEFAULT_OUTLIER: OutlierConfig = {
  enabled: true,
  consecutiveFailures: 5,
  baseEjectionTime: 30_000,
  maxEjectionPercent: 50,
}

/** One variant of one route: its endpoints' health and the variant-wide counters. */
export class VariantHealth {
  members: EndpointHealth[] = []
  outlier: OutlierConfig = DEFAULT_OUTLIER
  /** Circuit breaker (maxInFlight), null when unlimited. */
  maxInFlight: number | null = null
  /** Live requests of this variant being forwarded, and how many of them are retrying. */
  inFlight = 0
  retriesInFlight = 0
  /** Counters read at scrape time. */
  readonly retries = new Map<string, number>()
  ejectionsTotal = 0
  budgetExhausted = 0
  panics = 0
  overloads = 0
  /** Canary-bound requests sent to the primary instead (counted on the canary's group). */
  failovers = 0
  /** Requests that found no usable endpoint in this variant (panic or failover). */
  noUsable = 0

  constructor(
    readonly route: string,
    readonly variant: Variant,
  ) {}

  hasUsable(): boolean {
    for (const m of this.members) if (m.usable()) return true
    return false
  }

  countRetry(reason: string): void {
    this.retries.set(reason, (this.retries.get(reason) ?? 0) + 1)
  }
}

/** Every route's endpoint health, kept across table swaps; routes and endpoints removed are dropped. */
export class HealthRegistry {
  readonly variants = new Map<string, VariantHealth>()
  readonly endpoints = new Map<string, EndpointHealth>()

  variant(route: string, variant: Variant): VariantHealth {
    const key = `${route}|${variant}`
    let v = this.variants.get(key)
    if (v === undefined) {
      v = new VariantHealth(route, variant)
      this.variants.set(key, v)
    }
    return v
  }

  endpoint(group: VariantHealth, url: string): EndpointHealth {
    const key = `${group.route}|${group.variant}|${url}`
    let e = this.endpoints.get(key)
    if (e === undefined) {
      e = new EndpointHealth(group.route, group.variant, url, group)
      this.endpoints.set(key, e)
    }
    return e
  }

  /** Drops the state of variants and endpoints no longer configured (after a table swap). */
  retain(live: ReadonlySet<VariantHealth>): void {
    for (const [key, v] of this.variants) if (!live.has(v)) this.variants.delete(key)
    for (const [key, e] of this.endpoints)
      if (!live.has(e.group) || !e.group.members.includes(e)) this.endpoints.delete(key)
  }
}
