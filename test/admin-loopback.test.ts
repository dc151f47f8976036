// The admin listener's token rule decides on IPs: loopback (127.0.0.0/8, ::1, ::ffff:127.x) needs no
// token; 0.0.0.0, :: and any other address, or a name resolving to one, does. Checked before
// listening (names resolved), after listening (the bound address), in both modes and in validate.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { request } from 'undici'
import { assertAdminToken, checkAdminListen, needsToken } from '../src/admin/token-rule.js'
import { startTurnout } from '../src/app.js'
import { ConfigError, parseConfig } from '../src/config/load.js'
import { isLoopbackIp } from '../src/net/address.js'
import { runBin } from './helpers/spawn.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-admin-loopback-'))
const FAKE_DNS = ['--import', new URL('./helpers/fake-dns.mjs', import.meta.url).href]
const TOKEN = 'loopback-test-token-0123456789'

const configWith = (admin: Record<string, unknown>) =>
  parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      admin,
      accessLog: { enabled: false },
      routes: [{ name: 'r', primary: { endpoints: ['http://127.0.0.1:1'] } }],
    }),
    'test.yaml',
  )

async function startError(admin: Record<string, unknown>): Promise<unknown> {
  return startTurnout({ config: configWith(admin), logger: pino({ level: 'silent' }) }).then(
    async (turnout) => {
      await turnout.close()
      return null
    },
    (e: unknown) => e,
  )
}

t.test('isLoopbackIp and the decision', async (t) => {
  for (const ip of [
    '127.0.0.1',
    '127.0.0.2',
    '127.255.255.254',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
  ])
    t.ok(isLoopbackIp(ip), `${ip} is loopback`)
  for (const ip of [
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '192.0.2.2',
    '128.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:0.0.0.0',
    'fe80::1%eth0',
    'localhost',
    '127.evil.example',
    '',
  ])
    t.notOk(isLoopbackIp(ip), `${JSON.stringify(ip)} is not a loopback IP`)
  t.notOk(needsToken(['127.0.0.1', '::1']))
  t.ok(needsToken(['127.0.0.1', '10.0.0.1']), 'one non-loopback address is enough')
  t.ok(needsToken([]), 'nothing to decide on: a token')
})

t.test('checkAdminListen resolves names (injected resolver)', async (t) => {
  const names: Record<string, string[]> = {
    'lo.test': ['127.0.0.1', '::1'],
    'mixed.test': ['127.0.0.1', '192.0.2.7'],
    'any.test': ['0.0.0.0'],
  }
  const resolver = async (host: string) => {
    const ips = names[host]
    if (ips === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    return ips
  }
  const check = (listen: string, token?: string) =>
    checkAdminListen(configWith({ listen, ...(token ? { token } : {}) }), 'f.yaml', resolver)
  t.same(await check('lo.test:9901'), { kind: 'ok' })
  const mixed = await check('mixed.test:9901')
  t.equal(mixed.kind, 'needs-token')
  t.match(mixed, {
    problem: { path: 'admin.token', message: /mixed\.test resolves to 127\.0\.0\.1, 192\.0\.2\.7/ },
  })
  t.equal((await check('any.test:9901')).kind, 'needs-token', 'a name for 0.0.0.0 needs a token')
  t.equal((await check('any.test:9901', TOKEN)).kind, 'ok', 'with a token anything goes')
  t.same(await check('nowhere.test:9901'), { kind: 'unresolved', host: 'nowhere.test', error: 'ENOTFOUND' })
  t.equal((await check('0.0.0.0:9901')).kind, 'needs-token')
  t.equal((await check('[::ffff:127.0.0.1]:9901')).kind, 'ok')

  const bound = (address: string) => () =>
    assertAdminToken(configWith({ listen: 'x:1' }), 'f.yaml', { address, family: 'IPv4', port: 1 })
  t.throws(bound('0.0.0.0'), ConfigError)
  t.throws(bound('::'), ConfigError)
  t.doesNotThrow(bound('::ffff:127.0.0.1'))
})

t.test('in-process: 0.0.0.0 and :: without a token are refused; 127.0.0.2 and localhost start', async (t) => {
  for (const listen of ['0.0.0.0:0', '[::]:0']) {
    const err = await startError({ listen })
    t.type(err, ConfigError, listen)
    t.equal((err as ConfigError).problems[0]!.path, 'admin.token')
  }
  for (const listen of ['127.0.0.2:0', 'localhost:0']) {
    const turnout = await startTurnout({ config: configWith({ listen }), logger: pino({ level: 'silent' }) })
    t.ok(isLoopbackIp(turnout.adminAddress.address), `${listen} bound to ${turnout.adminAddress.address}`)
    const res = await request(
      `http://${listen.startsWith('127') ? '127.0.0.2' : 'localhost'}:${turnout.adminAddress.port}/healthz`,
    )
    t.equal(res.statusCode, 200)
    await res.body.dump()
    await turnout.close()
  }
  const withToken = await startTurnout({
    config: configWith({ listen: '0.0.0.0:0', token: TOKEN }),
    logger: pino({ level: 'silent' }),
  })
  t.equal(withToken.adminAddress.address, '0.0.0.0', 'with a token 0.0.0.0 is fine')
  await withToken.close()
})

t.test(
  'the binary: a name resolving to 0.0.0.0, single process and cluster, start and validate',
  async (t) => {
    const write = (name: string, admin: string, workers = 1) => {
      const file = join(dir, name)
      writeFileSync(
        file,
        `listen: 127.0.0.1:0\nadmin: { listen: "${admin}" }\nworkers: ${workers}\naccessLog: { enabled: false }\nroutes:\n  - name: r\n    primary: { endpoints: ["http://127.0.0.1:1"] }\n`,
      )
      return file
    }
    const env = {
      TURNOUT_TEST_HOSTS: '127.0.0.1.turnout.test=0.0.0.0;localhost=0.0.0.0;lo.turnout.test=127.0.0.1',
    }
    for (const workers of [1, 2]) {
      const r = await runBin(
        ['--config', write(`any-${workers}.yaml`, '127.0.0.1.turnout.test:0', workers)],
        env,
        FAKE_DNS,
      )
      t.equal(r.code, 1, `workers: ${workers}: refused with the token rule's exit code`)
      t.match(
        r.stderr,
        /admin\.token: is required when admin\.listen \(127\.0\.0\.1\.turnout\.test:0\) is not a loopback address \(127\.0\.0\.1\.turnout\.test resolves to 0\.0\.0\.0\)/,
      )
      t.notMatch(r.stdout, /"listening"/, 'nothing listened')
    }
    // A name is never trusted for its spelling (the old rule took "localhost" and "127.*" names on trust).
    const named = await runBin(['--config', write('localhost.yaml', 'localhost:0')], env, FAKE_DNS)
    t.equal(named.code, 1, 'localhost resolving to 0.0.0.0 is refused')
    t.match(named.stderr, /localhost resolves to 0\.0\.0\.0/)
    // The name changes between the check and the bind: the bound address decides.
    const moved = { ...env, TURNOUT_TEST_LISTEN_HOSTS: 'lo.turnout.test=0.0.0.0' }
    for (const workers of [1, 2]) {
      const r = await runBin(
        ['--config', write(`moved-${workers}.yaml`, 'lo.turnout.test:0', workers)],
        moved,
        FAKE_DNS,
      )
      t.equal(r.code, 1, `workers: ${workers}: refused after binding`)
      t.match(r.stderr, /admin\.token: is required while the admin listener is bound to 0\.0\.0\.0:\d+/)
      t.notMatch(r.stdout, /workers started/)
    }
    const lo = await runBin(['validate', write('lo.yaml', 'lo.turnout.test:9901')], env, FAKE_DNS)
    t.match(lo, { code: 0, stdout: 'ok\n' })
    const any = await runBin(['validate', write('any-v.yaml', 'localhost:9901')], env, FAKE_DNS)
    t.equal(any.code, 1, 'validate refuses what the start would refuse')
    t.match(any.stdout, /any-v\.yaml:1:1: admin\.token: is required .*resolves to 0\.0\.0\.0/)
    const literal = await runBin(['validate', write('zero.yaml', '0.0.0.0:9901')])
    t.equal(literal.code, 1)
    t.match(literal.stdout, /admin\.token: is required when admin\.listen \(0\.0\.0\.0:9901\)/)
    const nowhere = await runBin(['validate', write('nowhere.yaml', 'nowhere.invalid:9901')])
    t.equal(nowhere.code, 0, 'a name that does not resolve here is a warning in validate')
    t.match(nowhere.stderr, /warning: admin\.listen: host nowhere\.invalid does not resolve here/)
  },
)
