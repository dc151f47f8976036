// Rollout webhooks against a real hook server: gates block and release, pre-rollout/rollout failures
// count, rollback aborts, events see every transition, a hanging hook is cut at its timeout.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { callWebhook } from '../src/rollout/webhooks.js'
import { startLoad, until } from './helpers/load.js'
import { type ConfigObject, startSampleShop } from './helpers/turnout.js'

/** A hook server: each path answers the status set in `answers` (default 200), or never with 'hang'. */
async function hookServer(t: Test) {
  const answers = new Map<string, number | 'hang'>()
  const received: Array<{ path: string; body: Record<string, unknown> }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      received.push({ path, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') })
      const answer = answers.get(path) ?? 200
      if (answer === 'hang') return
      res.writeHead(answer, { 'content-type': 'text/plain' })
      res.end('ok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, answers, received, count: (path: string) => received.filter((r) => r.path === path).length }
}

async function setup(t: Test, rollout: ConfigObject) {
  const { turnout, canary } = await startSampleShop(t, { rollout })
  const load = startLoad(turnout.url, { workers: 3 })
  t.teardown(() => load.stop())
  return { turnout, canary, controller: turnout.rollouts.get('shop')! }
}

t.test('a hook call: 2xx is yes; anything else, or no answer within the timeout, is no', async (t) => {
  const hooks = await hookServer(t)
  hooks.answers.set('/no', 503)
  hooks.answers.set('/hang', 'hang')
  const payload = { route: 'r', phase: 'progressing', step: 0, weight: 5, reason: 'x', analysis: [] }
  const yes = await callWebhook({ type: 'rollout', url: `${hooks.url}/yes`, timeout: 2000 }, payload)
  t.same(yes, { name: `${hooks.url}/yes`, type: 'rollout', ok: true, status: 200, error: null })
  const no = await callWebhook({ type: 'rollout', url: `${hooks.url}/no`, timeout: 2000, name: 'n' }, payload)
  t.same([no.ok, no.status, no.name], [false, 503, 'n'])
  const hang = await callWebhook({ type: 'rollout', url: `${hooks.url}/hang`, timeout: 150 }, payload)
  t.same([hang.ok, hang.status, hang.error], [false, null, 'no answer within 150ms'])
  const refused = await callWebhook({ type: 'rollout', url: 'http://127.0.0.1:1', timeout: 2000 }, payload)
  t.same([refused.ok, refused.status], [false, null])
  t.same(hooks.received[0]!.body, payload, 'the payload is the rollout state')
})

t.test('gates block and release; events see every transition', async (t) => {
  const hooks = await hookServer(t)
  hooks.answers.set('/confirm-rollout', 403)
  hooks.answers.set('/confirm-promotion', 'hang')
  const { controller } = await setup(t, {
    steps: [20, 40],
    interval: '200ms',
    minRequests: 5,
    analysis: [{ metric: 'errorRate', max: '5%' }],
    webhooks: [
      { type: 'confirm-rollout', url: `${hooks.url}/confirm-rollout` },
      { type: 'confirm-traffic-increase', url: `${hooks.url}/confirm-traffic-increase` },
      { type: 'confirm-promotion', url: `${hooks.url}/confirm-promotion`, timeout: '100ms' },
      { type: 'event', url: `${hooks.url}/event` },
      { type: 'post-rollout', url: `${hooks.url}/post-rollout` },
    ],
  })
  controller.start()
  t.equal(controller.phase, 'waiting')
  t.ok(await until(() => hooks.count('/confirm-rollout') >= 3), 'asked again each interval')
  t.same([controller.status().phase, controller.status().weight], ['waiting', 0], 'held while closed')
  t.match(controller.status().reason, /confirm-rollout webhook .* answered 403/)

  hooks.answers.set('/confirm-rollout', 200)
  t.ok(
    await until(() => controller.status().weight === 40),
    'released, then through the traffic-increase gate',
  )
  t.ok(hooks.count('/confirm-traffic-increase') >= 1)
  t.ok(await until(() => hooks.count('/confirm-promotion') >= 3), 'the promotion gate is asked each interval')
  t.same([controller.phase, controller.status().weight], ['waiting', 40], 'a hanging gate stays closed')
  t.match(controller.status().reason, /confirm-promotion webhook .* no answer within 100ms/)

  hooks.answers.set('/confirm-promotion', 200)
  t.ok(await until(() => controller.phase === 'succeeded'), 'promoted once released')
  t.ok(await until(() => hooks.count('/post-rollout') === 1), 'post-rollout told once')
  await until(() =>
    hooks.received.filter((r) => r.path === '/event').some((r) => r.body.phase === 'succeeded'),
  )
  const events = hooks.received.filter((r) => r.path === '/event').map((r) => r.body)
  t.same(Object.keys(events[0]!).sort(), ['analysis', 'phase', 'reason', 'route', 'step', 'weight'])
  t.same(
    events.map((e) => `${e.phase}@${e.weight}`).filter((v, i, all) => all.indexOf(v) === i),
    ['waiting@0', 'progressing@20', 'progressing@40', 'waiting@40', 'promoting@100', 'succeeded@100'],
    'every transition, step advances included',
  )
  t.equal(events.at(-1)!.route, 'shop')
})

t.test('a failing pre-rollout hook fails the interval; failureLimit aborts', async (t) => {
  const hooks = await hookServer(t)
  hooks.answers.set('/pre', 500)
  const { controller } = await setup(t, {
    steps: [20],
    interval: '150ms',
    failureLimit: 2,
    webhooks: [{ type: 'pre-rollout', url: `${hooks.url}/pre` }],
  })
  controller.start()
  t.ok(await until(() => controller.phase === 'aborted'))
  t.equal(hooks.count('/pre'), 2, 'asked once per interval until the limit')
  t.same([controller.status().weight, controller.status().failures], [0, 2])
  t.match(controller.status().reason, /pre-rollout webhook .* answered 500 before the first step/)
})

t.test('a failing rollout hook fails the interval even when the analysis passes', async (t) => {
  const hooks = await hookServer(t)
  hooks.answers.set('/check', 502)
  const { controller } = await setup(t, {
    steps: [20],
    interval: '300ms',
    minRequests: 1,
    failureLimit: 1,
    analysis: [{ metric: 'errorRate', max: '50%' }],
    webhooks: [{ type: 'rollout', url: `${hooks.url}/check` }],
  })
  controller.start()
  t.ok(await until(() => controller.phase === 'aborted'))
  t.match(controller.status().reason, /rollout webhook .* answered 502 at 20%/)
  t.equal(controller.status().analysis[0]!.result, 'pass')
})

t.test('a rollback hook answering 2xx aborts the rollout', async (t) => {
  const hooks = await hookServer(t)
  hooks.answers.set('/rollback', 404)
  const { controller } = await setup(t, {
    steps: [20, 50],
    interval: '150ms',
    minRequests: 1_000_000,
    webhooks: [{ type: 'rollback', url: `${hooks.url}/rollback` }],
  })
  controller.start()
  t.ok(await until(() => hooks.count('/rollback') >= 2), 'asked each interval')
  t.equal(controller.phase, 'progressing', `a non-2xx answer changes nothing (${controller.status().reason})`)
  hooks.answers.set('/rollback', 200)
  t.ok(await until(() => controller.phase === 'aborted'))
  t.equal(controller.status().weight, 0)
  t.match(controller.status().reason, /rollback webhook .* answered 200: rollback requested/)
})
