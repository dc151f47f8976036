// Rollout webhooks with Flagger's meanings. Every call is a POST of the rollout's state as JSON; an
// answer is "yes" only when it is a 2xx within the hook's timeout (a hanging hook is cut at its
// timeout and counts as a "no"). Gates (confirm-*) and checks (pre-rollout, rollout) are awaited;
// notifications (event, post-rollout) are sent in the background and never waited on.
import { request } from 'undici'
import type { RolloutConfig, WebhookType } from '../config/schema.js'
import type { CheckOutcome } from './analysis.js'

export type WebhookConfig = RolloutConfig['webhooks'][number]

/** What every hook receives. */
export interface WebhookPayload {
  route: string
  phase: string
  step: number
  weight: number
  reason: string
  analysis: CheckOutcome[]
}

export interface WebhookResult {
  /** The hook's name, or its URL when it has none. */
  name: string
  type: WebhookType
  /** 2xx within the timeout. */
  ok: boolean
  /** HTTP status, null when there was no answer. */
  status: number | null
  /** Why there was no answer (timeout, connection refused...). */
  error: string | null
}

/** Calls one hook; never throws. */
export async function callWebhook(hook: WebhookConfig, payload: WebhookPayload): Promise<WebhookResult> {
  const name = hook.name ?? hook.url
  const signal = AbortSignal.timeout(hook.timeout)
  try {
    const res = await request(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'turnout-rollout' },
      body: JSON.stringify(payload),
      signal,
      headersTimeout: hook.timeout,
      bodyTimeout: hook.timeout,
    })
    // Read the (small) answer so the connection can be reused; the body itself is not interpreted.
    await res.body.dump({ signal, limit: 64 * 1024 }).catch(() => {})
    const ok = res.statusCode >= 200 && res.statusCode < 300
    return { name, type: hook.type, ok, status: res.statusCode, error: null }
  } catch (err) {
    const e = err as Error & { code?: string }
    const error = signal.aborted ? `no answer within ${hook.timeout}ms` : (e.code ?? e.message)
    return { name, type: hook.type, ok: false, status: null, error }
  }
}

/** Calls every hook of one type in parallel, in config order. */
export function callWebhooks(
  hooks: readonly WebhookConfig[],
  type: WebhookType,
  payload: WebhookPayload,
): Promise<WebhookResult[]> {
  return Promise.all(hooks.filter((h) => h.type === type).map((h) => callWebhook(h, payload)))
}

/** "confirm-rollout webhook NAME answered 500" / "... failed: no answer within 5000ms", for reasons and logs. */
export function describeResult(r: WebhookResult): string {
  return `${r.type} webhook ${r.name} ${r.status !== null ? `answered ${r.status}` : `failed: ${r.error}`}`
}
