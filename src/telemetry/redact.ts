// One redaction for request targets wherever Turnout writes them down (access log lines, span
// attributes): the query values the HTTP semantic conventions name as signed-URL credentials.

const SENSITIVE_QUERY = /(^|&)(AWSAccessKeyId|Signature|sig|X-Goog-Signature)=[^&]*/g

/** Query values the HTTP semantic conventions say to redact (signed-URL credentials). */
export function redactQuery(query: string): string {
  return query.replace(SENSITIVE_QUERY, '$1$2=REDACTED')
}

/** A request target (path, optionally `?query`) with its query redacted by redactQuery. */
export function redactTarget(target: string): string {
  const q = target.indexOf('?')
  return q === -1 ? target : `${target.slice(0, q)}?${redactQuery(target.slice(q + 1))}`
}
