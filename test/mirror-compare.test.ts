import t from 'tap'
import { type CapturedResponse, ResponseCapture } from '../src/mirror/capture.js'
import { type CompareOptions, compareResponses, MAX_DIFFS, parsePath } from '../src/mirror/compare.js'
import { DiffRing } from '../src/mirror/diff-ring.js'
import { diffKey, NoiseClassifier } from '../src/mirror/noise.js'

const cfg: CompareOptions = { status: true, headers: ['etag', 'x-version'], body: true, ignore: [] }

function capture(
  status: number,
  headers: Record<string, string>,
  body: string | Buffer,
  max = 1024,
  chunkSize = 7,
): CapturedResponse {
  const c = new ResponseCapture(max)
  c.head(status, Object.entries(headers).flat(), cfg.headers)
  const buf = typeof body === 'string' ? Buffer.from(body) : body
  for (let i = 0; i < buf.length; i += chunkSize) c.chunk(buf.subarray(i, i + chunkSize))
  return c.finish()
}

const JSON_CT = { 'Content-Type': 'application/json; charset=utf-8' }

t.test('capture keeps status, wanted headers (any case, repeats joined) and the body', async (t) => {
  const c = new ResponseCapture(100)
  c.head(
    201,
    ['ETag', '"a"', 'Content-Type', 'text/plain', 'X-Version', '1', 'x-version', '2', 'Server', 's'],
    ['etag', 'x-version'],
  )
  c.chunk(Buffer.from('hello '))
  c.chunk(Buffer.from('world'))
  const r = c.finish()
  t.equal(r.status, 201)
  t.strictSame(r.headers, { etag: '"a"', 'x-version': '1, 2' })
  t.equal(r.contentType, 'text/plain')
  t.equal(r.body?.toString(), 'hello world')
  t.equal(r.truncated, false)
  t.equal(c.finish(), r, 'finish is idempotent')
})

t.test('capture past maxBodyBytes drops the body and marks it truncated', async (t) => {
  const exact = capture(200, {}, 'x'.repeat(20), 20)
  t.equal(exact.truncated, false)
  t.equal(exact.body?.length, 20)
  const over = capture(200, {}, 'x'.repeat(21), 20)
  t.equal(over.truncated, true)
  t.equal(over.body, null)
  const empty = capture(204, {}, '', 0)
  t.equal(empty.truncated, false)
  t.equal(empty.body?.length, 0)
})

t.test('identical responses: no diffs, classified match', async (t) => {
  const body = JSON.stringify({ id: 1, items: [{ a: 1 }, { a: 2 }], name: 'x' })
  const a = capture(200, { ...JSON_CT, ETag: 'v1' }, body)
  const b = capture(200, { ...JSON_CT, ETag: 'v1' }, body, 1024, 3)
  const diffs = compareResponses(a, b, cfg)
  t.strictSame(diffs, [])
  t.equal(new NoiseClassifier().classify(diffs), 'match')
})

t.test('status, header and JSON field changes are reported as mismatches', async (t) => {
  const a = capture(
    200,
    { ...JSON_CT, ETag: 'v1', 'X-Version': '1' },
    '{"price":10,"items":[{"id":1}],"a":{"b":true}}',
  )
  const b = capture(
    500,
    { ...JSON_CT, ETag: 'v2' },
    '{"price":12,"items":[{"id":1},{"id":2}],"a":{"c":null}}',
  )
  const diffs = compareResponses(a, b, cfg)
  t.strictSame(diffs, [
    { field: 'status', path: 'status', primary: 200, canary: 500 },
    { field: 'header', path: 'etag', primary: 'v1', canary: 'v2' },
    { field: 'header', path: 'x-version', primary: '1', canary: undefined },
    { field: 'body', path: '$.price', primary: 10, canary: 12 },
    { field: 'body', path: '$.items[1]', primary: undefined, canary: { id: 2 } },
    { field: 'body', path: '$.a.b', primary: true, canary: undefined },
    { field: 'body', path: '$.a.c', primary: undefined, canary: null },
  ])
  const noise = new NoiseClassifier()
  noise.recordCanary(diffs.map(diffKey))
  t.equal(noise.classify(diffs), 'mismatch')
  t.strictSame(noise.mismatchFields(diffs), ['status', 'header', 'body'])
})

t.test('status/headers/body can be switched off', async (t) => {
  const a = capture(200, { ETag: 'v1' }, 'a')
  const b = capture(404, { ETag: 'v2' }, 'b')
  t.strictSame(compareResponses(a, b, { status: false, headers: [], body: false, ignore: [] }), [])
})

t.test('ignored JSON paths are not reported (prefix match on segments)', async (t) => {
  const a = capture(200, JSON_CT, '{"generatedAt":1,"items":[{"id":"a","n":1}],"meta":{"x":1},"metadata":1}')
  const b = capture(200, JSON_CT, '{"generatedAt":2,"items":[{"id":"b","n":2}],"meta":{"x":2},"metadata":2}')
  const ignore = ['$.generatedAt', '$.items[0].id', '$.meta']
  const diffs = compareResponses(a, b, { ...cfg, ignore })
  t.strictSame(
    diffs.map((d) => d.path),
    ['$.items[0].n', '$.metadata'],
  )
  t.strictSame(compareResponses(a, b, { ...cfg, ignore: ['$'] }), [], '$ ignores the whole body')
  t.strictSame(parsePath('$.items[0].id'), ['items', 0, 'id'])
  t.equal(parsePath('items'), null)
})

t.test('JSON compares structurally: key order and whitespace do not matter', async (t) => {
  const a = capture(200, { 'Content-Type': 'application/problem+json' }, '{"a":1,"b":[1,2]}')
  const b = capture(200, {}, '\n { "b": [1, 2.0], "a": 1 }\n')
  t.strictSame(compareResponses(a, b, cfg), [])
  const odd = capture(200, JSON_CT, '{"a.b":1}')
  const odd2 = capture(200, JSON_CT, '{"a.b":2}')
  t.strictSame(
    compareResponses(odd, odd2, cfg).map((d) => d.path),
    ['$["a.b"]'],
  )
})

t.test('non-JSON bodies are compared by digest', async (t) => {
  const a = capture(200, { 'Content-Type': 'text/html' }, '<p>hello</p>')
  t.strictSame(compareResponses(a, capture(200, { 'Content-Type': 'text/html' }, '<p>hello</p>'), cfg), [])
  const diffs = compareResponses(a, capture(200, { 'Content-Type': 'text/html' }, '<p>hellO</p>'), cfg)
  t.equal(diffs.length, 1)
  t.equal(diffs[0]!.field, 'body')
  t.equal(diffs[0]!.path, '$')
  t.match(diffs[0]!.primary, /^sha256:[0-9a-f]{16} \(12 bytes\) <p>hello<\/p>$/)
  t.match(diffs[0]!.canary, /^sha256:[0-9a-f]{16} \(12 bytes\) <p>hellO<\/p>$/)
  t.not(diffs[0]!.primary, diffs[0]!.canary)
  // JSON on one side only, and a content-type claiming JSON that does not parse, fall back to bytes
  const j = capture(200, JSON_CT, '{"a":1}')
  t.equal(compareResponses(j, capture(200, JSON_CT, '{"a":1'), cfg)[0]?.path, '$')
  const bin = compareResponses(
    capture(200, {}, Buffer.from([0, 1, 2])),
    capture(200, {}, Buffer.from([0, 1, 3])),
    cfg,
  )
  t.match(bin[0]?.primary, /^sha256:[0-9a-f]{16} \(3 bytes\)$/, 'no preview for binary bodies')
  const utf8 = compareResponses(capture(200, {}, `a${'é'.repeat(200)}`), capture(200, {}, 'b'), cfg)
  t.match(
    utf8[0]?.primary,
    /^sha256:[0-9a-f]{16} \(401 bytes\) aé{79}$/,
    'a character cut by the preview is dropped',
  )
})

t.test('truncated bodies compare only status and headers', async (t) => {
  const a = capture(200, { ETag: 'v1' }, 'a'.repeat(50), 10)
  const b = capture(200, { ETag: 'v1' }, 'b'.repeat(50), 10)
  t.equal(a.truncated, true)
  t.strictSame(compareResponses(a, b, cfg), [])
  const c = capture(200, { ETag: 'v1' }, 'b', 10)
  t.strictSame(compareResponses(a, c, cfg), [], 'one side truncated: body not compared either')
  t.strictSame(
    compareResponses(a, capture(503, { ETag: 'v1' }, 'b'.repeat(50), 10), cfg).map((d) => d.field),
    ['status'],
  )
})

t.test('values are trimmed and diffs capped', async (t) => {
  const long = 'x'.repeat(5000)
  const a = capture(200, JSON_CT, JSON.stringify({ s: long, o: { big: long } }), 100_000)
  const b = capture(200, JSON_CT, JSON.stringify({ s: `${long}y`, o: 1 }), 100_000)
  const diffs = compareResponses(a, b, cfg)
  t.equal(diffs.length, 2)
  for (const d of diffs) t.ok(JSON.stringify(d).length < 600, `${d.path} is small`)
  t.equal(typeof diffs[1]!.primary, 'string', 'a long object becomes trimmed JSON text')
  const many = (v: number) =>
    JSON.stringify(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, v])))
  t.equal(
    compareResponses(capture(200, JSON_CT, many(1), 10_000), capture(200, JSON_CT, many(2), 10_000), cfg)
      .length,
    MAX_DIFFS,
  )
})

t.test('deeply nested JSON does not overflow the stack', async (t) => {
  const depth = 100_000
  const a = capture(200, JSON_CT, `${'['.repeat(depth)}1${']'.repeat(depth)}`, 1_000_000, 65536)
  const b = capture(200, JSON_CT, `${'['.repeat(depth)}2${']'.repeat(depth)}`, 1_000_000, 65536)
  const diffs = compareResponses(a, b, cfg)
  t.equal(diffs.length, 1)
  t.equal(diffs[0]!.primary, 1)
  t.ok(diffs[0]!.path.length <= 201, 'path trimmed')
  const whole = compareResponses(a, capture(200, JSON_CT, '2'), cfg)
  t.strictSame(whole, [{ field: 'body', path: '$', primary: '[unserialisable]', canary: 2 }])
})

t.test('a field differing on every call is noise once primary pairs show it differing', async (t) => {
  const noise = new NoiseClassifier(50)
  let n = 0
  const response = (price: number) =>
    capture(200, JSON_CT, JSON.stringify({ requestId: `r${n++}`, price }), 1024)
  const canaryDiffs = () => {
    const d = compareResponses(response(10), response(10), cfg)
    noise.recordCanary(d.map(diffKey))
    return d
  }
  const pair = () => noise.recordPrimaryPair(compareResponses(response(10), response(10), cfg).map(diffKey))

  const first = canaryDiffs()
  t.strictSame(
    first.map((d) => d.path),
    ['$.requestId'],
  )
  t.equal(noise.classify(first), 'mismatch', 'no primary-pair evidence yet')
  pair()
  pair()
  t.equal(noise.classify(canaryDiffs()), 'mismatch', 'two pairs are not enough')
  pair()
  t.equal(noise.classify(canaryDiffs()), 'noise')
  t.strictSame(noise.mismatchFields(canaryDiffs()), [])

  // A regression in a stable field is still a mismatch, even alongside the noisy one
  const reg = compareResponses(response(10), response(12), cfg)
  noise.recordCanary(reg.map(diffKey))
  t.strictSame(
    reg.map((d) => d.path),
    ['$.requestId', '$.price'],
  )
  t.equal(noise.classify(reg), 'mismatch')
  t.strictSame(noise.mismatchFields(reg), ['body'])
})

t.test('noise needs pair differences at least half as often as canary differences', async (t) => {
  const noise = new NoiseClassifier(100)
  const key = 'body:$.cache'
  for (let i = 0; i < 100; i++) noise.recordCanary([key])
  for (let i = 0; i < 100; i++) noise.recordPrimaryPair(i < 10 ? [key] : [])
  t.equal(noise.isNoise(key), false, '10% among primaries vs 100% against canary')
  for (let i = 0; i < 50; i++) noise.recordPrimaryPair([key]) // window slides: now 50 of the last 100
  t.equal(noise.isNoise(key), true)
  for (let i = 0; i < 100; i++) noise.recordPrimaryPair([]) // old pair evidence slides out
  t.equal(noise.isNoise(key), false)
  t.equal(noise.classify([{ field: 'body', path: '$.cache', primary: 1, canary: 2 }]), 'mismatch')
})

t.test('noise classifier memory is bounded by maxPaths', async (t) => {
  const noise = new NoiseClassifier(10, 2)
  for (let i = 0; i < 3; i++) noise.recordPrimaryPair(['a', 'b', 'c'])
  t.equal(noise.isNoise('a'), true)
  t.equal(noise.isNoise('c'), false, 'a third distinct key is not counted')
})

t.test('diff ring is bounded and lists newest first', async (t) => {
  const ring = new DiffRing('shop', 3)
  t.strictSame(ring.list(), { route: 'shop', diffs: [] })
  for (let i = 0; i < 5; i++) {
    ring.record({
      time: 1000 + i,
      method: 'GET',
      path: `/api/x?y=${i}`,
      fields: [{ field: 'body', path: '$.price', primary: i, canary: i + 1 }],
      classification: i === 4 ? 'noise' : 'mismatch',
    })
  }
  const list = ring.list()
  t.equal(ring.size, 3)
  t.strictSame(
    list.diffs.map((d) => d.path),
    ['/api/x?y=4', '/api/x?y=3', '/api/x?y=2'],
  )
  t.strictSame(JSON.parse(JSON.stringify(list)).diffs[0], {
    time: 1004,
    method: 'GET',
    path: '/api/x?y=4',
    fields: [{ field: 'body', path: '$.price', primary: 4, canary: 5 }],
    classification: 'noise',
  })
  const partial = new DiffRing('shop', 3)
  partial.record({ time: 1, method: 'GET', path: '/a', fields: [], classification: 'mismatch' })
  partial.record({ time: 2, method: 'GET', path: '/b', fields: [], classification: 'mismatch' })
  t.strictSame(
    partial.list().diffs.map((d) => d.path),
    ['/b', '/a'],
  )
})

t.test('the ring redacts authorization, cookie and set-cookie', async (t) => {
  const ring = new DiffRing('shop')
  ring.record({
    time: 1,
    method: 'GET',
    path: '/login?cookie=abc&x=1',
    fields: [
      { field: 'header', path: 'set-cookie', primary: 'sid=secret1', canary: 'sid=secret2' },
      { field: 'header', path: 'authorization', primary: 'Bearer s3', canary: undefined },
      { field: 'header', path: 'etag', primary: 'v1', canary: 'v2' },
      { field: 'body', path: '$.headers.Authorization', primary: 'Bearer s4', canary: 'Bearer s5' },
      { field: 'body', path: '$.echo', primary: { cookie: 'c=s6', ok: 1 }, canary: 'Cookie: c=s7' },
    ],
    classification: 'mismatch',
  })
  const text = JSON.stringify(ring.list())
  t.notMatch(text, /secret|s3|s4|s5|s6|s7|abc/)
  const fields = ring.list().diffs[0]!.fields
  t.strictSame(fields[0], {
    field: 'header',
    path: 'set-cookie',
    primary: '[redacted]',
    canary: '[redacted]',
  })
  t.strictSame(fields[1], {
    field: 'header',
    path: 'authorization',
    primary: '[redacted]',
    canary: undefined,
  })
  t.strictSame(fields[2], { field: 'header', path: 'etag', primary: 'v1', canary: 'v2' })
  t.strictSame(fields[4]!.primary, { cookie: '[redacted]', ok: 1 })
  t.equal(fields[4]!.canary, 'Cookie: [redacted]')
  t.equal(ring.list().diffs[0]!.path, '/login?cookie=[redacted]&x=1')
})

t.test('compare redacts sensitive keys inside long object values before trimming', async (t) => {
  const big = { authorization: 'Bearer topsecret', pad: 'p'.repeat(400) }
  const diffs = compareResponses(
    capture(200, JSON_CT, JSON.stringify({ h: big }), 10_000),
    capture(200, JSON_CT, '{"h":1}'),
    cfg,
  )
  t.equal(typeof diffs[0]!.primary, 'string')
  t.notMatch(String(diffs[0]!.primary), /topsecret/)
})
