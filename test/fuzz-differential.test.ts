// Differential fuzz: about 2,000 random valid requests (raw bytes: framing, header case, repeated and
// odd-but-legal headers, odd targets, keep-alive sessions) go straight to an echo upstream and through
// Turnout. Every difference between what the upstreams received and what the client got must be a
// class in the known-differences table (bench/lib/fuzz/known.js). Seed: FUZZ_SEED, else a fixed one.
// The longer run is `node bench/fuzz.js --requests 100000`.
import { once } from 'node:events'
import { type AddressInfo, connect, createServer } from 'node:net'
import t from 'tap'
import { formatReport, KNOWN, runFuzz, unexplained } from '../bench/lib/fuzz/index.js'
import { startProxy } from './helpers/turnout.js'

const seed = process.env.FUZZ_SEED === undefined ? 11 : Number(process.env.FUZZ_SEED)
const requests = Number(process.env.FUZZ_REQUESTS ?? 2000)

t.test(`Turnout differs from a direct request only in known classes (seed ${seed})`, async (t) => {
  t.comment(`fuzz seed ${seed} (FUZZ_SEED=${seed} replays it)`)
  const report = await runFuzz({
    seed,
    requests,
    timeoutMs: 10_000,
    startProxy: async (upstreamUrl) => {
      const turnout = await startProxy(t, {
        routes: [{ name: 'fuzz', primary: { endpoints: [upstreamUrl] } }],
      })
      return { url: turnout.url, close: async () => {} } // closed in the test's teardown
    },
  })
  t.comment(formatReport(report, { maxExample: 300 }))
  t.ok(report.requests >= requests, `${report.requests} requests sent`)
  t.same(
    unexplained(report).map((c) => c.id),
    [],
    `no difference outside the known table (replay: FUZZ_SEED=${seed} npx tap test/fuzz-differential.test.ts)`,
  )
  // The comparison is live: the rewrites every forwarded request gets were seen (a few requests may be
  // refused once pending fixes land, e.g. transfer codings answered 501).
  for (const id of ['forwarding-headers', 'turnout-headers', 'hop-by-hop'])
    t.ok((report.classes.get(id)?.count ?? 0) >= report.requests * 0.9, `${id} seen on nearly every request`)
})

t.test('every known class has a reason, and pending ones say so', async (t) => {
  const ids = new Set<string>()
  for (const k of KNOWN) {
    t.notOk(ids.has(k.id), `${k.id} listed once`)
    ids.add(k.id)
    t.ok(k.reason.length > 20, `${k.id} has a reason`)
    t.equal(
      k.reason.startsWith('pending:'),
      k.kind === 'pending',
      `${k.id}: pending reasons start "pending:"`,
    )
  }
})

/** A transparent TCP relay to the upstream: a "proxy" that rewrites nothing. */
async function tcpRelay(upstreamUrl: string) {
  const port = Number(new URL(upstreamUrl).port)
  const server = createServer((client) => {
    const up = connect(port, '127.0.0.1')
    client.pipe(up).pipe(client)
    client.on('error', () => up.destroy())
    up.on('error', () => client.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.close()
    },
  }
}

t.test('the harness catches a proxy that skips the documented rewrites', async (t) => {
  const report = await runFuzz({ seed: 5, requests: 150, timeoutMs: 10_000, startProxy: tcpRelay })
  const ids = unexplained(report).map((c) => c.id)
  for (const name of ['x-forwarded-for', 'via', 'x-turnout-variant'])
    t.ok(ids.includes(`unexplained upstream rewrite-missing ${name}`), `missing ${name} is a new class`)
  t.notOk(report.classes.has('trailers-dropped'), 'a byte-for-byte relay drops no trailers')
})
