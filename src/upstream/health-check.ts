// Active health checks: for every endpoint of a variant with `healthCheck:`, a GET of its path every
// interval (user-agent: turnout-health), through the endpoint's own pool. unhealthyThreshold failures
// in a row mark it down (no traffic), healthyThreshold passes bring it back (health.ts recordCheck).
// Results count in turnout_health_checks_total only, never in the golden signals. Probes follow the
// route table: a swap keeps a probe whose settings did not change, starts new ones, stops removed ones.
import type { HealthCheckConfig, RouteConfig } from '../config/schema.js'
import type { Balancer, Endpoint } from './endpoint.js'
import { type EndpointHealth, recordCheck } from './health.js'
import { statusInRanges } from './status-ranges.js'

export const HEALTH_USER_AGENT = 'turnout-health'

/** What the checker needs of a compiled route (structural, so upstream/ does not import routing/). */
export interface CheckedRoute {
  readonly primary: Balancer
  readonly canary: Balancer | null
  readonly config: Pick<RouteConfig, 'primary' | 'canary'>
}

export interface CheckerOptions {
  /** An endpoint went down or came back. */
  changed?: (h: EndpointHealth, down: boolean) => void
}

/** One check: true when the endpoint answered within the timeout with an expected status. */
export async function checkOnce(
  endpoint: Endpoint,
  cfg: HealthCheckConfig,
  stop: AbortSignal,
): Promise<boolean> {
  try {
    const res = await endpoint.pool.request({
      method: 'GET',
      path: endpoint.basePath + cfg.path,
      headers: { 'user-agent': HEALTH_USER_AGENT },
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
      signal: AbortSignal.any([stop, AbortSignal.timeout(cfg.timeout)]),
    })
    await res.body.dump()
    return statusInRanges(res.statusCode, cfg.expectStatus)
  } catch {
    return false
  }
}

class Probe {
  #timer: NodeJS.Timeout | null = null
  readonly #stop = new AbortController()

  constructor(
    readonly endpoint: Endpoint,
    readonly cfg: HealthCheckConfig,
    readonly signature: string,
    readonly changed: CheckerOptions['changed'],
  ) {
    endpoint.health.checked = true
    this.#schedule(0)
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#run()
    }, ms)
    this.#timer.unref()
  }

  async #run(): Promise<void> {
    const passed = await checkOnce(this.endpoint, this.cfg, this.#stop.signal)
    if (this.#stop.signal.aborted) return
    const h = this.endpoint.health
    h.checks[passed ? 'pass' : 'fail']++
    if (recordCheck(h, passed, this.cfg)) this.changed?.(h, h.down)
    this.#schedule(this.cfg.interval)
  }

  stop(): void {
    this.#stop.abort()
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}

export class HealthChecker {
  readonly #probes = new Map<EndpointHealth, Probe>()
  constructor(readonly opts: CheckerOptions = {}) {}

  /** Brings the probes in line with a route table's endpoints. */
  sync(routes: readonly CheckedRoute[]): void {
    const wanted = new Map<EndpointHealth, { endpoint: Endpoint; cfg: HealthCheckConfig }>()
    for (const r of routes) {
      const variants: Array<[Balancer | null, HealthCheckConfig | undefined]> = [
        [r.primary, r.config.primary.healthCheck],
        [r.canary, r.config.canary?.healthCheck],
      ]
      for (const [balancer, cfg] of variants) {
        if (balancer === null || cfg === undefined) continue
        for (const endpoint of balancer.endpoints) wanted.set(endpoint.health, { endpoint, cfg })
      }
    }
    for (const [h, probe] of this.#probes) {
      const w = wanted.get(h)
      if (w !== undefined && signature(w.endpoint, w.cfg) === probe.signature) continue
      probe.stop()
      this.#probes.delete(h)
      if (w === undefined) {
        // No longer checked: the active-check verdict no longer applies.
        h.checked = false
        h.down = false
        h.checkPasses = 0
        h.checkFailures = 0
      }
    }
    for (const [h, w] of wanted) {
      if (this.#probes.has(h)) continue
      this.#probes.set(h, new Probe(w.endpoint, w.cfg, signature(w.endpoint, w.cfg), this.opts.changed))
    }
  }

  close(): void {
    for (const probe of this.#probes.values()) probe.stop()
    this.#probes.clear()
  }
}

function signature(endpoint: Endpoint, cfg: HealthCheckConfig): string {
  return `${endpoint.origin}${endpoint.basePath}|${JSON.stringify(cfg)}`
}
