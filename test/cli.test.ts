// The `turnout` binary as users and scripts drive it: listening lines, validate, exit codes,
// graceful shutdown under load. Runs bin/turnout.js (dist/ is built by `npm test`/`prepare`).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { version } from '../src/cli/main.js'
import { runBin, startBin } from './helpers/spawn.js'
import { startUpstream } from './helpers/upstream.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-cli-'))

function configFile(name: string, body: string): string {
  const file = join(dir, name)
  writeFileSync(file, body)
  return file
}

t.test('--config starts and logs one line per listener with the real address', async (t) => {
  const up = await startUpstream('primary')
  t.teardown(() => up.close())
  const file = configFile(
    'ok.yaml',
    `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nroutes:\n  - name: a\n    primary: { endpoints: [${up.url}] }\n`,
  )
  for (const args of [['--config', file], ['-c', file], []]) {
    const run = startBin(args, args.length === 0 ? { TURNOUT_CONFIG: file } : {})
    const proxy = await run.waitFor((l) => l.msg === 'listening' && l.listener === 'proxy')
    const admin = await run.waitFor((l) => l.msg === 'listening' && l.listener === 'admin')
    t.match(proxy.address, /^127\.0\.0\.1:\d+$/)
    t.not(proxy.address, '127.0.0.1:0', 'the OS-chosen port is logged')
    const res = await request(`http://${proxy.address}/hi`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
    const health = await request(`http://${admin.address}/healthz`)
    t.equal(health.statusCode, 200)
    await health.body.dump()
    run.child.kill('SIGTERM')
    t.equal(await run.exit, 0, 'SIGTERM exits 0')
  }
})

t.test('a bad config prints the problems to stderr and exits 1 before listening', async (t) => {
  const file = configFile(
    'bad.yaml',
    'listen: 127.0.0.1:0\nroutes:\n  - name: a\n    primary: { endpoints: [] }\n',
  )
  const r = await runBin(['--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, `${file}:4:27: routes[0].primary.endpoints: a variant needs at least one endpoint`)
  t.notMatch(r.stdout, /listening/)
})

t.test('validate, --version, --help and bad usage', async (t) => {
  const good = configFile(
    'good.yaml',
    'routes:\n  - name: a\n    primary: { endpoints: [http://127.0.0.1:1] }\n',
  )
  t.same(await runBin(['validate', good]), { code: 0, stdout: 'ok\n', stderr: '' })
  const bad = await runBin([
    'validate',
    configFile('b.yaml', 'routes:\n  - name: a\n    primary: { endpoints: [x] }\n'),
  ])
  t.equal(bad.code, 1)
  t.match(bad.stdout, /routes\[0\]\.primary\.endpoints\[0\]: must be an http/)
  const v = await runBin(['--version'])
  t.equal(v.stdout.trim(), version())
  t.equal(v.code, 0)
  const h = await runBin(['--help'])
  t.match(h.stdout, /turnout --config FILE/)
  for (const args of [['--bogus'], ['validate'], ['frobnicate'], []]) {
    const r = await runBin(args, { TURNOUT_CONFIG: '' })
    t.equal(r.code, 2, `${args.join(' ') || '(no args)'} exits 2`)
    t.match(r.stderr, /turnout: /)
  }
  const missing = await runBin(['--config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /cannot read file/)
})

t.test('SIGTERM under load: in-flight requests finish, none fail, exit 0', async (t) => {
  const up = await startUpstream('slowish', (_req, res) => {
    setTimeout(() => res.end('done'), 150)
  })
  t.teardown(() => up.close())
  const file = configFile(
    'drain.yaml',
    `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\nshutdown: { drainTimeout: 10s }\nroutes:\n  - name: a\n    primary: { endpoints: [${up.url}] }\n`,
  )
  const run = startBin(['--config', file])
  const proxy = await run.waitFor((l) => l.msg === 'listening' && l.listener === 'proxy')
  const agent = new Agent({ connections: 40 })
  t.teardown(() => agent.close())
  // Warm the keep-alive connections, then have 40 requests in flight at the upstream when SIGTERM lands.
  await Promise.all(
    Array.from({ length: 40 }, () =>
      request(`http://${proxy.address}/`, { dispatcher: agent }).then((r) => r.body.dump()),
    ),
  )
  const before = up.seen.length
  const inflight = Array.from({ length: 40 }, () =>
    request(`http://${proxy.address}/`, { dispatcher: agent }).then(async (r) => ({
      status: r.statusCode,
      connection: r.headers.connection,
      body: await r.body.text(),
    })),
  )
  while (up.seen.length < before + 40) await new Promise((r) => setTimeout(r, 5))
  run.child.kill('SIGTERM')
  const results = await Promise.all(inflight)
  t.equal(
    results.filter((r) => r.status === 200 && r.body === 'done').length,
    40,
    'every accepted request completed',
  )
  t.ok(
    results.every((r) => r.connection === 'close'),
    'answers during the drain close their connection',
  )
  t.equal(await run.exit, 0)
  await t.rejects(request(`http://${proxy.address}/`), 'no longer accepting')
})

t.test('demo starts, routes, honours the override and stops on SIGINT', async (t) => {
  const run = startBin(['demo', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'])
  const banner = await run.waitFor(
    (l) => typeof l.text === 'string' && l.text.startsWith('Turnout demo: proxy'),
  )
  const url = /proxy (http:\/\/\S+)/.exec(String(banner.text))![1]!
  const forced = await request(`${url}/hello`, { headers: { 'x-canary': 'always' } })
  t.equal(forced.headers['x-turnout-variant'], 'canary')
  t.match(await forced.body.json(), { service: 'canary', path: '/hello' })
  let canary = 0
  for (let i = 0; i < 200; i++) {
    const r = await request(`${url}/`)
    if (r.headers['x-turnout-variant'] === 'canary') canary++
    await r.body.dump()
  }
  t.ok(canary > 0 && canary < 60, `about 10% canary: ${canary}/200`)
  await run.waitFor((l) => typeof l.text === 'string' && l.text.includes('npx autocannon'))
  run.child.kill('SIGINT')
  t.equal(await run.exit, 0)
})
