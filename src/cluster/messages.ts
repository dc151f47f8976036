// The IPC messages between the cluster primary and its workers (all `type`s start with `turnout:`;
// anything else on the channel, such as Node's own cluster traffic, is ignored).
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import type { RuntimeState } from '../rollout/runtime-state.js'

/** route name → live canary weight (0..100). */
export type Weights = Record<string, number>

/** One admin API call, as the primary's admin listener received it. */
export interface ApiRequest {
  method: string
  /** Path and query, as sent (still percent-encoded). */
  url: string
  headers: Record<string, string>
  /** JSON text, or '' for no body. */
  body: string
}

export interface ApiAnswer {
  status: number
  headers: Record<string, string | string[]>
  body: string
}

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

export type ToWorker =
  /** Stop accepting, finish in-flight requests, exit 0. */
  | { type: 'turnout:drain' }
  /** Re-read the config file (SIGHUP or a file change seen by the primary). */
  | { type: 'turnout:reload' }
  /** The answer to `hello`: the runtime state the primary kept, which the worker starts from. */
  | { type: 'turnout:runtime'; state: RuntimeState }
  /** The leader's weights (to followers); answered with `applied`. */
  | { type: 'turnout:weights'; seq: number; weights: Weights }
  /** An admin API call (to the leader); answered with `api-answer`. */
  | { type: 'turnout:api'; id: number; request: ApiRequest }
  /** This worker's metrics as JSON; answered with `metrics`. */
  | { type: 'turnout:metrics'; id: number }

export type FromWorker =
  /** The message listener is installed: the primary may talk to this worker now. */
  | { type: 'turnout:hello' }
  /** The proxy listener is up; `address` is what it is bound to. */
  | { type: 'turnout:ready'; address: string }
  /** The leader's live weights or rollout states changed (or it just started). */
  | { type: 'turnout:weights'; weights: Weights; runtime: RuntimeState }
  | { type: 'turnout:applied'; seq: number }
  /** A follower swapped its route table (reload): it wants the leader's weights again. */
  | { type: 'turnout:swapped' }
  | { type: 'turnout:api-answer'; id: number; answer: ApiAnswer }
  | { type: 'turnout:metrics'; id: number; metrics: MetricsJson }

/** The worker id (1..N) the primary gives each worker's process; worker 1 is the leader. */
export const WORKER_ID_ENV = 'TURNOUT_WORKER_ID'

export function isTurnoutMessage<T extends { type: string }>(m: unknown): m is T {
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof (m as { type?: unknown }).type === 'string' &&
    (m as { type: string }).type.startsWith('turnout:')
  )
}
