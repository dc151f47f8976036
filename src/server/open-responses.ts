// Which answers a connection still owes. node:http builds one ServerResponse per parsed request
// (including the ones it answers itself, such as a missing Host); this subclass records each on its
// connection until it closes, so Turnout's own error answers can wait for the earlier answers and
// never land inside one of them.
import { type IncomingMessage, ServerResponse } from 'node:http'

interface ConnectionResponses {
  open: Set<ServerResponse>
  /** The latest request parsed on the connection. */
  last: IncomingMessage | null
  /** Callbacks waiting for `open` to hold nothing but the response given with them. */
  waiting: Array<{ except: ServerResponse | null; run: () => void }>
}

const byConnection = new WeakMap<object, ConnectionResponses>()
const byRequest = new WeakMap<IncomingMessage, ServerResponse>()
/** Hooks run for each new response before node:http looks at the request (custom-method takeover). */
const requestHooks: Array<(req: IncomingMessage) => void> = []

export function onNewRequest(hook: (req: IncomingMessage) => void): void {
  requestHooks.push(hook)
}

function stateOf(connection: object): ConnectionResponses {
  let state = byConnection.get(connection)
  if (state === undefined) {
    state = { open: new Set(), last: null, waiting: [] }
    byConnection.set(connection, state)
  }
  return state
}

// @types/node declares the constructor with one argument; node:http passes an options object too.
const Base = ServerResponse as unknown as new (req: IncomingMessage, options?: object) => ServerResponse

/** Pass as `createServer({ ServerResponse: TrackedResponse })`. */
export class TrackedResponse extends Base {
  constructor(req: IncomingMessage, options?: object) {
    super(req, options)
    for (const hook of requestHooks) {
      try {
        hook(req)
      } catch {
        // A hook must not take the process down from inside node:http's parser callback.
      }
    }
    const connection = req.socket
    const state = stateOf(connection)
    state.open.add(this)
    state.last = req
    byRequest.set(req, this)
    this.once('close', () => {
      state.open.delete(this)
      settle(state)
    })
  }
}

function settle(state: ConnectionResponses): void {
  if (state.waiting.length === 0) return
  const ready = state.waiting.filter((w) => allDone(state, w.except))
  if (ready.length === 0) return
  state.waiting = state.waiting.filter((w) => !ready.includes(w))
  for (const w of ready) w.run()
}

function allDone(state: ConnectionResponses, except: ServerResponse | null): boolean {
  return state.open.size === 0 || (state.open.size === 1 && except !== null && state.open.has(except))
}

/** The response node:http created for this request, if any. */
export function responseFor(req: IncomingMessage | null | undefined): ServerResponse | null {
  return req ? (byRequest.get(req) ?? null) : null
}

/** The latest request node:http parsed on the connection (null before the first). */
export function lastRequestOn(connection: object): IncomingMessage | null {
  return byConnection.get(connection)?.last ?? null
}

/** Responses on the connection that have not closed yet. */
export function openResponses(connection: object): number {
  return byConnection.get(connection)?.open.size ?? 0
}

/**
 * Runs `run` once every response on the connection has closed, except `except` (the response of
 * the request the error belongs to, which cannot finish on its own). Runs now when nothing is open.
 */
export function afterOpenResponses(connection: object, except: ServerResponse | null, run: () => void): void {
  const state = stateOf(connection)
  if (allDone(state, except)) run()
  else state.waiting.push({ except, run })
}
