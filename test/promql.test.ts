// Every PromQL expression we publish, run against a real Prometheus scraping a Turnout with traffic:
// the README and docs/*.md (```promql blocks, `query:` fields in ```yaml blocks, inline code that
// calls rate/sum/histogram_quantile), the Grafana dashboard's targets and the Flagger templates.
// Each must parse (Prometheus answers success) and return at least one finite sample; the mirror
// mismatch ratio must be a real ratio (strictly between 0 and 1 here), not the constant 1.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { PROMETHEUS_BIN, prometheusAvailable, startPrometheus } from './helpers/prometheus.js'
import { startProxy } from './helpers/turnout.js'
import { startUpstream } from './helpers/upstream.js'

interface Expression {
  source: string
  expr: string
}

const ROUTE = 'shop'
const substitute = (q: string) =>
  q
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$route', ROUTE)
    .replace(/\{\{\s*variables\.route\s*\}\}/g, ROUTE)
    .replace(/\{\{\s*interval\s*\}\}/g, '1m')
    .trim()

const looksLikePromql = (s: string) =>
  /\b(rate|increase|sum|histogram_quantile)\s*\(/.test(s) && s.includes('turnout_')

/** Every string under a `query` key of a YAML document. */
function queries(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) queries(n, out)
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'query' && typeof v === 'string') out.push(v)
      else queries(v, out)
    }
  }
  return out
}

function fromYaml(text: string, source: string): Expression[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`)
    return queries(doc.toJS()).map((q) => ({ source, expr: substitute(q) }))
  })
}

export function fromMarkdown(file: string): Expression[] {
  const text = readFileSync(file, 'utf8')
  const out: Expression[] = []
  for (const m of text.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    const [, lang, body] = m
    const line = text.slice(0, m.index).split('\n').length
    if (lang === 'promql') {
      // one expression per run of lines between comments
      for (const chunk of body!.split(/^\s*#.*$/m)) {
        const expr = chunk.trim()
        if (expr) out.push({ source: `${file}:${line}`, expr: substitute(expr) })
      }
    } else if (lang === 'yaml' && /\bquery:/.test(body!)) {
      out.push(...fromYaml(body!, `${file}:${line}`).filter((e) => looksLikePromql(e.expr)))
    }
  }
  const prose = text.replace(/```[\s\S]*?```/g, '')
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) {
    if (looksLikePromql(m[1]!)) out.push({ source: `${file} (inline)`, expr: substitute(m[1]!) })
  }
  return out
}

function fromDashboard(file: string): Expression[] {
  const out: Expression[] = []
  const walk = (panels: unknown) => {
    for (const p of (panels as Array<{
      title?: string
      targets?: Array<{ expr?: string }>
      panels?: unknown
    }>) ?? []) {
      for (const target of p.targets ?? []) {
        if (target.expr) out.push({ source: `${file}: ${p.title}`, expr: substitute(target.expr) })
      }
      walk(p.panels)
    }
  }
  walk((JSON.parse(readFileSync(file, 'utf8')) as { panels: unknown }).panels)
  return out
}

export function publishedExpressions(): Expression[] {
  const docs = existsSync('docs')
    ? readdirSync('docs')
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`)
    : []
  return [
    ...['README.md', ...docs].flatMap(fromMarkdown),
    ...fromDashboard('config/grafana/turnout-dashboard.json'),
    ...fromYaml(
      readFileSync('config/flagger/metric-templates.yaml', 'utf8'),
      'config/flagger/metric-templates.yaml',
    ),
  ]
}

t.test('the expressions are found where they are published', async (t) => {
  const all = publishedExpressions()
  const where = (prefix: string) => all.filter((e) => e.source.startsWith(prefix)).length
  t.ok(where('config/grafana') >= 10, 'dashboard targets')
  t.equal(where('config/flagger'), 2, 'both Flagger templates')
  t.ok(all.length - where('config/') >= 4, 'expressions in the README and docs')
  const mismatch = all.filter((e) => e.expr.includes('result="mismatch"'))
  t.ok(mismatch.length >= 1, 'the mirror mismatch ratio is documented')
  for (const e of mismatch) t.match(e.expr, /^sum\(.*\/\s*sum\(/s, `${e.source}: sum() on both sides`)
  for (const e of all) t.notMatch(e.expr, /\$|\{\{/, `${e.source}: every template variable substituted`)
})

const skip = prometheusAvailable ? false : `${PROMETHEUS_BIN} not found: apt-get install -y prometheus`

t.test(
  'every published expression parses and returns samples against Turnout with traffic',
  { skip },
  async (t) => {
    const handler =
      (name: string) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        if (req.url === '/reset' && name === 'canary') return req.socket.destroy()
        const answer = () => res.end(req.url === '/same' ? 'same' : `${name} ${req.url}`)
        if (req.url === '/slow' && name === 'canary') setTimeout(answer, 3000)
        else answer()
      }
    const primary = await startUpstream('primary', handler('primary'))
    const canary = await startUpstream('canary', handler('canary'))
    t.teardown(() => Promise.all([primary.close(), canary.close()]))
    const turnout = await startProxy(t, {
      routes: [
        {
          name: ROUTE,
          primary: { endpoints: [primary.url] },
          canary: { endpoints: [canary.url] },
          split: { canary: 50 },
          faults: [{ variant: 'canary', abort: { status: 503, percent: 20 } }],
          mirror: { percent: 100, timeout: '1s', compare: { status: true, body: true } },
        },
      ],
    })
    const prom = await startPrometheus(t, [new URL(turnout.adminUrl).host])
    let running = true
    const traffic = (async () => {
      for (let i = 0; running; i++) {
        const path = ['/same', '/diff', '/same', '/reset', '/slow'][i % 5]
        await fetch(`${turnout.url}${path}`)
          .then((r) => r.arrayBuffer())
          .catch(() => 0)
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    t.teardown(async () => {
      running = false
      await traffic
    })

    type Sample = { value: [number, string] }
    const samples = async (expr: string): Promise<number[]> => {
      const data = await prom.query(expr)
      if (data.resultType === 'scalar') return [Number((data.result as [number, string])[1])]
      return (data.result as Sample[]).map((s) => Number(s.value[1]))
    }
    const all = publishedExpressions()
    const answered = new Map<string, number[]>()
    // A mismatch ratio is only done once both matches and mismatches were counted (0 < v < 1).
    const ratio = (e: Expression) => e.expr.includes('result="mismatch"')
    const ok = (e: Expression) =>
      (answered.get(e.expr) ?? []).some((v) => Number.isFinite(v) && (!ratio(e) || (v > 0 && v < 1)))
    const errors = new Map<string, string>()
    const deadline = Date.now() + 90_000
    while (Date.now() < deadline && prom.exitCode === null) {
      for (const e of all) {
        if (ok(e)) continue
        try {
          answered.set(e.expr, await samples(e.expr))
          errors.delete(e.expr)
        } catch (err) {
          errors.set(e.expr, (err as Error).message)
        }
      }
      if (all.every(ok)) break
      await new Promise((r) => setTimeout(r, 1000))
    }
    t.equal(prom.exitCode, null, `prometheus is running (${prom.stderr.slice(0, 500)})`)
    for (const e of all) {
      const values = answered.get(e.expr) ?? []
      t.notOk(errors.has(e.expr), `${e.source}: parses (${errors.get(e.expr) ?? 'ok'})`)
      t.ok(values.some(Number.isFinite), `${e.source}: ${e.expr} → [${values.join(', ')}]`)
      if (ratio(e)) t.ok(ok(e), `mismatch ratio [${values}] is a ratio (/same matches, /diff does not)`)
    }
  },
)
