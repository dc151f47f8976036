// /api/... on the cluster's admin listener: forwarded to the leader (worker 1), which answers through
// its own AdminServer; an API call is answered only once every follower applied the weights the
// leader reported meanwhile (so a PUT .../weight is in force everywhere when it returns).
import type { IncomingHttpHeaders } from 'node:http'
import { AdminError, type AdminRequest, type AdminServer } from '../admin/server.js'
import { CallTable } from './calls.js'
import type { ApiAnswer } from './messages.js'
import type { Supervisor } from './supervisor.js'
import type { WeightsSync } from './weights-sync.js'

const API_TIMEOUT_MS = 30_000

const LEADER_EXITED: ApiAnswer = {
  status: 502,
  headers: { 'content-type': 'application/json' },
  body: '{"error":"the leader worker exited before answering"}\n',
}

/** Mounts the relay; the returned table takes the leader's answers (and hears of exits). */
export function mountAdminRelay(
  admin: AdminServer,
  supervisor: Supervisor,
  sync: WeightsSync,
): CallTable<ApiAnswer> {
  const calls = new CallTable<ApiAnswer>()
  admin.prefix('*', '/api', async ({ req, res, body }: AdminRequest) => {
    const leader = supervisor.leader
    if (!leader.ready || !supervisor.live(leader)) {
      throw new AdminError(503, 'the leader worker (1) is not running; try again shortly')
    }
    const request = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: pickHeaders(req.headers),
      body: body === undefined ? '' : JSON.stringify(body),
    }
    const [answer = LEADER_EXITED] = await calls.ask([leader.id], {
      timeoutMs: API_TIMEOUT_MS,
      timedOut: () => new AdminError(504, `the leader worker did not answer within ${API_TIMEOUT_MS} ms`),
      send: (id) => supervisor.tell(leader, { type: 'turnout:api', id, request }),
    })
    await sync.appliedEverywhere(sync.seq)
    res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) })
    res.end(answer.body)
  })
  return calls
}

/** The request headers the leader's AdminServer needs (auth and content negotiation). */
function pickHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['authorization', 'content-type', 'accept']) {
    const v = headers[name]
    if (typeof v === 'string') out[name] = v
  }
  return out
}
