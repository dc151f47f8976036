// Count-based load for resilience tests: exactly `total` requests over `connections` keep-alive
// connections, answers listed in completion order (no timing involved), and a reader for one
// Prometheus sample from /metrics.
import { Pool } from 'undici'

export interface Answer {
  status: number
  variant: string | undefined
  body: string
}

export async function sendMany(
  url: string,
  total: number,
  connections: number,
  opts: { path?: string; headers?: (i: number) => Record<string, string> } = {},
): Promise<Answer[]> {
  const pool = new Pool(url, { connections })
  const answers: Answer[] = []
  let next = 0
  const worker = async () => {
    while (next < total) {
      const i = next++
      try {
        const res = await pool.request({ method: 'GET', path: opts.path ?? '/', headers: opts.headers?.(i) })
        const body = await res.body.text()
        const v = res.headers['x-turnout-variant']
        answers.push({ status: res.statusCode, variant: typeof v === 'string' ? v : undefined, body })
      } catch (err) {
        answers.push({ status: 0, variant: undefined, body: (err as Error).message })
      }
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  await pool.close()
  return answers
}

export function count(answers: readonly Answer[], pred: (a: Answer) => boolean): number {
  return answers.filter(pred).length
}

/** The value of the sample `name{labels}` (labels matched as given, any others ignored), or null. */
export async function metric(
  adminUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | null> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  let sum: number | null = null
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}
