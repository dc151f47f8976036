// The `prometheus` analysis check's query: one instant query against a Prometheus server's HTTP API
// (`/api/v1/query`). A scalar, or the first sample of a vector, becomes the number that is judged;
// an empty vector, NaN, an error answer or an unreachable server gives null (inconclusive).
import { request } from 'undici'

export interface PrometheusAnswer {
  value: number | null
  /** Why there is no value (for the log); null when there is one. */
  error: string | null
}

interface QueryResponse {
  status?: string
  error?: string
  data?: {
    resultType?: string
    result?: unknown
  }
}

export async function queryPrometheus(
  address: string,
  query: string,
  timeoutMs: number,
): Promise<PrometheusAnswer> {
  const url = new URL('/api/v1/query', address.endsWith('/') ? address : `${address}/`)
  url.searchParams.set('query', query)
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    const text = await res.body.text()
    let body: QueryResponse
    try {
      body = JSON.parse(text) as QueryResponse
    } catch {
      return { value: null, error: `HTTP ${res.statusCode}: not a Prometheus API answer` }
    }
    if (res.statusCode !== 200 || body.status !== 'success') {
      return { value: null, error: `HTTP ${res.statusCode}: ${body.error ?? 'query failed'}` }
    }
    return resultValue(body.data?.resultType, body.data?.result)
  } catch (err) {
    const e = err as Error & { code?: string }
    return { value: null, error: signal.aborted ? `no answer within ${timeoutMs}ms` : (e.code ?? e.message) }
  }
}

/** A query result → one number. Exported for tests. */
export function resultValue(resultType: string | undefined, result: unknown): PrometheusAnswer {
  let raw: unknown
  if (resultType === 'scalar') {
    raw = Array.isArray(result) ? result[1] : undefined
  } else if (resultType === 'vector') {
    if (!Array.isArray(result) || result.length === 0) return { value: null, error: 'empty result' }
    const first = result[0] as { value?: unknown } | undefined
    raw = Array.isArray(first?.value) ? first.value[1] : undefined
  } else {
    return { value: null, error: `unsupported result type ${resultType ?? 'none'} (want scalar or vector)` }
  }
  const value = typeof raw === 'string' || typeof raw === 'number' ? Number(raw) : Number.NaN
  if (!Number.isFinite(value)) return { value: null, error: `no number in the result (${String(raw)})` }
  return { value, error: null }
}
