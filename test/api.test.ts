// The programmatic API (src/index.ts, `import { start } from 'turnout'`): a config object is validated
// like a file, addresses, weights through the admin API's path, reload from a file, stop.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { ConfigError, start, TurnoutApiError, validateConfig } from '../src/index.js'
import { startUpstream } from './helpers/upstream.js'

const quiet = { logger: pino({ level: 'silent' }) }

async function twoUpstreams(t: Test) {
  const primary = await startUpstream('primary')
  const canary = await startUpstream('canary')
  t.teardown(() => Promise.all([primary.close(), canary.close()]))
  return { primary, canary }
}

const shop = (primary: string, canary: string) => ({
  listen: '127.0.0.1:0',
  admin: { listen: '127.0.0.1:0' },
  accessLog: { enabled: false },
  routes: [{ name: 'shop', primary: { endpoints: [primary] }, canary: { endpoints: [canary] } }],
})

t.test('start from an object: addresses, setWeight moves traffic, stop', async (t) => {
  const { primary, canary } = await twoUpstreams(t)
  const turnout = await start(shop(primary.url, canary.url), quiet)
  t.teardown(() => turnout.stop())
  t.match(turnout.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(turnout.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal((await fetch(`${turnout.adminUrl}/healthz`)).status, 200, 'the admin URL answers')
  await (await fetch(`${turnout.url}/a`)).text()
  t.equal(primary.seen.length, 1, 'weight 0: the primary serves')

  const view = turnout.setWeight('shop', 100)
  t.equal(view.split.canary, 100, 'setWeight returns the route view')
  t.equal(turnout.routes()[0]?.split.canary, 100)
  const api = (await (await fetch(`${turnout.adminUrl}/api/routes/shop`)).json()) as {
    split: { canary: number }
  }
  t.equal(api.split.canary, 100, 'the admin API sees the same weight')
  await (await fetch(`${turnout.url}/b`)).text()
  t.equal(canary.seen.length, 1, 'weight 100: the canary serves')

  t.throws(() => turnout.setWeight('nope', 5), { name: 'TurnoutApiError', code: 'TURNOUT_ERR_UNKNOWN_ROUTE' })
  t.throws(() => turnout.setWeight('shop', 101), { code: 'TURNOUT_ERR_INVALID_WEIGHT' })
  t.throws(() => turnout.setWeight('shop', Number.NaN), TurnoutApiError)
  await turnout.stop()
  await t.rejects(fetch(`${turnout.url}/c`), 'stopped: the proxy no longer accepts connections')
})

t.test('a config object is validated by the file schema, every problem at once', async (t) => {
  const err = t.throws(() =>
    validateConfig({ listen: 'nowhere', routes: [{ name: 'Bad Name', primary: { endpoints: [] } }] }),
  ) as ConfigError
  t.ok(err instanceof ConfigError)
  t.match(err.message, /<config>:\d+:\d+: listen: must be an address/)
  t.match(err.message, /routes\[0\]\.name/)
  t.match(err.message, /routes\[0\]\.primary\.endpoints/)
  await t.rejects(start({ routes: 'x' } as never, quiet), ConfigError, 'start rejects it too')
  const big = { toJSON: () => 1n }
  t.throws(() => validateConfig(big), ConfigError, 'an object JSON cannot represent is a ConfigError')
  const ok = validateConfig({ routes: [{ name: 'a', primary: { endpoints: ['http://127.0.0.1:1'] } }] })
  t.equal(ok.admin.listen, '127.0.0.1:9901', 'defaults applied')
})

t.test('start from a file path: reload() re-reads it', async (t) => {
  const { primary, canary } = await twoUpstreams(t)
  const dir = mkdtempSync(join(tmpdir(), 'turnout-api-'))
  const file = join(dir, 'turnout.json')
  writeFileSync(file, JSON.stringify(shop(primary.url, canary.url)))
  const turnout = await start(file, { ...quiet, watch: false })
  t.teardown(() => turnout.stop())
  t.equal(turnout.routes()[0]?.split.canary, 0)
  const next = shop(primary.url, canary.url)
  next.routes[0] = { ...next.routes[0]!, split: { canary: 40 } } as never
  writeFileSync(file, JSON.stringify(next))
  await turnout.reload()
  t.equal(turnout.routes()[0]?.split.canary, 40, 'the reloaded weight is live')
  t.equal(turnout.config.routes[0]?.split.canary, 40)
  await t.rejects(start(join(dir, 'missing.yaml'), quiet), ConfigError, 'a missing file is a ConfigError')
})
