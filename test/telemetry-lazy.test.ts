// The OpenTelemetry SDK is loaded only when tracing is on: a child process starts and stops the
// built Turnout (dist/, as the CLI tests use it) with NODE_DEBUG=module, which logs every CommonJS
// module Node loads (the @opentelemetry packages are CommonJS). prom-client loads
// @opentelemetry/api for exemplars either way; the SDK packages are what tracing adds.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SDK = /load "[^"]*node_modules\/@opentelemetry\/(core|sdk-trace|resources|exporter-trace-otlp-[a-z]+)\//

const SCRIPT = `
const { startTurnout } = await import('./dist/app.js')
const { parseConfig } = await import('./dist/config/load.js')
const { pino } = await import('pino')
const config = parseConfig(JSON.stringify({
  listen: '127.0.0.1:0',
  admin: { listen: '127.0.0.1:0' },
  routes: [{ name: 'r', primary: { endpoints: ['http://127.0.0.1:9'] } }],
}), 'test')
const turnout = await startTurnout({ config, logger: pino({ level: 'silent' }), env: JSON.parse(process.argv[1]) })
process.stdout.write('tracing=' + (turnout.config.tracing?.enabled ?? 'unset') + '\\n')
await turnout.close()
`

function sdkModulesLoaded(env: Record<string, string>): { loaded: string[]; stdout: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT, JSON.stringify(env)], {
    cwd: ROOT,
    env: { ...process.env, NODE_DEBUG: 'module' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr.slice(-2000)}`)
  const loaded = new Set<string>()
  for (const line of r.stderr.split('\n')) {
    const m = SDK.exec(line)
    if (m) loaded.add(m[1]!)
  }
  return { loaded: [...loaded].sort(), stdout: r.stdout }
}

t.test('tracing off: no SDK module is loaded', async (t) => {
  const { loaded, stdout } = sdkModulesLoaded({})
  t.match(stdout, /tracing=unset/, 'the child started and stopped Turnout')
  t.same(loaded, [])
})

t.test('tracing on: the SDK is loaded', async (t) => {
  const { loaded } = sdkModulesLoaded({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    OTEL_EXPORTER_OTLP_TIMEOUT: '300',
  })
  t.same(loaded, ['core', 'exporter-trace-otlp-http', 'exporter-trace-otlp-proto', 'resources', 'sdk-trace'])
})
