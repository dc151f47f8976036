// A bounded digest of one response as it streams: the status, the headers the comparison wants
// (plus content-type), and the body up to `maxBodyBytes`. Past the limit the kept bytes are dropped
// and the capture is marked truncated, so the comparison falls back to status and headers only.
// Chunks are kept by reference (no copy) and joined once in finish(): O(1) amortised per chunk.
// Callers must not reuse or mutate a chunk buffer after handing it over.

export interface CapturedResponse {
  status: number
  /** Wanted headers by lower-case name; repeated headers joined with ", ". Absent headers are absent. */
  headers: Record<string, string>
  /** The whole body, or null when it was longer than maxBodyBytes. */
  body: Buffer | null
  truncated: boolean
  /** The content-type header value, '' when there is none. */
  contentType: string
}

export class ResponseCapture {
  private status = 0
  private headers: Record<string, string> = {}
  private contentType = ''
  private chunks: Buffer[] = []
  private bytes = 0
  private truncated = false
  private result: CapturedResponse | null = null

  constructor(private readonly maxBodyBytes: number) {}

  /** `rawHeaders` is Node's flat [name, value, name, value…] list; `wanted` are lower-case names. */
  head(status: number, rawHeaders: readonly string[], wanted: readonly string[]): void {
    this.status = status
    const want = new Set(wanted.map((w) => w.toLowerCase()))
    const headers: Record<string, string> = {}
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toLowerCase()
      const value = rawHeaders[i + 1]!
      if (name === 'content-type' && this.contentType === '') this.contentType = value
      if (!want.has(name)) continue
      headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value
    }
    this.headers = headers
  }

  chunk(buf: Buffer): void {
    if (this.truncated || buf.length === 0) return
    if (this.bytes + buf.length > this.maxBodyBytes) {
      this.truncated = true
      this.chunks = []
      this.bytes = 0
      return
    }
    this.chunks.push(buf)
    this.bytes += buf.length
  }

  /** The captured response; later calls return the same object. */
  finish(): CapturedResponse {
    if (this.result) return this.result
    const body = this.truncated
      ? null
      : this.chunks.length === 1
        ? this.chunks[0]!
        : Buffer.concat(this.chunks, this.bytes)
    this.chunks = []
    this.result = {
      status: this.status,
      headers: this.headers,
      body,
      truncated: this.truncated,
      contentType: this.contentType,
    }
    return this.result
  }
}
