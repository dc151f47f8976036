import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { pino } from 'pino'
import t from 'tap'
import { request } from 'undici'
import { parse as parseYaml } from 'yaml'
import { startTurnout } from '../src/app.js'
import {
  address,
  configFromFlags,
  flagsToConfigObject,
  ROUTE_FLAG_OPTIONS,
  type RouteFlags,
  routeFlagsGiven,
  upstreamUrl,
} from '../src/cli/flags.js'
import { HELP, main } from '../src/cli/main.js'
import { compile } from '../src/config/compile.js'
import { parseConfig } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import { decide } from '../src/routing/decide.js'
import type { RequestView } from '../src/routing/request-view.js'
import { Pools } from '../src/upstream/pools.js'
import { startSampleUpstreams } from './helpers/upstream.js'

const root = fileURLToPath(new URL('..', import.meta.url))

async function run(argv: string[]): Promise<{ code: number | undefined; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, {
    out: (s) => {
      out += s.endsWith('\n') ? s : `${s}\n`
    },
    err: (s) => {
      err += s.endsWith('\n') ? s : `${s}\n`
    },
    env: {},
  })
  return { code, out, err }
}

function view(headers: Record<string, string>): RequestView {
  return {
    host: 'localhost',
    path: '/',
    method: 'GET',
    header: (name) => headers[name],
    cookie: () => undefined,
  }
}

t.test('shorthands: ports mean 127.0.0.1, URLs stay as given', async (t) => {
  t.equal(upstreamUrl('--primary', ':3000'), 'http://127.0.0.1:3000')
  t.equal(upstreamUrl('--primary', '3000'), 'http://127.0.0.1:3000')
  t.equal(upstreamUrl('--primary', 'localhost:3001'), 'http://localhost:3001')
  t.equal(upstreamUrl('--primary', 'https://api.test/base'), 'https://api.test/base')
  t.equal(upstreamUrl('--canary', 'http://[::1]:3001'), 'http://[::1]:3001')
  t.throws(() => upstreamUrl('--canary', 'ftp://x'), { name: 'FlagError', message: /only http/ })
  t.throws(() => upstreamUrl('--canary', 'http://x:3000/?a=1'), /query string/)
  t.throws(() => upstreamUrl('--canary', ':99999'), /--canary :99999/)

  t.equal(address('--listen', ':8000'), '127.0.0.1:8000')
  t.equal(address('--listen', '8000'), '127.0.0.1:8000')
  t.equal(address('--listen', '0.0.0.0:80'), '0.0.0.0:80')
  t.equal(address('--admin', '[::1]:9901'), '[::1]:9901')
  t.throws(() => address('--listen', 'localhost'), /--listen localhost: expected an address/)
  t.throws(() => address('--listen', ':70000'), { name: 'FlagError' })
})

t.test('flags → the config object a user would write', async (t) => {
  const flags: RouteFlags = {
    primary: [':3000'],
    canary: ['3001', 'http://127.0.0.1:3002'],
    'canary-weight': '20',
    'sticky-header': 'X-User-Id',
    'override-header': ['x-canary=always', 'X-Team=a=b'],
    mirror: '100%',
    'canary-delay': ['300ms@50%'],
    'canary-abort': ['503@5'],
    'primary-delay': ['100ms-900ms@10%'],
    'primary-abort': ['500'],
  }
  t.same(flagsToConfigObject(flags), {
    listen: '127.0.0.1:8080',
    admin: { listen: '127.0.0.1:9901' },
    routes: [
      {
        name: 'default',
        primary: { endpoints: ['http://127.0.0.1:3000'] },
        canary: { endpoints: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] },
        split: { canary: 20, sticky: { header: 'x-user-id' } },
        overrides: [
          { when: { header: 'x-canary', equals: 'always' }, to: 'canary' },
          { when: { header: 'x-team', equals: 'a=b' }, to: 'canary' },
        ],
        mirror: { percent: 100 },
        faults: [
          { variant: 'primary', delay: { min: '100ms', max: '900ms', percent: 10 } },
          { variant: 'primary', abort: { status: 500 } },
          { variant: 'canary', delay: { fixed: '300ms', percent: 50 } },
          { variant: 'canary', abort: { status: 503, percent: 5 } },
        ],
      },
    ],
  })
  // the validated form: units parsed, percent defaults to every request
  const { config } = configFromFlags(flags)
  const route = config.routes[0]!
  t.same(route.faults, [
    { variant: 'primary', delay: { min: 100, max: 900, percent: 10 } },
    { variant: 'primary', abort: { status: 500, percent: 100 } },
    { variant: 'canary', delay: { fixed: 300, percent: 50 } },
    { variant: 'canary', abort: { status: 503, percent: 5 } },
  ])
  t.equal(route.split.canary, 20)

  const minimal = configFromFlags({ primary: ['8081'], listen: ':0', admin: '0' }).config
  t.equal(minimal.listen, '127.0.0.1:0')
  t.equal(minimal.admin.listen, '127.0.0.1:0')
  t.equal(minimal.routes[0]!.canary, undefined)
  t.equal(minimal.routes[0]!.split.canary, 0)
  t.equal(minimal.routes[0]!.faults, undefined)

  t.same(routeFlagsGiven({ config: 'x', primary: [':1'], 'canary-delay': ['1s'], help: false }), [
    '--primary',
    '--canary-delay',
  ])
})

t.test('bad flag values are clear errors with exit code 2', async (t) => {
  const base = ['--primary', ':3000', '--canary', ':3001']
  const cases: Array<[string[], RegExp]> = [
    [[...base, '--canary-weight', '120'], /--canary-weight 120: must be a percentage from 0 to 100/],
    [[...base, '--canary-weight', 'lots'], /--canary-weight lots: must be a percentage/],
    [[...base, '--canary-abort', '99@5%'], /--canary-abort 99@5%: the status must be from 200 to 599/],
    [[...base, '--canary-abort', '503@150%'], /--canary-abort 503@150%: must be a percentage/],
    [[...base, '--primary-abort', '503@5%@1'], /--primary-abort 503@5%@1: expected/],
    [[...base, '--canary-delay', 'abc'], /--canary-delay abc: expected a duration/],
    [[...base, '--canary-delay', '300'], /--canary-delay 300: expected a duration/],
    [[...base, '--primary-delay', '900ms-100ms'], /minimum is above its maximum/],
    [[...base, '--override-header', 'x-canary'], /--override-header x-canary: expected NAME=VALUE/],
    [[...base, '--override-header', 'bad header=1'], /not a valid header name/],
    [[...base, '--sticky-header', 'a b'], /--sticky-header a b: not a valid header name/],
    [[...base, '--mirror', '101'], /--mirror 101: must be a percentage/],
    [[...base, '--listen', 'localhost'], /--listen localhost: expected an address/],
    [['--primary', 'ftp://x'], /--primary ftp:\/\/x: only http/],
    [['--primary', ':3000', '--canary-weight', '20'], /--canary-weight needs --canary/],
    [['--primary', ':3000', '--canary-abort', '503'], /--canary-abort needs --canary/],
    [
      ['--canary', ':3001', '--canary-weight', '20'],
      /--primary URL is required with --canary, --canary-weight/,
    ],
    [
      ['--config', 'x.yaml', '--primary', ':3000', '--canary-weight', '5'],
      /--config cannot be combined with --primary, --canary-weight/,
    ],
    [['-c', 'x.yaml', '--listen', ':8000'], /--config cannot be combined with --listen/],
    [['--print-config'], /--print-config needs route flags/],
    [[...base, '--bogus'], /bogus/],
    [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${NAME} that parseConfig substitutes
      [...base, '--override-header', 'x-a=${TURNOUT_TEST_UNSET}'],
      /invalid config:\n<flags>:\d+:\d+: .*TURNOUT_TEST_UNSET is not set/,
    ],
  ]
  for (const [argv, message] of cases) {
    const r = await run(argv)
    t.equal(r.code, 2, `exit 2: ${argv.join(' ')}`)
    t.match(r.err, message, argv.join(' '))
    t.equal(r.out, '', 'nothing on stdout')
  }
})

t.test('--print-config prints the YAML alone; it validates and means the same config', async (t) => {
  const argv = [
    '--primary',
    ':3000',
    '--canary',
    '3001',
    '--canary-weight',
    '20',
    '--sticky-header',
    'x-user-id',
    '--override-header',
    'x-canary=always',
    '--override-header',
    'x-flag=123',
    '--mirror',
    '100',
    '--canary-delay',
    '300ms@50%',
    '--canary-abort',
    '503@5%',
    '--print-config',
  ]
  const r = await run(argv)
  t.equal(r.code, 0)
  t.equal(r.err, '')
  t.match(r.out, /^# Generated by: turnout --primary :3000 .*--canary-abort 503@5%\n/)
  t.notMatch(r.out.split('\n')[0]!, /--print-config/)
  const doc = parseYaml(r.out) as { routes: Array<{ name: string; overrides: unknown }> }
  t.equal(doc.routes[0]!.name, 'default')
  t.same(
    doc.routes[0]!.overrides,
    [
      { when: { header: 'x-canary', equals: 'always' }, to: 'canary' },
      { when: { header: 'x-flag', equals: '123' }, to: 'canary' },
    ],
    'a numeric-looking header value stays a string',
  )

  const dir = await mkdtemp(join(tmpdir(), 'turnout-flags-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'turnout.yaml')
  await writeFile(file, r.out)
  const v = await run(['validate', file])
  t.equal(v.code, 0)
  t.equal(v.out.trim(), 'ok')

  const flagArgs = argv.filter((a) => a !== '--print-config')
  const fromFlags = configFromFlags({
    primary: [':3000'],
    canary: ['3001'],
    'canary-weight': '20',
    'sticky-header': 'x-user-id',
    'override-header': ['x-canary=always', 'x-flag=123'],
    mirror: '100',
    'canary-delay': ['300ms@50%'],
    'canary-abort': ['503@5%'],
  }).config
  t.same(
    parseConfig(r.out, file, {}),
    fromFlags,
    `the printed file is the config ${flagArgs.length} flag words run`,
  )
})

const EQUIVALENT_YAML = `
listen: 127.0.0.1:8080
admin:
  listen: 127.0.0.1:9901
routes:
  - name: default
    primary:
      endpoints: [http://127.0.0.1:3000]
    canary:
      endpoints: [http://127.0.0.1:3001]
    split:
      canary: 20
      sticky: { header: x-user-id }
    overrides:
      - when: { header: x-canary, equals: always }
        to: canary
    faults:
      - variant: canary
        delay: { fixed: 300ms, percent: 50 }
`

t.test('the flag form and the equivalent YAML are the same config and split the same way', async (t) => {
  const flags: RouteFlags = {
    primary: ['3000'],
    canary: [':3001'],
    'canary-weight': '20',
    'sticky-header': 'x-user-id',
    'override-header': ['x-canary=always'],
    'canary-delay': ['300ms@50%'],
  }
  const fromFlags = configFromFlags(flags).config
  const fromYaml = parseConfig(EQUIVALENT_YAML, 'equivalent.yaml')
  t.same(fromFlags, fromYaml)

  const pools = new Pools()
  t.teardown(() => pools.destroy())
  const a = compile(fromFlags, { pools }).routes[0]!
  const b = compile(fromYaml, { pools }).routes[0]!
  const deps = { random: () => 0.5, newId: () => 'id' }
  let canary = 0
  let same = 0
  const keys = 2000
  for (let i = 0; i < keys; i++) {
    const v = view({ 'x-user-id': `user-${i}` })
    const da = decide(a.policy, a.weight.canary, v, deps)
    const db = decide(b.policy, b.weight.canary, v, deps)
    if (da.variant === db.variant && da.reason === 'sticky' && db.reason === 'sticky') same++
    if (da.variant === 'canary') canary++
  }
  t.equal(same, keys, 'every sticky key gets the same variant from both')
  t.ok(canary > 300 && canary < 500, `${canary} of ${keys} keys on the canary at 20%`)
  const forced = view({ 'x-canary': 'always', 'x-user-id': 'user-1' })
  t.same(decide(a.policy, a.weight.canary, forced, deps), decide(b.policy, b.weight.canary, forced, deps))
  t.equal(decide(a.policy, a.weight.canary, forced, deps).reason, 'override')
})

t.test('a proxy started from flags splits live traffic as the YAML config decides', async (t) => {
  const { primary, canary } = await startSampleUpstreams(t)
  const flags: RouteFlags = {
    primary: [primary.url],
    canary: [canary.url.replace('http://127.0.0.1', '')],
    'canary-weight': '20',
    'sticky-header': 'x-user-id',
    'override-header': ['x-canary=always'],
    listen: ':0',
    admin: ':0',
  }
  const { config, yaml } = configFromFlags(flags)
  const turnout = await startTurnout({ config, logger: pino({ level: 'silent' }) })
  t.teardown(() => turnout.close())

  const yamlConfig: Config = parseConfig(yaml, 'printed.yaml')
  const pools = new Pools()
  t.teardown(() => pools.destroy())
  const expected = compile(yamlConfig, { pools }).routes[0]!
  const deps = { random: () => 0, newId: () => 'id' }
  let mismatches = 0
  let canaryCount = 0
  for (let i = 0; i < 200; i++) {
    const key = `user-${i}`
    const res = await request(`${turnout.url}/api/time`, { headers: { 'x-user-id': key } })
    const body = (await res.body.json()) as { service: string }
    const want = decide(expected.policy, expected.weight.canary, view({ 'x-user-id': key }), deps).variant
    if (body.service !== want || res.headers['x-turnout-variant'] !== want) mismatches++
    if (body.service === 'canary') canaryCount++
  }
  t.equal(mismatches, 0, 'every live answer came from the variant the YAML config decides')
  t.ok(canaryCount > 0 && canaryCount < 200, `${canaryCount} of 200 users on the canary`)
  const forced = await request(`${turnout.url}/`, { headers: { 'x-canary': 'always' } })
  t.equal(((await forced.body.json()) as { service: string }).service, 'canary')
})

t.test('smoke: the built binary prints the config', async (t) => {
  const run = promisify(execFile)
  // dist/ is built by `npm test` (and `npm ci`) before tap runs; rebuilding here would race the
  // other test files that run the binary at the same time.
  t.ok(existsSync(join(root, 'dist', 'cli', 'flags.js')), 'dist/cli/flags.js built')
  const { stdout, stderr } = await run(
    process.execPath,
    [
      join(root, 'bin', 'turnout.js'),
      '--primary',
      ':3000',
      '--canary',
      ':3001',
      '--canary-abort',
      '503@5%',
      '--print-config',
    ],
    { cwd: root, timeout: 30_000 },
  )
  t.equal(stderr, '')
  t.match(stdout, /^# Generated by: turnout --primary :3000 --canary :3001 --canary-abort 503@5%\n/)
  const config = parseConfig(stdout, 'stdout')
  t.same(config.routes[0]!.faults, [{ variant: 'canary', abort: { status: 503, percent: 5 } }])
  t.same(config.routes[0]!.primary.endpoints, ['http://127.0.0.1:3000'])

  const bad = await run(
    process.execPath,
    [join(root, 'bin', 'turnout.js'), '--primary', ':3000', '--canary', ':3001', '--canary-weight', '120'],
    {
      cwd: root,
      timeout: 30_000,
    },
  ).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => err,
  )
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--canary-weight 120/)
})

t.test('--help documents every flag with an example line', async (t) => {
  const r = await run(['--help'])
  t.equal(r.code, 0)
  t.equal(r.out, HELP.endsWith('\n') ? HELP : `${HELP}\n`)
  const lines = HELP.split('\n')
  for (const flag of [...Object.keys(ROUTE_FLAG_OPTIONS), 'print-config', 'config', 'help', 'version']) {
    const at = lines.findIndex((l) => new RegExp(`^\\s+(-\\w, )?--${flag}(?![\\w-])`).test(l))
    t.ok(at >= 0, `--${flag} is documented`)
    const example = lines.slice(at + 1, at + 4).find((l) => l.trim().startsWith('e.g.'))
    t.match(example ?? '', new RegExp(`--${flag}(?![\\w-])`), `--${flag} has an example line`)
  }
})

t.test('config/local-dev.yaml: schema hint first, and turnout validate accepts it', async (t) => {
  const file = join(root, 'config', 'local-dev.yaml')
  const text = await readFile(file, 'utf8')
  t.equal(text.split('\n')[0], '# yaml-language-server: $schema=./turnout.schema.json')
  const r = await run(['validate', file])
  t.equal(r.code, 0)
  t.equal(r.out.trim(), 'ok')
  const route = parseConfig(text, file).routes[0]!
  t.match(route.faults, { allowHeaders: true })
  t.equal(route.split.canary, 20)
})
