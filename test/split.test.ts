// The split decision is pure: tested with plain request views and a seeded random source.
import t from 'tap'
import { type DecideDeps, decide, type SplitPolicy } from '../src/routing/decide.js'
import { BUCKETS, bucketIsCanary, stickyBucket } from '../src/routing/hash.js'
import { hostMatches, normalizeHost, pathMatches } from '../src/routing/match-route.js'
import { compileMatcher } from '../src/routing/matcher.js'
import { type RequestView, readCookie } from '../src/routing/request-view.js'
import { mulberry32 } from './helpers/random.js'

function view(headers: Record<string, string> = {}, cookies = ''): RequestView {
  return {
    host: 'shop.example.com',
    path: '/',
    method: 'GET',
    header: (n) => headers[n],
    cookie: (n) => readCookie(cookies, n),
  }
}

const deps = (seed = 1): DecideDeps => ({ random: mulberry32(seed), newId: () => 'generated-id' })
const plain: SplitPolicy = { hasCanary: true, overrides: [], sticky: null }

t.test('weighted split: 20,000 requests at 10% land within 10 ± 1 %', async (t) => {
  const d = deps(42)
  let canary = 0
  for (let i = 0; i < 20_000; i++) if (decide(plain, 10, view(), d).variant === 'canary') canary++
  const share = (canary / 20_000) * 100
  t.ok(share >= 9 && share <= 11, `canary share ${share}%`)
  t.equal(decide(plain, 0, view(), d).variant, 'primary', '0% never goes to canary')
  for (let i = 0; i < 100; i++) t.equal(decide(plain, 100, view(), d).variant, 'canary')
  t.equal(decide(plain, 10, view(), d).reason, 'weight')
})

t.test('real Math.random split stays within bounds too', async (t) => {
  let canary = 0
  const d: DecideDeps = { random: Math.random, newId: () => 'x' }
  for (let i = 0; i < 20_000; i++) if (decide(plain, 10, view(), d).variant === 'canary') canary++
  // ±1% is ~4.7 sigma at n=20,000, p=0.1: a false failure is about one in a million runs.
  t.ok(canary >= 1800 && canary <= 2200, `canary ${canary} of 20000`)
})

t.test(
  'sticky: the same key always decides the same way; raising the weight only moves users to canary',
  async (t) => {
    const policy: SplitPolicy = {
      hasCanary: true,
      overrides: [],
      sticky: { source: 'header', name: 'x-user-id', assign: false },
    }
    const users = Array.from({ length: 5000 }, (_, i) => `user-${i}`)
    const at5 = users.map((u) => decide(policy, 5, view({ 'x-user-id': u }), deps()).variant)
    const at50 = users.map((u) => decide(policy, 50, view({ 'x-user-id': u }), deps()).variant)
    let moved = 0
    let back = 0
    users.forEach((_, i) => {
      if (at5[i] === 'canary' && at50[i] === 'primary') back++
      if (at5[i] === 'primary' && at50[i] === 'canary') moved++
    })
    t.equal(back, 0, 'nobody moves from canary back to primary')
    t.ok(moved > 2000, `users moved to canary: ${moved}`)
    const share5 = at5.filter((v) => v === 'canary').length / users.length
    t.ok(share5 > 0.03 && share5 < 0.07, `sticky share at 5%: ${share5}`)
    for (const u of users.slice(0, 50)) {
      const a = decide(policy, 25, view({ 'x-user-id': u }), deps(1))
      const b = decide(policy, 25, view({ 'x-user-id': u }), deps(2))
      t.equal(a.variant, b.variant, 'independent of randomness')
      t.equal(a.reason, 'sticky')
    }
  },
)

t.test(
  'sticky by cookie; a missing key falls back to the random split; assign generates an id',
  async (t) => {
    const byCookie: SplitPolicy = {
      hasCanary: true,
      overrides: [],
      sticky: { source: 'cookie', name: 'session', assign: false },
    }
    const d = decide(byCookie, 50, view({}, 'a=1; session=abc; z=2'), deps())
    t.equal(d.reason, 'sticky')
    t.equal(d.variant, bucketIsCanary(stickyBucket('abc'), 50) ? 'canary' : 'primary')
    t.equal(decide(byCookie, 50, view(), deps()).reason, 'weight', 'no cookie: weighted')

    const assign: SplitPolicy = {
      hasCanary: true,
      overrides: [],
      sticky: { source: 'cookie', name: 'turnout-id', assign: true },
    }
    const a = decide(assign, 50, view(), deps())
    t.equal(a.assignedId, 'generated-id')
    t.equal(a.reason, 'sticky')
    t.equal(
      a.variant,
      bucketIsCanary(stickyBucket('generated-id'), 50) ? 'canary' : 'primary',
      'the new id decides at once',
    )
    t.equal(
      decide(assign, 50, view({}, 'turnout-id=known'), deps()).assignedId,
      null,
      'an existing cookie is kept',
    )
  },
)

t.test('overrides are checked before the split, in order', async (t) => {
  const policy: SplitPolicy = {
    hasCanary: true,
    sticky: { source: 'header', name: 'x-user-id', assign: false },
    overrides: [
      { match: compileMatcher({ header: 'x-canary', equals: 'always' }), to: 'canary' },
      { match: compileMatcher({ cookie: 'beta', equals: '1' }), to: 'canary' },
      { match: compileMatcher({ header: 'x-canary', matches: '^nev' }), to: 'primary' },
    ],
  }
  t.same(decide(policy, 0, view({ 'x-canary': 'always' }), deps()), {
    variant: 'canary',
    reason: 'override',
    assignedId: null,
  })
  t.equal(decide(policy, 0, view({}, 'beta=1'), deps()).variant, 'canary')
  t.same(decide(policy, 100, view({ 'x-canary': 'never' }), deps()), {
    variant: 'primary',
    reason: 'override',
    assignedId: null,
  })
  t.equal(decide(policy, 100, view({ 'x-canary': 'sometimes' }), deps()).reason, 'weight')
})

t.test('a route without canary endpoints always serves primary', async (t) => {
  const none: SplitPolicy = { hasCanary: false, overrides: [], sticky: null }
  t.equal(decide(none, 100, view(), deps()).variant, 'primary')
})

t.test('buckets are spread over [0, 10000)', async (t) => {
  const counts = new Array(10).fill(0)
  let outside = 0
  for (let i = 0; i < 50_000; i++) {
    const b = stickyBucket(`k${i}`)
    if (!(Number.isInteger(b) && b >= 0 && b < BUCKETS)) outside++
    else counts[Math.floor(b / 1000)]++
  }
  t.equal(outside, 0)
  for (const c of counts) t.ok(c > 4500 && c < 5500, `decile count ${c}`)
})

t.test('host and path matching', async (t) => {
  t.ok(hostMatches(['shop.example.com'], 'shop.example.com'))
  t.ok(hostMatches(['*.example.org'], 'a.example.org'))
  t.ok(hostMatches(['*.example.org'], 'a.b.example.org'))
  t.notOk(hostMatches(['*.example.org'], 'example.org'), 'the apex is not a subdomain')
  t.notOk(hostMatches(['*.example.org'], 'badexample.org'))
  t.equal(normalizeHost('Shop.Example.COM:8080'), 'shop.example.com')
  t.equal(normalizeHost('[::1]:8080'), '[::1]')
  t.equal(normalizeHost(undefined), '')
  t.ok(pathMatches('/api', '/api'))
  t.ok(pathMatches('/api', '/api/x'))
  t.ok(pathMatches('/api/', '/api/x'))
  t.notOk(pathMatches('/api', '/apix'))
  t.ok(pathMatches('/', '/anything'))
  t.equal(readCookie('a=1; b="quoted"; c=3', 'b'), 'quoted')
  t.equal(readCookie('a=1', 'z'), undefined)
})
