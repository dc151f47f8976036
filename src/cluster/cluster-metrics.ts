// GET /metrics on the cluster's admin listener: every ready worker's registry as JSON over IPC,
// merged with the primary's own series by prom-client's AggregatorRegistry.aggregate (counters and
// histograms summed; the weight gauge taken once). A worker that dies meanwhile is left out.
import { AggregatorRegistry } from 'prom-client'
import { AdminError, type AdminServer } from '../admin/server.js'
import { CallTable } from './calls.js'
import type { MetricsJson } from './messages.js'
import type { PrimaryMetrics } from './primary-metrics.js'
import type { Supervisor } from './supervisor.js'

const METRICS_TIMEOUT_MS = 5000

/** Mounts GET /metrics; the returned table takes the workers' answers (and hears of exits). */
export function mountClusterMetrics(
  admin: AdminServer,
  supervisor: Supervisor,
  own: PrimaryMetrics,
): CallTable<MetricsJson> {
  const calls = new CallTable<MetricsJson>()
  const gather = () =>
    calls.ask(
      supervisor.slots.filter((s) => s.ready && supervisor.live(s)).map((s) => s.id),
      {
        timeoutMs: METRICS_TIMEOUT_MS,
        timedOut: () => new AdminError(503, `worker metrics did not arrive within ${METRICS_TIMEOUT_MS} ms`),
        send: (id, worker) => supervisor.tell(supervisor.slots[worker - 1]!, { type: 'turnout:metrics', id }),
      },
    )
  admin.route('GET', '/metrics', async ({ res }) => {
    const merged = AggregatorRegistry.aggregate([...(await gather()), await own.json()])
    const text = await merged.metrics()
    res.writeHead(200, { 'content-type': merged.contentType, 'cache-control': 'no-store' })
    res.end(text)
  })
  return calls
}
