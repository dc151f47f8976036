// The package as a consumer gets it: `npm pack`, install the tarball into a fresh project (the
// registry cache resolves the dependencies), and an ESM script that imports 'turnout', starts it
// from a config object in front of a tiny upstream, sends a request, moves the weight, stops.
// Needs dist/ (`npm test` builds it first). npm install is the slow step: seconds with a warm cache.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const CONSUMER = `
import { createServer } from 'node:http'
import { ConfigError, start, TurnoutApiError } from 'turnout'
const upstream = (name) => new Promise((resolve) => {
  const s = createServer((req, res) => res.end(name)).listen(0, '127.0.0.1', () => resolve(s))
})
const [p, c] = await Promise.all([upstream('primary'), upstream('canary')])
const out = {}
const turnout = await start({
  listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, accessLog: { enabled: false },
  routes: [{ name: 'shop', primary: { endpoints: ['http://127.0.0.1:' + p.address().port] },
             canary: { endpoints: ['http://127.0.0.1:' + c.address().port] } }],
}, { env: { TURNOUT_LOG_LEVEL: 'silent' } })
out.url = turnout.url
out.adminUrl = turnout.adminUrl
out.before = await (await fetch(turnout.url + '/')).text()
out.weight = turnout.setWeight('shop', 100).split.canary
out.after = await (await fetch(turnout.url + '/')).text()
try { turnout.setWeight('nope', 1) } catch (err) { out.unknown = err instanceof TurnoutApiError && err.code }
try { await start({ routes: [] }) } catch (err) { out.invalid = err instanceof ConfigError && err.message }
await turnout.stop()
p.close(); c.close()
console.log(JSON.stringify(out))
`

t.test('npm pack → npm install the tarball → import "turnout"', { timeout: 240_000 }, async (t) => {
  if (!existsSync('dist/index.js')) {
    t.fail('dist/index.js is missing: run `npm run build` (npm test does)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'turnout-pack-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // --ignore-scripts: `prepare` would rebuild dist/ under the other tests that run the binary.
  const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    timeout: 60_000,
  })
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  const files = info!.files.map((f) => f.path)
  t.ok(files.includes('LICENSE'), 'LICENSE is shipped')
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'the entry point and its types')
  // Source maps ship with the sources they point at (so stack traces with --enable-source-maps and
  // coverage of the built CLI both land on src/*.ts); tests do not ship.
  const maps = files.filter((f) => f.endsWith('.map'))
  t.ok(maps.length > 10, `${maps.length} source maps`)
  const missing = maps.flatMap((m) => {
    const { sources } = JSON.parse(readFileSync(m, 'utf8')) as { sources: string[] }
    return sources.map((s) => posix.join(posix.dirname(m), s)).filter((s) => !files.includes(s))
  })
  t.same(missing, [], 'every source a map names is in the package')
  t.notOk(
    files.some((f) => f.startsWith('test/')),
    'no tests',
  )

  const app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), '{"name":"consumer","private":true,"type":"module"}\n')
  writeFileSync(join(app, 'consumer.mjs'), CONSUMER)
  const started = Date.now()
  await run(
    npm,
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', join(dir, info!.filename)],
    { cwd: app, timeout: 180_000 },
  )
  t.comment(`npm install of the tarball took ${Date.now() - started} ms`)
  t.ok(readdirSync(join(app, 'node_modules', 'turnout', 'dist')).includes('index.js'), 'installed')

  const { stdout } = await run(process.execPath, ['consumer.mjs'], { cwd: app, timeout: 60_000 })
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>
  t.match(out.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(out.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(out.before, 'primary', 'weight 0: the primary answered')
  t.equal(out.weight, 100)
  t.equal(out.after, 'canary', 'after setWeight(shop, 100): the canary answered')
  t.equal(out.unknown, 'TURNOUT_ERR_UNKNOWN_ROUTE')
  t.match(out.invalid, /routes: needs at least one route/, 'an invalid config object is a ConfigError')
})
