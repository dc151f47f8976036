// The admin API (/api/routes...) and the CLI over it, against an in-process Turnout with a token.
import { pino } from 'pino'
import t from 'tap'
import { request } from 'undici'
import { startTurnout } from '../src/app.js'
import { main } from '../src/cli/main.js'
import { ConfigError, parseConfig } from '../src/config/load.js'
import { memoryLogger, rawExchange, startProxy } from './helpers/turnout.js'
import { startSampleUpstreams } from './helpers/upstream.js'

const TOKEN = 'test-token-0123456789'

t.test('admin API and CLI', async (t) => {
  const { primary, canary } = await startSampleUpstreams(t)
  const { logger, lines } = memoryLogger()
  const turnout = await startProxy(
    t,
    {
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      routes: [
        {
          name: 'shop',
          match: { pathPrefix: '/shop' },
          primary: { endpoints: [primary.url] },
          canary: { endpoints: [canary.url] },
          split: { canary: 5, sticky: { header: 'x-user' } },
          overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
          rollout: { steps: [10, 50], interval: '1h' },
        },
        { name: 'static', primary: { endpoints: [primary.url] } },
      ],
    },
    { logger },
  )
  const api = async (method: string, path: string, opts: { body?: string; token?: string | null } = {}) => {
    const token = opts.token === undefined ? TOKEN : opts.token
    const res = await request(`${turnout.adminUrl}${path}`, {
      method: method as 'GET',
      headers: {
        ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: opts.body,
    })
    const text = await res.body.text()
    return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> }
  }
  const refusals = () => lines.filter((l) => l.msg === 'admin request refused: missing or wrong token').length

  t.test('token: missing or wrong → 401 and one log line each; right → 200; health stays open', async (t) => {
    const missing = await api('GET', '/api/routes', { token: null })
    t.equal(missing.status, 401)
    t.equal(missing.body.error, 'unauthorized')
    t.equal(refusals(), 1, 'one log line')
    const wrong = await api('POST', '/api/routes/shop/rollout/abort', { token: `${TOKEN}x` })
    t.equal(wrong.status, 401)
    t.equal(refusals(), 2, 'one more log line')
    t.equal(turnout.rollouts.status('shop')!.phase, 'idle', 'the refused call did nothing')
    t.equal((await api('GET', '/api/routes')).status, 200)
    t.equal(refusals(), 2)
    t.equal((await api('GET', '/healthz', { token: null })).status, 200)
  })

  t.test('GET /api/routes and /api/routes/NAME', async (t) => {
    const all = await api('GET', '/api/routes')
    const routes = all.body.routes as Array<Record<string, unknown>>
    t.same(
      routes.map((r) => r.name),
      ['shop', 'static'],
    )
    const shop = await api('GET', '/api/routes/shop')
    t.same(shop.body, routes[0], 'the same ROUTE object')
    t.same(Object.keys(shop.body), ['name', 'split', 'overrides', 'mirror', 'rollout', 'endpoints'])
    t.match(shop.body, {
      name: 'shop',
      split: { canary: 5, sticky: { header: 'x-user' } },
      overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' }],
      mirror: null,
      rollout: { phase: 'idle', step: 0, weight: 5, failures: 0, reason: 'not started', analysis: [] },
    })
    t.same(Object.keys(shop.body.rollout as object), [
      'phase',
      'step',
      'weight',
      'failures',
      'reason',
      'analysis',
    ])
    t.same(routes[1], {
      name: 'static',
      split: { canary: 0, sticky: null },
      overrides: [],
      mirror: null,
      rollout: null,
      endpoints: {
        primary: [(routes[1] as { endpoints: { primary: unknown[] } }).endpoints.primary[0]],
        canary: null,
      },
    })
    t.match((routes[1] as { endpoints: { primary: unknown[] } }).endpoints.primary[0], {
      usable: true,
      ejectedUntil: null,
      ejections: 0,
      down: null,
      inFlight: 0,
    })
    t.match(await api('GET', '/api/routes/nope'), { status: 404, body: { field: 'name' } })
  })

  t.test('PUT weight: sets the live weight; bad bodies are 400 naming the field', async (t) => {
    const ok = await api('PUT', '/api/routes/shop/weight', { body: '{"canary": 25}' })
    t.equal(ok.status, 200)
    t.equal((ok.body.split as { canary: number }).canary, 25)
    t.equal(turnout.holder.current.byName.get('shop')!.weight.canary, 25, 'live now')
    const bad: Array<[string, string, number, string]> = [
      ['/api/routes/shop/weight', '{"canary": ', 400, 'body'],
      ['/api/routes/shop/weight', '[25]', 400, 'body'],
      ['/api/routes/shop/weight', '{"canary": 101}', 400, 'canary'],
      ['/api/routes/shop/weight', '{"canary": -1}', 400, 'canary'],
      ['/api/routes/shop/weight', '{"canary": "25"}', 400, 'canary'],
      ['/api/routes/shop/weight', '{"weight": 25}', 400, 'canary'],
      ['/api/routes/static/weight', '{"canary": 5}', 400, 'canary'],
      ['/api/routes/nope/weight', '{"canary": 5}', 404, 'name'],
    ]
    for (const [path, body, status, field] of bad) {
      const res = await api('PUT', path, { body })
      t.equal(res.status, status, `${path} ${body}`)
      t.equal(res.body.field, field, `${path} ${body} names ${field}`)
      t.type(res.body.error, 'string')
    }
    t.equal(turnout.holder.current.byName.get('shop')!.weight.canary, 25, 'unchanged by the bad calls')
    t.equal((await api('PUT', '/api/routes/static/weight', { body: '{"canary": 0}' })).status, 200)
  })

  t.test('a malformed percent-encoding in the path is a 400 bad_request, not a 500', async (t) => {
    for (const path of ['/api/routes/%E0%A4%A', '/api/routes/%zz/weight', '/api/%']) {
      const res = await api('GET', path)
      t.equal(res.status, 400, path)
      t.equal(res.body.error, 'bad_request', path)
      t.type(res.body.message, 'string')
    }
    // Over a raw socket too: the same answer, and the connection stays usable.
    const raw = await rawExchange(
      turnout.adminUrl,
      `GET /api/routes/%E0%A4%A HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\n\r\n` +
        `GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    )
    t.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/)
    t.match(raw, /"error":"bad_request"/)
    t.match(raw, /HTTP\/1\.1 200 OK[\s\S]*"status":"ok"/, 'the next request on the connection is answered')
    t.notMatch(raw, /internal_error/)
    t.equal((await api('GET', '/api/routes/shop')).status, 200, 'the admin server still works')
  })

  t.test('POST rollout actions; a manual weight pauses a running rollout', async (t) => {
    const start = await api('POST', '/api/routes/shop/rollout/start')
    t.equal(start.status, 200)
    t.match(start.body.rollout, { phase: 'progressing', step: 0, weight: 10 })
    t.match(await api('POST', '/api/routes/shop/rollout/start'), { status: 409, body: { field: 'phase' } })
    const manual = await api('PUT', '/api/routes/shop/weight', { body: '{"canary": 30}' })
    t.match(manual.body.rollout, { phase: 'paused', weight: 30 })
    t.match((await api('POST', '/api/routes/shop/rollout/resume')).body.rollout, {
      phase: 'progressing',
      weight: 10,
    })
    t.match((await api('POST', '/api/routes/shop/rollout/pause')).body.rollout, { phase: 'paused' })
    t.match((await api('POST', '/api/routes/shop/rollout/promote')).body.rollout, {
      phase: 'promoting',
      weight: 100,
    })
    t.match((await api('POST', '/api/routes/shop/rollout/abort')).body.rollout, {
      phase: 'aborted',
      weight: 0,
    })
    t.match(await api('POST', '/api/routes/shop/rollout/explode'), { status: 404, body: { field: 'action' } })
    t.match(await api('POST', '/api/routes/static/rollout/start'), {
      status: 409,
      body: { field: 'rollout' },
    })
    t.match(await api('POST', '/api/routes/nope/rollout/start'), { status: 404, body: { field: 'name' } })
    t.equal((await api('DELETE', '/api/routes/shop/weight')).status, 405)
  })

  t.test('CLI: status, set-weight, rollout; errors exit 1, bad usage 2', async (t) => {
    const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const out: string[] = []
      const err: string[] = []
      const code = await main(argv, {
        out: (s) => out.push(s),
        err: (s) => err.push(s),
        env: { TURNOUT_ADMIN: turnout.adminUrl, TURNOUT_TOKEN: TOKEN, ...env },
      })
      return { code, out: out.join('\n'), err: err.join('\n') }
    }
    const status = await run(['status'])
    t.equal(status.code, 0)
    const rows = status.out.split('\n').map((l) => l.split(/\s{2,}/))
    t.same(rows[0], ['ROUTE', 'WEIGHT', 'PHASE', 'STEP'])
    t.same(rows[1], ['shop', '0%', 'aborted', '2'])
    t.same(rows[2], ['static', '0%', '-', '-'])
    const json = await run(['status', '--json'])
    t.same(JSON.parse(json.out), (await api('GET', '/api/routes')).body, '--json prints the API JSON')

    const set = await run(['set-weight', 'shop', '40', '--admin', turnout.adminUrl, '--token', TOKEN], {
      TURNOUT_ADMIN: 'http://127.0.0.1:1',
      TURNOUT_TOKEN: 'wrong',
    })
    t.equal(set.code, 0, 'flags win over the environment')
    t.match(set.out, /route shop: canary weight 40%/)
    t.equal(turnout.holder.current.byName.get('shop')!.weight.canary, 40)
    const started = await run(['rollout', 'start', 'shop'])
    t.equal(started.code, 0)
    t.match(started.out, /rollout progressing at step 0/)

    const conflict = await run(['rollout', 'start', 'shop'])
    t.equal(conflict.code, 1)
    t.match(conflict.err, /already progressing.*\(field: phase\) \[HTTP 409\]/)
    t.match(await run(['set-weight', 'nope', '5']), { code: 1, err: /no route named "nope"/ })
    t.match(await run(['status'], { TURNOUT_TOKEN: 'wrong-token-0123456789' }), {
      code: 1,
      err: /401.*wrong token/,
    })
    t.match(await run(['status'], { TURNOUT_TOKEN: '' }), { code: 1, err: /401.*missing token/ })
    t.match(await run(['status', '--admin', 'http://127.0.0.1:1']), {
      code: 1,
      err: /cannot reach the admin API/,
    })
    t.match(await run(['set-weight', 'shop', '140']), { code: 2, err: /from 0 to 100/ })
    t.match(await run(['set-weight', 'shop']), { code: 2 })
    t.match(await run(['rollout', 'explode', 'shop']), {
      code: 2,
      err: /start\|pause\|resume\|promote\|abort/,
    })
    t.match(await run(['status', '--frobnicate']), { code: 2 })
    t.match(await run(['status', '--admin', 'ftp://x']), { code: 2 })
  })
})

t.test('a non-loopback admin listener without a token is a startup error naming admin.token', async (t) => {
  const config = parseConfig(
    JSON.stringify({
      listen: '127.0.0.1:0',
      admin: { listen: '0.0.0.0:0' },
      routes: [{ name: 'r', primary: { endpoints: ['http://127.0.0.1:1'] } }],
    }),
    'test.yaml',
  )
  const err = await startTurnout({ config, logger: pino({ level: 'silent' }) }).then(
    async (turnout) => {
      await turnout.close()
      return null
    },
    (e: unknown) => e,
  )
  t.type(err, ConfigError)
  t.equal((err as ConfigError).problems[0]!.path, 'admin.token')
  t.match((err as ConfigError).message, /admin\.token: is required when admin\.listen \(0\.0\.0\.0:0\)/)
})
