// One error type for Turnout, with stable codes (`TURNOUT_ERR_*`) that callers of the programmatic API,
// the CLI and tests can match on, and the HTTP status an answer about it carries. Every error class
// Turnout throws on purpose extends it (config, telemetry settings, admin API calls, body limits,
// mirror timeouts, the programmatic API).
export class TurnoutError extends Error {
  constructor(
    readonly code: `TURNOUT_ERR_${string}`,
    message: string,
    /** The HTTP status when the error is answered (500 when it never is). */
    readonly status = 500,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'TurnoutError'
  }
}
