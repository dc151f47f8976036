// An upstream endpoint and the per-variant balancer over its endpoints. Both are rebuilt with every
// route table; their health (health.ts) is not: it comes from the HealthRegistry and survives swaps.
import type { Pool } from 'undici'
import type { Variant } from '../config/schema.js'
import { EndpointHealth, VariantHealth } from './health.js'

export class Endpoint {
  readonly health: EndpointHealth
  constructor(
    readonly url: string,
    /** `http://host:port`, what the pool is keyed by. */
    readonly origin: string,
    /** `host:port`, for logs and span attributes. */
    readonly address: string,
    /** Path prefix of the endpoint URL ("" when the URL has none) prepended to the request path. */
    readonly basePath: string,
    readonly pool: Pool,
    health?: EndpointHealth,
  ) {
    this.health = health ?? new EndpointHealth('', 'primary', url, new VariantHealth('', 'primary'))
  }

  /** Requests currently outstanding on this endpoint (least-request balancing reads it). */
  get inFlight(): number {
    return this.health.inFlight
  }
  set inFlight(n: number) {
    this.health.inFlight = n
  }
}

export type Balance = 'round-robin' | 'least-request'

export class Balancer {
  #next = 0
  readonly health: VariantHealth
  constructor(
    readonly endpoints: readonly Endpoint[],
    readonly balance: Balance,
    health?: VariantHealth,
  ) {
    this.health = health ?? standaloneGroup(endpoints)
  }

  get variant(): Variant {
    return this.health.variant
  }

  /**
   * A usable endpoint (not ejected, not down), or null when there is none. Healthy endpoints cost
   * two field reads each.
   */
  pickUsable(): Endpoint | null {
    const eps = this.endpoints
    const n = eps.length
    const start = n === 1 ? 0 : this.#next++ % n
    if (this.balance === 'round-robin') {
      for (let i = 0; i < n; i++) {
        const ep = eps[(start + i) % n]!
        if (ep.health.usable()) return ep
      }
      return null
    }
    let best: Endpoint | null = null
    for (let i = 0; i < n; i++) {
      const ep = eps[(start + i) % n]!
      if ((best === null || ep.inFlight < best.inFlight) && ep.health.usable()) best = ep
    }
    return best
  }

  /** Any endpoint, usable ones first (the mirror, and panic mode when none is usable). */
  pick(): Endpoint {
    return this.pickUsable() ?? this.endpoints[this.#next++ % this.endpoints.length]!
  }

  /** Another endpoint than `not` when there is one, a usable one first (retries, noise replays). */
  other(not: Endpoint): Endpoint {
    const eps = this.endpoints
    if (eps.length === 1) return not
    const i = eps.indexOf(not)
    for (let k = 1; k < eps.length; k++) {
      const ep = eps[(i + k) % eps.length]!
      if (ep !== not && ep.health.usable()) return ep
    }
    return eps[(i + 1) % eps.length]!
  }
}

/** Health for a Balancer built outside a route table (tests, tools): its own group. */
function standaloneGroup(endpoints: readonly Endpoint[]): VariantHealth {
  const group = new VariantHealth('', 'primary')
  group.members = endpoints.map((e) => e.health)
  return group
}
