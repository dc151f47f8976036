// `turnout health`: the Docker HEALTHCHECK. It follows the config's admin.listen and sends the token
// when admin.protectHealth is on, so a config that moves or protects the admin listener still works.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { startTurnout } from '../src/app.js'
import { healthUrl } from '../src/cli/health.js'
import { main } from '../src/cli/main.js'
import { parseConfig } from '../src/config/load.js'
import { freePort } from './helpers/upstream.js'

function capture(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env }, out, err }
}

const configText = (adminPort: number, token: string) =>
  JSON.stringify({
    listen: '127.0.0.1:0',
    admin: { listen: `127.0.0.1:${adminPort}`, token, protectHealth: true },
    accessLog: { enabled: false },
    routes: [{ name: 'a', primary: { endpoints: ['http://127.0.0.1:9'] } }],
  })

t.test('healthy through a protected admin listener on a non-default port', async (t) => {
  const port = await freePort()
  const dir = t.testdir({})
  const file = join(dir, 'turnout.json')
  writeFileSync(file, configText(port, 'a-long-enough-secret-token-0123456789'))
  const turnout = await startTurnout({
    config: parseConfig(configText(port, 'a-long-enough-secret-token-0123456789')),
    logger: pino({ level: 'silent' }),
  })
  t.teardown(() => turnout.close())

  const ok = capture({ TURNOUT_CONFIG: file })
  t.equal(await main(['health'], ok.io), 0, `exit 0 (${ok.err.join(' ')})`)
  t.same(ok.out, [`healthy: http://127.0.0.1:${port}/healthz`])

  const wrong = join(dir, 'wrong.json')
  writeFileSync(wrong, configText(port, 'another-secret-token-that-is-long-enough'))
  const refused = capture()
  t.equal(await main(['health', '--config', wrong], refused.io), 1, 'a wrong token is unhealthy')
  t.match(refused.err.join('\n'), /answered 401/)
})

t.test('nothing listening, bad usage, invalid config', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'turnout.json')
  writeFileSync(file, configText(await freePort(), 'a-long-enough-secret-token-0123456789'))
  const down = capture()
  t.equal(await main(['health', '-c', file, '--timeout', '1000'], down.io), 1)
  t.match(down.err.join('\n'), /unhealthy: http:\/\/127\.0\.0\.1:\d+\/healthz: ECONNREFUSED/)
  t.equal(await main(['health'], capture().io), 2, 'no config: usage error')
  t.equal(await main(['health', '-c', file, '--timeout', 'soon'], capture().io), 2)
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'routes: 3\n')
  const invalid = capture()
  t.equal(await main(['health', '-c', bad], invalid.io), 1, 'an invalid config is reported')
  t.match(invalid.err.join('\n'), /bad\.yaml:1:\d+: routes/)
})

t.test('a wildcard admin bind is asked on loopback', async (t) => {
  const at = (listen: string) =>
    healthUrl(
      parseConfig(
        JSON.stringify({
          admin: { listen, token: 'x'.repeat(32) },
          routes: [{ name: 'a', primary: { endpoints: ['http://127.0.0.1:9'] } }],
        }),
      ),
    )
  t.equal(at('0.0.0.0:9902'), 'http://127.0.0.1:9902/healthz')
  t.equal(at('[::]:9902'), 'http://[::1]:9902/healthz')
  t.equal(at('127.0.0.1:9901'), 'http://127.0.0.1:9901/healthz')
})
