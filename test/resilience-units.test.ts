// The pure parts of keeping traffic flowing when endpoints fail: ejection decisions, status ranges,
// retry reasons, the retry budget and backoff, active-check hysteresis, the failover choice, the
// rollout health check and the balancer's usable-endpoint pick.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { shouldFailOver } from '../src/proxy/choose-endpoint.js'
import { healthOutcome } from '../src/rollout/analysis.js'
import { Balancer, Endpoint } from '../src/upstream/endpoint.js'
import { EndpointHealth, recordCheck, VariantHealth } from '../src/upstream/health.js'
import {
  ejectionMs,
  isEjected,
  MAX_EJECTION_FACTOR,
  mayEject,
  newOutlierState,
  recordFailure,
  recordSuccess,
} from '../src/upstream/outlier.js'
import {
  backoffMs,
  budgetAllows,
  compileRetry,
  DEFAULT_RETRY,
  replayable,
  retryReasonForError,
  retryReasonForStatus,
} from '../src/upstream/retry.js'
import { parseStatusRanges, statusInRanges } from '../src/upstream/status-ranges.js'

const CFG = { enabled: true, consecutiveFailures: 3, baseEjectionTime: 1000, maxEjectionPercent: 50 }

t.test('outlier: consecutiveFailures in a row eject; a success in between resets the streak', async (t) => {
  const s = newOutlierState()
  t.notOk(recordFailure(s, CFG, 0, 0, 2))
  t.notOk(recordFailure(s, CFG, 0, 0, 2))
  recordSuccess(s)
  t.notOk(recordFailure(s, CFG, 0, 0, 2))
  t.notOk(recordFailure(s, CFG, 0, 0, 2))
  t.ok(recordFailure(s, CFG, 100, 0, 2), 'third in a row ejects')
  t.equal(s.ejectedUntil, 1100)
  t.equal(s.ejections, 1)
  t.ok(isEjected(s, 1099), 'ejected until its time passes')
  t.notOk(recordFailure(s, CFG, 1099, 0, 2), 'failures while ejected do not eject again')
  t.notOk(isEjected(s, 1100), 'back at its time')
  t.ok(s.probation, 'on probation')
  t.ok(recordFailure(s, CFG, 2000, 0, 2), 'one failure on probation ejects again')
  t.equal(s.ejectedUntil, 2000 + 2 * 1000, 'for twice as long (second ejection)')
  t.notOk(isEjected(s, 4000))
  recordSuccess(s)
  t.notOk(s.probation, 'a success ends probation')
  t.notOk(recordFailure(s, CFG, 5000, 0, 2), 'so one failure no longer ejects')
})

t.test('outlier: maxEjectionPercent caps ejections, but one can always be ejected', async (t) => {
  t.ok(mayEject(0, 1, 50), 'a single endpoint can be ejected')
  t.ok(mayEject(0, 2, 50))
  t.notOk(mayEject(1, 2, 50), 'not a second of two at 50%')
  t.ok(mayEject(1, 2, 100))
  t.ok(mayEject(0, 3, 0), 'one always can, even at 0%')
  t.notOk(mayEject(1, 3, 0))
  t.ok(mayEject(2, 10, 30))
  t.notOk(mayEject(3, 10, 30))
  const s = newOutlierState()
  for (let i = 0; i < 5; i++) t.notOk(recordFailure(s, CFG, 0, 1, 2), 'capped: never ejected')
  t.notOk(recordFailure(s, { ...CFG, enabled: false }, 0, 0, 2), 'disabled: never ejected')
  t.equal(ejectionMs(1000, 1), 1000)
  t.equal(ejectionMs(1000, 3), 3000)
  t.equal(ejectionMs(1000, 50), 1000 * MAX_EJECTION_FACTOR, 'capped multiplier')
})

t.test('EndpointHealth.record ejects through its variant group and counts ejections', async (t) => {
  const group = new VariantHealth('r', 'primary')
  group.outlier = CFG
  const a = new EndpointHealth('r', 'primary', 'http://a', group)
  const b = new EndpointHealth('r', 'primary', 'http://b', group)
  group.members = [a, b]
  t.ok(a.usable() && b.usable() && group.hasUsable())
  for (let i = 0; i < 2; i++) t.notOk(a.record(false))
  t.ok(a.record(false), 'ejected at the third failure')
  t.notOk(a.usable())
  for (let i = 0; i < 3; i++) t.notOk(b.record(false), 'b is not ejected: 50% of two is one')
  t.ok(b.usable())
  t.equal(group.ejectionsTotal, 1)
  b.down = true
  t.notOk(group.hasUsable(), 'ejected + down: nothing usable')
})

t.test('status ranges', async (t) => {
  t.same(parseStatusRanges('200-399'), [[200, 399]])
  t.same(parseStatusRanges(204), [[204, 204]])
  t.same(parseStatusRanges('200, 204,300-302'), [
    [200, 200],
    [204, 204],
    [300, 302],
  ])
  t.same(parseStatusRanges([200, '500-503']), [
    [200, 200],
    [500, 503],
  ])
  for (const bad of ['', 'ok', '399-200', '99', '600', '200-', 42, [], '2000']) {
    t.equal(parseStatusRanges(bad as never), null, `${JSON.stringify(bad)} is refused`)
  }
  const r = parseStatusRanges('200-299,304')!
  t.ok(statusInRanges(200, r))
  t.ok(statusInRanges(304, r))
  t.notOk(statusInRanges(301, r))
  t.notOk(statusInRanges(500, r))
})

t.test('retry reasons, budget and backoff', async (t) => {
  t.equal(retryReasonForError(DEFAULT_RETRY, 'reset'), 'reset', 'no retry: block: resets only')
  t.equal(retryReasonForError(DEFAULT_RETRY, 'connect'), null)
  t.equal(retryReasonForStatus(DEFAULT_RETRY, 503), null)
  const p = compileRetry(
    parseConfig(
      JSON.stringify({ routes: [{ name: 'a', primary: { endpoints: ['http://127.0.0.1:1'] }, retry: {} }] }),
    ).routes[0]!.retry,
  )
  t.match(p, {
    attempts: 2,
    onConnect: true,
    onReset: true,
    onGateway: true,
    on5xx: false,
    budget: 20,
    backoff: 25,
  })
  t.equal(p.maxBodyBytes, 64 * 1024)
  t.equal(retryReasonForError(p, 'connect'), 'connect-failure')
  t.equal(retryReasonForError(p, 'timeout'), 'gateway-error')
  t.equal(retryReasonForError(p, 'protocol'), null)
  t.equal(retryReasonForStatus(p, 502), 'gateway-error')
  t.equal(retryReasonForStatus(p, 500), null)
  t.equal(retryReasonForStatus(p, 404), null)
  const q = compileRetry({ attempts: 3, on: ['5xx', 500], budget: 10, backoff: 0, maxBodyBytes: 0 })
  t.equal(retryReasonForStatus(q, 500), '500', 'a listed status names itself')
  t.equal(retryReasonForStatus(q, 501), '5xx')
  t.equal(retryReasonForError(q, 'protocol'), '5xx')
  t.equal(q.perTryTimeout, null)

  t.ok(budgetAllows(2, 0, 20), 'at least 3 retries in flight')
  t.notOk(budgetAllows(3, 10, 20))
  t.ok(budgetAllows(9, 50, 20), '20% of 50 is 10')
  t.notOk(budgetAllows(10, 50, 20))
  t.notOk(budgetAllows(3, 100, 0), 'a 0% budget still allows the minimum only')

  t.equal(
    backoffMs(0, 3, () => 0.5),
    0,
  )
  t.equal(
    backoffMs(25, 1, () => 0.5),
    25,
  )
  t.equal(
    backoffMs(25, 2, () => 0.5),
    50,
    'doubles per retry',
  )
  t.equal(
    backoffMs(25, 3, () => 0),
    50,
    'jitter down to half',
  )
  t.equal(
    backoffMs(25, 1, () => 0.999),
    37,
    'and up to one and a half',
  )

  t.ok(replayable('GET', 'none'))
  t.notOk(replayable('POST', 'none'))
  t.notOk(replayable('PUT', 'streamed'))
  t.ok(replayable('POST', 'buffered'))
})

t.test('active checks: thresholds in a row, both ways', async (t) => {
  const h = { down: false, checkPasses: 0, checkFailures: 0 }
  const th = { unhealthyThreshold: 2, healthyThreshold: 3 }
  t.notOk(recordCheck(h, false, th))
  t.notOk(recordCheck(h, true, th), 'a pass breaks the failure streak')
  t.notOk(recordCheck(h, false, th))
  t.ok(recordCheck(h, false, th), 'two failures in a row: down')
  t.ok(h.down)
  t.notOk(recordCheck(h, false, th))
  t.notOk(recordCheck(h, true, th))
  t.notOk(recordCheck(h, true, th))
  t.ok(recordCheck(h, true, th), 'three passes in a row: up')
  t.notOk(h.down)
})

t.test('failover choice: only weighted and sticky canary traffic, only with failover on', async (t) => {
  t.ok(shouldFailOver('canary', 'weight', true))
  t.ok(shouldFailOver('canary', 'sticky', true))
  t.notOk(shouldFailOver('canary', 'override', true), 'explicit overrides never fail over')
  t.notOk(shouldFailOver('canary', 'weight', false))
  t.notOk(shouldFailOver('primary', 'weight', true), 'the primary has nowhere to go')
})

t.test('rollout health check', async (t) => {
  t.equal(healthOutcome(0, true), null, 'a fine canary adds no outcome')
  t.match(healthOutcome(4, true), { check: 'health', result: 'fail', value: 4 })
  t.match(healthOutcome(0, false), { check: 'health', result: 'fail', value: 0 }, 'none usable now')
})

t.test('balancer: usable endpoints only, any endpoint when none is usable', async (t) => {
  const pool = {} as never
  const group = new VariantHealth('r', 'primary')
  const eps = ['a', 'b', 'c'].map(
    (n) =>
      new Endpoint(`http://${n}`, `http://${n}`, n, '', pool, new EndpointHealth('r', 'primary', n, group)),
  )
  group.members = eps.map((e) => e.health)
  for (const balance of ['round-robin', 'least-request'] as const) {
    const b = new Balancer(eps, balance, group)
    eps[1]!.health.ejectedUntil = Date.now() + 60_000
    const picked = new Set(Array.from({ length: 12 }, () => b.pickUsable()!.address))
    t.same([...picked].sort(), ['a', 'c'], `${balance}: the ejected endpoint gets nothing`)
    t.equal(b.other(eps[0]!).address, 'c', 'a retry skips the ejected endpoint')
    eps[0]!.health.down = true
    eps[2]!.health.down = true
    t.equal(b.pickUsable(), null)
    t.ok(b.pick(), 'pick() still answers (panic mode, the mirror)')
    eps[0]!.health.down = false
    eps[2]!.health.down = false
    eps[1]!.health.ejectedUntil = 0
  }
  const lone = new Balancer([new Endpoint('http://x', 'http://x', 'x', '', pool)], 'round-robin')
  t.equal(lone.other(lone.endpoints[0]!), lone.endpoints[0], 'one endpoint: retried on itself')
  t.equal(lone.health.members.length, 1)
})
