// The stdout logger as a process sees it: lines are batched (telemetry/logger.ts), so these check that
// batching never loses or splits a line: on exit, on flushLogger, and for a lone line on an idle process.
// Runs dist/telemetry/logger.js in a child process (dist/ is built by `npm test`/`prepare`).
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { until } from './helpers/until.js'

const LOGGER = new URL('../dist/telemetry/logger.js', import.meta.url).href

interface Child {
  child: ChildProcess
  /** Complete stdout lines so far. */
  lines: string[]
  exit: Promise<number | null>
}

function runScript(body: string): Child {
  const script = `import { createLogger, flushLogger } from ${JSON.stringify(LOGGER)}\n${body}`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines: string[] = []
  let rest = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n')
    rest = parts.pop()!
    lines.push(...parts)
  })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return { child, lines, exit }
}

t.test('every line arrives whole when the process exits right after logging', async (t) => {
  const n = 3000
  const run = runScript(`
    const logger = createLogger()
    for (let i = 0; i < ${n}; i++) logger.info({ i, path: '/some/path?with=a&query=string' }, 'request')
    process.exit(0)
  `)
  t.teardown(() => run.child.kill())
  t.equal(await run.exit, 0)
  const parsed = run.lines.map((l) => JSON.parse(l) as { i: number; msg: string })
  t.equal(parsed.length, n, 'one line per log call')
  t.ok(
    parsed.every((l, index) => l.i === index && l.msg === 'request'),
    'in order, none split',
  )
})

t.test('flushLogger resolves after the lines logged before it are written', async (t) => {
  const n = 500
  // The marker goes to the same stdout with a direct write, so it lands after whatever was written.
  const run = runScript(`
    import { writeSync } from 'node:fs'
    const logger = createLogger()
    for (let i = 0; i < ${n}; i++) logger.info({ i }, 'line')
    await flushLogger(logger)
    writeSync(1, 'flushed\\n')
    setInterval(() => {}, 1000)
  `)
  t.teardown(() => run.child.kill())
  await until('the flushed marker', () => run.lines.includes('flushed'))
  t.equal(run.lines.indexOf('flushed'), n, 'every line was written before flushLogger resolved')
})

t.test('a lone line on an otherwise idle process is written without waiting for more', async (t) => {
  const run = runScript(`
    const logger = createLogger()
    logger.info({ listener: 'proxy' }, 'listening')
    setInterval(() => {}, 1000)
  `)
  t.teardown(() => run.child.kill())
  await until('the line', () => run.lines.length > 0)
  t.match(JSON.parse(run.lines[0]!), { msg: 'listening', listener: 'proxy' })
})
