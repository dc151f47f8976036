// Differential fuzz of an HTTP/1.1 proxy: random valid requests go straight to one echo upstream and,
// byte for byte the same, through the proxy to a second echo upstream. What each upstream received
// and what the client got back are compared; every difference is classified (known.js).
// Used by test/fuzz-differential.test.ts (about 2,000 requests) and bench/fuzz.js (long runs).
import { generateAnswer } from './answer.js'
import { runSession } from './client.js'
import { compareExchange } from './compare.js'
import { startEcho } from './echo.js'
import { generateRequest } from './generate.js'
import { classify, KNOWN } from './known.js'
import { Random } from './random.js'

export { KNOWN } from './known.js'

/** Session `k`'s own generator, so one session can be replayed alone from (seed, k). */
export function sessionRandom(seed, k) {
  return new Random((seed + Math.imul(k + 1, 0x9e3779b1)) >>> 0)
}

/** Session `k`: 1 to 4 requests on one keep-alive connection, each with the answer the echo will give. */
export function generateSession(seed, k, firstId = k * 4 + 1) {
  const rnd = sessionRandom(seed, k)
  const r = rnd.next()
  const n = r < 0.4 ? 1 : r < 0.65 ? 2 : r < 0.85 ? 3 : 4
  const out = []
  for (let i = 0; i < n; i++) {
    const req = generateRequest(rnd, `${firstId + i}`, i === n - 1)
    out.push({ req, answer: generateAnswer(rnd) })
  }
  return out
}

function record(report, id, atom, ex, k) {
  let c = report.classes.get(id)
  if (!c) {
    const known = KNOWN.find((e) => e.id === id)
    c = { id, kind: known?.kind ?? 'unexplained', reason: known?.reason ?? '', count: 0, example: null }
    report.classes.set(id, c)
  }
  c.count++
  if (c.example === null || ex.req.bytes.length < c.example.bytes.length)
    c.example = { session: k, requestId: ex.req.id, bytes: ex.req.bytes, atom }
}

async function runOne(ctx, k, firstId) {
  const session = generateSession(ctx.seed, k, firstId)
  for (const { req, answer } of session) ctx.answers.set(req.id, answer)
  const reqs = session.map((s) => s.req)
  const [direct, proxied] = await Promise.all([
    runSession(ctx.direct.port, reqs, ctx.timeoutMs),
    runSession(ctx.proxyPort, reqs, ctx.timeoutMs),
  ])
  session.forEach(({ req, answer }, i) => {
    const ex = {
      req,
      answer,
      direct: { records: ctx.direct.seen.get(req.id), result: direct[i] },
      proxy: { records: ctx.behind.seen.get(req.id), result: proxied[i] },
    }
    const seenIds = new Set()
    const atoms = compareExchange(ex)
    ctx.onExchange?.(
      ex,
      atoms.map((atom) => ({ class: classify(atom, ex), ...atom })),
    )
    for (const atom of atoms) {
      const id = classify(atom, ex)
      ctx.report.atoms++
      if (seenIds.has(id)) continue // count requests per class, not atoms
      seenIds.add(id)
      record(ctx.report, id, atom, ex, k)
    }
    ctx.answers.delete(req.id)
    ctx.direct.seen.delete(req.id)
    ctx.behind.seen.delete(req.id)
  })
  return session.length
}

/**
 * Runs the fuzz. opts: { seed, requests, concurrency (default 8), timeoutMs (per answer, default
 * 15000), startProxy(upstreamUrl) → Promise<{ url, close() }>, onProgress?(done), sessions?: [k...]
 * (replay only these sessions), onExchange?(exchange, classifiedAtoms) }.
 * Resolves to { seed, requests, sessions, atoms, classes: Map<id, { id, kind, reason, count, example }> }.
 */
export async function runFuzz(opts) {
  const answers = new Map()
  const direct = await startEcho(answers)
  const behind = await startEcho(answers)
  const proxy = await opts.startProxy(behind.url)
  const report = { seed: opts.seed, requests: 0, sessions: 0, atoms: 0, classes: new Map() }
  const ctx = {
    seed: opts.seed,
    answers,
    direct,
    behind,
    proxyPort: Number(new URL(proxy.url).port),
    timeoutMs: opts.timeoutMs ?? 15_000,
    onExchange: opts.onExchange,
    report,
  }
  const only = opts.sessions ?? null
  let next = 0
  const worker = async () => {
    while (only === null ? report.requests < opts.requests : next < only.length) {
      const k = only === null ? next++ : only[next++]
      const n = await runOne(ctx, k, k * 4 + 1) // ids from the session number: a replay sends the same bytes
      report.requests += n
      report.sessions++
      opts.onProgress?.(report.requests)
    }
  }
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker))
  } finally {
    await proxy.close()
    await direct.close()
    await behind.close()
  }
  return report
}

/** The classes of a report not in the known table (each one fails the fuzz test). */
export function unexplained(report) {
  return [...report.classes.values()].filter((c) => c.kind === 'unexplained')
}

function shown(bytes, max) {
  const s = JSON.stringify(bytes.subarray(0, max).toString('latin1'))
  return bytes.length > max ? `${s}... (${bytes.length} bytes)` : s
}

/** A readable summary: one block per class with its count, reason and smallest example. */
export function formatReport(report, { maxExample = 600 } = {}) {
  const lines = [
    `seed ${report.seed}: ${report.requests} requests in ${report.sessions} sessions, ${report.classes.size} difference classes`,
  ]
  const order = { unexplained: 0, pending: 1, documented: 2 }
  const classes = [...report.classes.values()].sort(
    (a, b) => order[a.kind] - order[b.kind] || b.count - a.count,
  )
  for (const c of classes) {
    lines.push(`\n[${c.kind}] ${c.id}: ${c.count} requests`)
    if (c.reason) lines.push(`  why: ${c.reason}`)
    const { atom, bytes, session, requestId } = c.example
    lines.push(`  example (session ${session}, x-fuzz-id ${requestId}): ${JSON.stringify(atom)}`)
    lines.push(`  request: ${shown(bytes, maxExample)}`)
  }
  return lines.join('\n')
}
