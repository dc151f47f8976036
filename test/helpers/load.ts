// Steady background traffic through the proxy for rollout tests: `workers` loops, each sending one
// request after another on a shared keep-alive pool, until stop() (or a hard time cap, so a failing
// test never loops forever). Counts answers by the variant the proxy reports.
import { Pool } from 'undici'

export interface LoadCounts {
  sent: number
  statuses: Map<number, number>
  variants: { primary: number; canary: number }
  /** Requests that got no answer at all (connection errors). */
  failed: number
}

export interface Load {
  readonly counts: LoadCounts
  /** Stops sending; resolves when every worker has finished its last request. */
  stop(): Promise<LoadCounts>
  /** Zeroes the counts (e.g. after an abort, to look at what follows). */
  reset(): void
}

export function startLoad(
  url: string,
  opts: {
    workers?: number
    path?: string
    headers?: Record<string, string>
    maxMs?: number
    pauseMs?: number
  } = {},
): Load {
  const pool = new Pool(url, { connections: opts.workers ?? 4 })
  const counts: LoadCounts = { sent: 0, statuses: new Map(), variants: { primary: 0, canary: 0 }, failed: 0 }
  let running = true
  const cap = setTimeout(() => {
    running = false
  }, opts.maxMs ?? 30_000)
  cap.unref()
  // reset() starts a new epoch: only requests sent after it are counted, so one still in flight from
  // before (e.g. a canary request racing a rollout abort) cannot leak into the new counts.
  let epoch = 0
  const worker = async () => {
    while (running) {
      const started = epoch
      try {
        const res = await pool.request({ method: 'GET', path: opts.path ?? '/', headers: opts.headers })
        await res.body.dump()
        if (started !== epoch) continue
        counts.sent++
        counts.statuses.set(res.statusCode, (counts.statuses.get(res.statusCode) ?? 0) + 1)
        const v = res.headers['x-turnout-variant']
        if (v === 'canary') counts.variants.canary++
        else if (v === 'primary') counts.variants.primary++
      } catch {
        if (started === epoch) counts.failed++
        await new Promise((r) => setTimeout(r, 20))
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs))
    }
  }
  const workers = Array.from({ length: opts.workers ?? 4 }, worker)
  let stopped: Promise<void> | null = null
  return {
    counts,
    async stop() {
      running = false
      clearTimeout(cap)
      stopped ??= Promise.all(workers).then(() => pool.close())
      await stopped
      return counts
    },
    reset() {
      epoch++
      counts.sent = 0
      counts.failed = 0
      counts.statuses.clear()
      counts.variants.primary = 0
      counts.variants.canary = 0
    },
  }
}

export { until } from './until.js'
