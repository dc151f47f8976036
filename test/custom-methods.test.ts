// Custom method tokens (RFC 9110: any token) are forwarded, in order with the other requests on
// the connection; a method that is not a token still gets 400.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net'
import type * as Tap from 'tap'
import t from 'tap'
import { request } from 'undici'
import { findRequestStart, LLHTTP_METHODS } from '../src/server/method-line.js'
import { rawExchange, startProxy } from './helpers/turnout.js'

interface RawSeen {
  method: string
  url: string
  headers: string[]
  body: string
}

/**
 * An upstream that reads requests itself (node:http would refuse custom methods as Turnout's parser
 * does): keep-alive, Content-Length bodies; answers JSON `{method,url}` after `delayFor(url)` ms,
 * in order.
 */
async function rawUpstream(t: Tap.Test, delayFor: (url: string) => number = () => 0) {
  const seen: RawSeen[] = []
  const server = createNetServer((socket) => {
    let buf = Buffer.alloc(0)
    let chain = Promise.resolve()
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const head = buf.indexOf('\r\n\r\n')
        if (head === -1) return
        const lines = buf.toString('latin1', 0, head).split('\r\n')
        const [method = '', url = ''] = lines[0]!.split(' ')
        const headers = lines.slice(1)
        const cl = headers.find((h) => /^content-length:/i.test(h))
        const length = cl ? Number(cl.split(':')[1]) : 0
        if (buf.length < head + 4 + length) return
        const body = buf.toString('latin1', head + 4, head + 4 + length)
        buf = buf.subarray(head + 4 + length)
        seen.push({ method, url, headers, body })
        const text = JSON.stringify({ method, url })
        const wait = delayFor(url)
        chain = chain.then(async () => {
          if (wait > 0) await new Promise((r) => setTimeout(r, wait))
          socket.write(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${text.length}\r\n\r\n${text}`,
          )
        })
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

/** Sends `parts` on one connection, `gapMs` apart, and resolves with everything received. */
async function sendParts(url: string, parts: string[], gapMs = 50, closeAfterMs = 3000): Promise<string> {
  return (await exchange(url, parts, gapMs, closeAfterMs)).out
}

/** The same, also telling whether the server closed the connection before the client gave up. */
function exchange(
  url: string,
  parts: string[],
  gapMs: number,
  closeAfterMs: number,
): Promise<{ out: string; serverClosed: boolean }> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname)
    let out = ''
    let gaveUp = false
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      out += d
    })
    s.on('error', () => {})
    s.on('close', () => resolve({ out, serverClosed: !gaveUp }))
    void (async () => {
      for (const p of parts) {
        s.write(p)
        await new Promise((r) => setTimeout(r, gapMs))
      }
      setTimeout(() => {
        gaveUp = true
        s.end()
      }, closeAfterMs)
    })()
  })
}

/** Writes one request at a time and waits for its whole (content-length) answer before the next. */
async function keepAlive(url: string, requests: string[]): Promise<string[]> {
  const u = new URL(url)
  const s = connect(Number(u.port), u.hostname)
  s.setEncoding('latin1')
  s.on('error', () => {})
  let buf = ''
  const answers: string[] = []
  for (const r of requests) {
    s.write(r)
    const deadline = Date.now() + 10_000
    for (;;) {
      const head = buf.indexOf('\r\n\r\n')
      const m = /content-length: (\d+)/i.exec(buf)
      if (head !== -1 && m && buf.length >= head + 4 + Number(m[1])) {
        const end = head + 4 + Number(m[1])
        answers.push(buf.slice(0, end))
        buf = buf.slice(end)
        break
      }
      if (Date.now() > deadline) throw new Error(`no answer to ${JSON.stringify(r)}: ${JSON.stringify(buf)}`)
      const [d] = (await Promise.race([once(s, 'data'), once(s, 'close')])) as [string?]
      if (d === undefined) throw new Error(`closed before the answer to ${JSON.stringify(r)}`)
      buf += d
    }
  }
  s.destroy()
  return answers
}

t.test('the start finder agrees with the running llhttp on where a method fails', async (t) => {
  const failures: Array<{ at: number; raw: Buffer }> = []
  const server = createServer((_req, res) => res.end())
  server.on('clientError', (err: Error & { bytesParsed?: number; rawPacket?: Buffer }, socket) => {
    failures.push({ at: err.bytesParsed ?? -1, raw: err.rawPacket ?? Buffer.alloc(0) })
    socket.destroy()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const methods = new Set<string>(['BREW', 'X-CUSTOM', 'FOO_BAR', 'get', 'POSTAL', 'MKFOO', 'SUBX', 'GETX'])
  for (const m of LLHTTP_METHODS) {
    if (m === 'PRI' || m === 'CONNECT') continue
    for (let k = 1; k <= m.length; k++) methods.add(`${m.slice(0, k)}~Z`)
  }
  const lead = 'GET /first HTTP/1.1\r\nHost: x\r\n\r\n'
  let checked = 0
  for (const m of methods) {
    for (const before of ['', lead]) {
      failures.length = 0
      await rawExchange(url, `${before}${m} / HTTP/1.1\r\nHost: x\r\n\r\n`, 2000)
      const f = failures[0]
      if (f === undefined || !f.raw.toString('latin1').includes(m)) continue
      t.equal(findRequestStart(f.raw, f.at, false), before.length, `${JSON.stringify(before + m)}`)
      checked++
    }
  }
  t.ok(checked >= 100, `${checked} failing methods located`)
})

t.test('a custom method is forwarded with its name and answered', async (t) => {
  const primary = await rawUpstream(t)
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const out = await rawExchange(turnout.url, 'BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.match(out, /^HTTP\/1.1 200 /, 'the upstream answer reaches the client')
  t.match(out, /"method":"BREW","url":"\/pot"/)
  t.equal(primary.seen.length, 1)
  t.equal(primary.seen[0]!.method, 'BREW', 'the upstream received BREW')
  t.notOk(
    primary.seen[0]!.headers.some((h) => h.toLowerCase().startsWith('x-turnout-method')),
    'the marker header is not forwarded',
  )

  for (const method of ['X-CUSTOM', 'FOO_BAR', 'get']) {
    const res = await rawExchange(
      turnout.url,
      `${method} /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    )
    t.match(res, /^HTTP\/1.1 200 /, `${method} answered`)
  }
  t.same(
    primary.seen.map((s) => s.method),
    ['BREW', 'X-CUSTOM', 'FOO_BAR', 'get'],
    'each method reached the upstream as sent',
  )

  const body = await rawExchange(
    turnout.url,
    'BREW /pot HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
  )
  t.match(body, /^HTTP\/1.1 200 /)
  t.equal(primary.seen.at(-1)!.body, 'hello', 'with its body')
})

t.test('GET, BREW, GET on one keep-alive connection are answered in order', async (t) => {
  const primary = await rawUpstream(t)
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const answers = await keepAlive(turnout.url, [
    'GET /1 HTTP/1.1\r\nHost: x\r\n\r\n',
    'BREW /2 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /3 HTTP/1.1\r\nHost: x\r\n\r\n',
    'X-CUSTOM /4 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /5 HTTP/1.1\r\nHost: x\r\n\r\n',
  ])
  t.same(
    answers.map((a) => /"method":"([^"]+)","url":"([^"]+)"/.exec(a)?.slice(1).join(' ')),
    ['GET /1', 'BREW /2', 'GET /3', 'X-CUSTOM /4', 'GET /5'],
  )
})

t.test('pipelined: custom methods between others, the answers keep request order', async (t) => {
  // The first answer is the slowest: later ones must still wait for it.
  const primary = await rawUpstream(t, (url) => (url === '/1' ? 300 : 0))
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const out = await sendParts(turnout.url, [
    'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nBREW /2 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloFOO_BAR /4 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ])
  const order = [...out.matchAll(/"method":"([^"]+)","url":"([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`)
  t.same(order, ['GET /1', 'BREW /2', 'POST /3', 'FOO_BAR /4', 'GET /5'])
  t.equal(out.split('HTTP/1.1 200 ').length, 6, 'five answers')
})

t.test('a method split across reads after its failing byte is still forwarded', async (t) => {
  const primary = await rawUpstream(t)
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  const out = await sendParts(turnout.url, [
    'BR',
    'EW /p',
    'ot HTTP/1.1\r\nHo',
    'st: x\r\nConnection: close\r\n\r\n',
  ])
  t.match(out, /^HTTP\/1.1 200 /)
  t.equal(primary.seen[0]?.method, 'BREW')
  t.equal(primary.seen[0]?.url, '/pot')
})

t.test('a method that is not a token gets 400 and reaches nothing', async (t) => {
  const primary = await rawUpstream(t)
  const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
  for (const line of [
    'B(EW / HTTP/1.1',
    'BR\x01W / HTTP/1.1',
    'BREW@ / HTTP/1.1',
    `${'X'.repeat(100)} / HTTP/1.1`,
  ]) {
    const out = await rawExchange(turnout.url, `${line}\r\nHost: x\r\n\r\n`)
    t.match(out, /^HTTP\/1.1 400 /, JSON.stringify(line))
  }
  const split = await sendParts(turnout.url, ['BR', 'E(W / HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.match(split, /^HTTP\/1.1 400 /, 'a non-token byte in a later read')
  const after = await rawExchange(
    turnout.url,
    'GET /ok HTTP/1.1\r\nHost: x\r\n\r\nB(EW / HTTP/1.1\r\nHost: x\r\n\r\n',
  )
  t.match(after, /^HTTP\/1.1 200 [\s\S]*HTTP\/1.1 400 /, 'after the answer before it')
  t.equal(primary.seen.length, 1, 'only GET /ok reached the upstream')
  const metrics = await (await request(`${turnout.adminUrl}/metrics`)).body.text()
  t.match(metrics, 'turnout_client_errors_total{kind="bad_request"} 6\n')
})

t.test('after a custom method the connection keeps its keep-alive and header timeouts', async (t) => {
  const primary = await rawUpstream(t)
  const turnout = await startProxy(t, {
    limits: { keepAliveTimeout: '300ms', headersTimeout: '500ms', requestTimeout: '1s' },
    routes: [{ name: 'a', primary: { endpoints: [primary.url] } }],
  })
  const idle = await exchange(turnout.url, ['BREW /idle HTTP/1.1\r\nHost: x\r\n\r\n'], 50, 10_000)
  t.match(idle.out, /^HTTP\/1.1 200 [\s\S]*"method":"BREW"/, 'answered')
  t.ok(idle.serverClosed, 'then closed by the server when idle')
  const slow = await exchange(
    turnout.url,
    ['BREW /a HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: x\r\n'],
    50,
    10_000,
  )
  t.match(slow.out, /^HTTP\/1.1 200 [\s\S]*HTTP\/1.1 408 /, 'a slow header block after it gets 408')
  t.ok(slow.serverClosed, 'and the connection is closed')
})

t.test(
  'when the start of a custom method cannot be told for sure, it gets 400, never a wrong method',
  async (t) => {
    const primary = await rawUpstream(t)
    const turnout = await startProxy(t, { routes: [{ name: 'a', primary: { endpoints: [primary.url] } }] })
    // The body's last bytes "SU" and the method "BX" read like the method "SUBX" after a body "hello".
    const ambiguous = await sendParts(turnout.url, [
      'POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nhelloSUBX /2 HTTP/1.1\r\nHost: x\r\n\r\n',
    ])
    t.match(ambiguous, /^HTTP\/1.1 200 [\s\S]*HTTP\/1.1 400 /, 'the POST is answered, then 400')
    // "B" matches a known method's first byte and is consumed in an earlier read than the failing "R".
    const split = await sendParts(turnout.url, ['B', 'REW /3 HTTP/1.1\r\nHost: x\r\n\r\n'])
    t.match(split, /^HTTP\/1.1 400 /, 'a method split inside a known prefix')
    t.same(
      primary.seen.map((s) => `${s.method} ${s.url}`),
      ['POST /1'],
      'nothing else reached the upstream',
    )
  },
)

t.test(
  'a custom method is not mirrored (only listed methods are, and custom ones need mirror.unsafe)',
  async (t) => {
    const primary = await rawUpstream(t)
    const canary = await rawUpstream(t)
    const turnout = await startProxy(t, {
      routes: [
        { name: 'a', primary: { endpoints: [primary.url] }, canary: { endpoints: [canary.url] }, mirror: {} },
      ],
    })
    const brew = await rawExchange(turnout.url, 'BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.match(brew, /^HTTP\/1.1 200 /)
    // A mirrored GET afterwards: once its copy arrived, a copy of BREW would have too.
    const get = await rawExchange(turnout.url, 'GET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.match(get, /^HTTP\/1.1 200 /)
    const deadline = Date.now() + 10_000
    while (canary.seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    t.same(
      canary.seen.map((s) => `${s.method} ${s.url}`),
      ['GET /g'],
      'only the GET was copied to the canary',
    )
    t.same(
      primary.seen.map((s) => `${s.method} ${s.url}`),
      ['BREW /pot', 'GET /g'],
    )
  },
)
