// Compares one request's two runs (straight to the echo upstream, and through the proxy) and
// lists every difference as an atom: { side: 'upstream' | 'client', what, name?, direct?, proxy? }.
// Atoms are classified against the known-differences table (known.js); anything unclaimed is new.

export const CLIENT_ADDRESS = '127.0.0.1'
export const VIA = '1.1 turnout'
export const VARIANT = 'primary'

/** Lower-case name → { names: raw names, values } in order of first appearance. */
export function groupHeaders(flat) {
  const map = new Map()
  for (let i = 0; i < flat.length; i += 2) {
    const lower = flat[i].toLowerCase()
    let g = map.get(lower)
    if (!g) {
      g = { names: [], values: [] }
      map.set(lower, g)
    }
    g.names.push(flat[i])
    g.values.push(flat[i + 1])
  }
  return map
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

/** Header atoms: removed, added, changed (value list), case (names only), order (of unchanged names). */
export function diffHeaders(side, directFlat, proxyFlat) {
  const d = groupHeaders(directFlat)
  const p = groupHeaders(proxyFlat)
  const atoms = []
  const unchanged = new Set()
  for (const [name, dg] of d) {
    const pg = p.get(name)
    if (!pg) atoms.push({ side, what: 'header-removed', name, direct: dg.values })
    else if (!same(dg.values, pg.values))
      atoms.push({ side, what: 'header-changed', name, direct: dg.values, proxy: pg.values })
    else {
      unchanged.add(name)
      if (!same(dg.names, pg.names))
        atoms.push({ side, what: 'header-case', name, direct: dg.names, proxy: pg.names })
    }
  }
  for (const [name, pg] of p)
    if (!d.has(name)) atoms.push({ side, what: 'header-added', name, proxy: pg.values })
  const order = (flat) => {
    const out = []
    for (let i = 0; i < flat.length; i += 2)
      if (unchanged.has(flat[i].toLowerCase())) out.push(flat[i].toLowerCase())
    return out
  }
  const dOrder = order(directFlat)
  const pOrder = order(proxyFlat)
  if (!same(dOrder, pOrder)) atoms.push({ side, what: 'header-order', direct: dOrder, proxy: pOrder })
  return atoms
}

function bodyAtom(side, d, p) {
  if (d.equals(p)) return []
  let at = 0
  while (at < d.length && at < p.length && d[at] === p[at]) at++
  return [
    {
      side,
      what: 'body',
      direct: `${d.length} bytes`,
      proxy: `${p.length} bytes, first difference at ${at}`,
    },
  ]
}

function upstreamAtoms(ex) {
  const d = ex.direct.records?.[0]
  const p = ex.proxy.records?.[0]
  if (!d)
    return [
      {
        side: 'upstream',
        what: 'direct-missing',
        direct: ex.direct.result.answer?.status ?? ex.direct.result.error,
      },
    ]
  if (!p)
    return [
      {
        side: 'upstream',
        what: 'not-forwarded',
        proxy: ex.proxy.result.answer?.status ?? ex.proxy.result.error,
      },
    ]
  const atoms = []
  if (ex.proxy.records.length > 1)
    atoms.push({ side: 'upstream', what: 'received-twice', proxy: ex.proxy.records.length })
  if (d.method !== p.method)
    atoms.push({ side: 'upstream', what: 'method', direct: d.method, proxy: p.method })
  if (d.target !== p.target)
    atoms.push({ side: 'upstream', what: 'target', direct: d.target, proxy: p.target })
  atoms.push(...diffHeaders('upstream', d.headers, p.headers))
  atoms.push(...bodyAtom('upstream', d.body, p.body))
  if (!same(d.trailers, p.trailers))
    atoms.push({ side: 'upstream', what: 'trailers', direct: d.trailers, proxy: p.trailers })
  return atoms
}

function clientAtoms(ex) {
  const d = ex.direct.result
  const p = ex.proxy.result
  if (d.error) return [{ side: 'client', what: 'direct-error', direct: d.error }]
  if (p.error) return [{ side: 'client', what: 'error', proxy: p.error }]
  const a = d.answer
  const b = p.answer
  const atoms = []
  const interim = (x) => x.interim.map((i) => i.status).join(',')
  if (interim(a) !== interim(b))
    atoms.push({ side: 'client', what: 'interim', direct: interim(a), proxy: interim(b) })
  if (a.status !== b.status) atoms.push({ side: 'client', what: 'status', direct: a.status, proxy: b.status })
  else if (a.reason !== b.reason)
    atoms.push({ side: 'client', what: 'reason', direct: a.reason, proxy: b.reason })
  atoms.push(...diffHeaders('client', a.headers, b.headers))
  atoms.push(...bodyAtom('client', a.body, b.body))
  if (!same(a.trailers, b.trailers))
    atoms.push({ side: 'client', what: 'trailers', direct: a.trailers, proxy: b.trailers })
  if (ex.req.closes && d.closed && !p.closed) atoms.push({ side: 'client', what: 'close-ignored' })
  return atoms
}

/** Names the Connection header(s) of a flat list mark hop-by-hop (close/keep-alive excluded). */
export function connectionNames(flat) {
  const out = new Set()
  const g = groupHeaders(flat).get('connection')
  for (const v of g?.values ?? []) {
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase()
      if (name && name !== 'close' && name !== 'keep-alive') out.add(name)
    }
  }
  return out
}

const values = (flat, lower) => groupHeaders(flat).get(lower)?.values ?? []

function expectValue(atoms, side, flat, lower, expected) {
  const got = values(flat, lower)
  if (got.length !== 1 || got[0] !== expected)
    atoms.push({ side, what: 'rewrite-missing', name: lower, direct: expected, proxy: got })
}

function expectAbsent(atoms, side, flat, names) {
  for (let i = 0; i < flat.length; i += 2) {
    const lower = flat[i].toLowerCase()
    if (names(lower))
      atoms.push({ side, what: 'rewrite-missing', name: lower, direct: 'removed', proxy: flat[i + 1] })
  }
}

const REQUEST_HOP = new Set(['keep-alive', 'te', 'trailer', 'upgrade', 'expect', 'x-turnout-mirror'])
/** Names a Connection list must not remove (issue 11); their removal is a pending class instead. */
export const PROTECTED = new Set(['host', 'authorization'])

/** The documented rewrites must have happened: forwarding headers exact, hop-by-hop headers gone. */
function expectations(ex) {
  const atoms = []
  const d = ex.direct.records?.[0]
  const p = ex.proxy.records?.[0]
  if (d && p) {
    const xff = [...values(d.headers, 'x-forwarded-for'), CLIENT_ADDRESS].join(', ')
    expectValue(atoms, 'upstream', p.headers, 'x-forwarded-for', xff)
    expectValue(atoms, 'upstream', p.headers, 'x-forwarded-proto', 'http')
    if (!ex.req.connectionTokens.has('host'))
      expectValue(atoms, 'upstream', p.headers, 'x-forwarded-host', ex.req.host)
    expectValue(atoms, 'upstream', p.headers, 'via', [...values(d.headers, 'via'), VIA].join(', '))
    expectValue(atoms, 'upstream', p.headers, 'x-turnout-variant', VARIANT)
    const named = connectionNames(d.headers)
    const hop = (n) => REQUEST_HOP.has(n) || n.startsWith('proxy-') || (named.has(n) && !PROTECTED.has(n))
    expectAbsent(atoms, 'upstream', p.headers, hop)
  }
  const a = ex.direct.result.answer
  const b = ex.proxy.result.answer
  if (a && b) {
    expectValue(atoms, 'client', b.headers, 'via', [...values(a.headers, 'via'), VIA].join(', '))
    expectValue(atoms, 'client', b.headers, 'x-turnout-variant', VARIANT)
    const named = connectionNames(a.headers)
    expectAbsent(atoms, 'client', b.headers, (n) => n === 'trailer' || n.startsWith('proxy-') || named.has(n))
  }
  return atoms
}

/** Every difference between the two runs of one request, plus missing documented rewrites. */
export function compareExchange(ex) {
  return [...upstreamAtoms(ex), ...clientAtoms(ex), ...expectations(ex)]
}
