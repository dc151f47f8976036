// The mirror's own connection pools, one per upstream origin (and connect timeout), apart from the
// live pools in src/upstream/pools.ts: a slow or dead canary fills these, never the sockets, queues
// or keep-alive state live requests use. They outlive config swaps and are destroyed at shutdown
// (outstanding mirrors are cut, not waited for).
// They also remember which origins refuse connections: after CONNECT_FAILURES consecutive connect
// failures an origin is skipped for CONNECT_COOLDOWN_MS (then one probe goes through), so a canary
// that is down costs a counted drop per request, not a socket and a failed connect per request.
import type { Pool } from 'undici'
import { createPool } from '../upstream/pools.js'

export const CONNECT_FAILURES = 5
export const CONNECT_COOLDOWN_MS = 1000

interface OriginHealth {
  failures: number
  /** performance.now() until which the origin is skipped; 0 when it is not. */
  skipUntil: number
}

export class MirrorPools {
  readonly #pools = new Map<string, Pool>()
  readonly #health = new Map<string, OriginHealth>()
  #closed = false

  get closed(): boolean {
    return this.#closed
  }

  get(origin: string, connectTimeout: number): Pool {
    const key = `${origin}|${connectTimeout}`
    let pool = this.#pools.get(key)
    if (!pool) {
      pool = createPool(origin, connectTimeout)
      this.#pools.set(key, pool)
    }
    return pool
  }

  /** Whether mirrors to this origin are skipped now (it refused the last connections). */
  skipped(origin: string): boolean {
    const h = this.#health.get(origin)
    if (h === undefined || h.skipUntil === 0) return false
    const now = performance.now()
    if (now < h.skipUntil) return true
    h.skipUntil = now + CONNECT_COOLDOWN_MS // let this one through as a probe, skip the others meanwhile
    return false
  }

  /** An exchange with this origin ended: did the connection fail? */
  report(origin: string, connectFailed: boolean): void {
    let h = this.#health.get(origin)
    if (!connectFailed) {
      if (h !== undefined) this.#health.delete(origin)
      return
    }
    if (h === undefined) {
      h = { failures: 0, skipUntil: 0 }
      this.#health.set(origin, h)
    }
    h.failures++
    if (h.failures >= CONNECT_FAILURES) h.skipUntil = performance.now() + CONNECT_COOLDOWN_MS
  }

  /** Fails whatever mirror is still outstanding and closes every connection. */
  async destroy(): Promise<void> {
    this.#closed = true
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.destroy()))
  }
}
