// An upstream endpoint and the per-variant balancer over its endpoints.
import type { Pool } from 'undici'

export class Endpoint {
  /** Requests currently outstanding on this endpoint (least-request balancing reads it). */
  inFlight = 0
  constructor(
    readonly url: string,
    /** `http://host:port`, what the pool is keyed by. */
    readonly origin: string,
    /** `host:port`, for logs and span attributes. */
    readonly address: string,
    /** Path prefix of the endpoint URL ("" when the URL has none) prepended to the request path. */
    readonly basePath: string,
    readonly pool: Pool,
  ) {}
}

export type Balance = 'round-robin' | 'least-request'

export class Balancer {
  #next = 0
  constructor(
    readonly endpoints: readonly Endpoint[],
    readonly balance: Balance,
  ) {}

  pick(): Endpoint {
    const eps = this.endpoints
    if (eps.length === 1) return eps[0]!
    const start = this.#next++ % eps.length
    if (this.balance === 'round-robin') return eps[start]!
    let best = eps[start]!
    for (let i = 1; i < eps.length; i++) {
      const ep = eps[(start + i) % eps.length]!
      if (ep.inFlight < best.inFlight) best = ep
    }
    return best
  }

  /** Another endpoint than `not` when there is one (retries and noise replays prefer a fresh one). */
  other(not: Endpoint): Endpoint {
    if (this.endpoints.length === 1) return not
    const i = this.endpoints.indexOf(not)
    return this.endpoints[(i + 1) % this.endpoints.length]!
  }
}
