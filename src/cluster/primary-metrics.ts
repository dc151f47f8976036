// The cluster primary's own series, merged into the workers' at GET /metrics. A reload the primary
// rejects never reaches the workers (they would reject it alike), so the primary counts it itself,
// once for the cluster.
import { Counter, Registry } from 'prom-client'
import { CONFIG_RELOADS } from '../telemetry/metrics.js'
import type { MetricsJson } from './messages.js'

export class PrimaryMetrics {
  readonly #registry = new Registry()
  readonly #reloads = new Counter({ ...CONFIG_RELOADS, labelNames: ['result'], registers: [this.#registry] })

  reloadRejected(): void {
    this.#reloads.inc({ result: 'error' })
  }

  json(): Promise<MetricsJson> {
    return this.#registry.getMetricsAsJSON() as Promise<MetricsJson>
  }
}
