// Keep-alive connection pools, one per upstream origin (and connect timeout), shared by every
// compiled route table: a config swap or a weight change never reconnects. Closed at shutdown.
import { Pool } from 'undici'
import { lenientConnector } from './wire.js'

export interface PoolOptions {
  connectTimeout: number
}

/**
 * undici's defaults fit a proxy well; two are set on purpose: idle pooled sockets are dropped before
 * a Node upstream's own 5 s keep-alive timeout (4 s, or the upstream's `Keep-Alive: timeout=` minus
 * 1 s), so a request is never written onto a socket the upstream is about to close. Connections
 * go through wire.ts (asterisk-form targets, unsolicited 100 Continue).
 */
const KEEP_ALIVE_TIMEOUT = 4000
const KEEP_ALIVE_THRESHOLD = 1000

/** A pool to `origin` with Turnout's settings (above); the mirror's own pools use it too. */
export function createPool(origin: string, connectTimeout: number): Pool {
  return new Pool(origin, {
    connect: lenientConnector(connectTimeout),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
    keepAliveTimeoutThreshold: KEEP_ALIVE_THRESHOLD,
    keepAliveMaxTimeout: 60_000,
    pipelining: 1,
  })
}

export class Pools {
  readonly #pools = new Map<string, Pool>()

  get(origin: string, opts: PoolOptions): Pool {
    const key = `${origin}|${opts.connectTimeout}`
    let pool = this.#pools.get(key)
    if (!pool) {
      pool = createPool(origin, opts.connectTimeout)
      this.#pools.set(key, pool)
    }
    return pool
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.close()))
  }

  /** Closes at once, failing whatever is still running. */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.destroy()))
  }
}
