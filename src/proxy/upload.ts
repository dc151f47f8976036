// The client's upload when the upstream stops reading it early: it answered before the upload ended
// (a 401 before reading a large body) or failed mid-upload. undici then destroys the body stream it
// was given, which for node:http's request would leave the client's connection stalled or cut with
// the answer unread. Instead the rest of the upload is read and dropped, so the answer arrives whole
// and the connection stays usable for the next request. Bounded by limits.maxBodySize (checked
// before forwarding) and limits.bodyIdleTimeout (exchange.ts's idle watch).
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'

const noop = () => {}

/** Installs the protection for an upload forwarded as `body` (the request itself or a stream fed by it). */
export function keepConnectionAfterUpload(req: IncomingMessage, body: Readable): void {
  if (body !== req) {
    // A transform or tee between: the request is unpiped (not destroyed) when it closes.
    body.once('close', () => discard(req))
    return
  }
  const destroy = req.destroy
  const socket = req.socket
  req.destroy = function (this: IncomingMessage, err?: Error) {
    // node:http destroys the request itself only once the client's socket is gone. (undici detaches
    // the socket before destroying a request body, so the one seen at the start is checked.)
    if (this.complete || socket.destroyed) return destroy.call(this, err)
    this.socket = socket
    discard(this)
    return this
  } as IncomingMessage['destroy']
}

function discard(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return
  req.unpipe()
  req.on('data', noop)
  req.resume()
}
