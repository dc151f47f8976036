// The `turnout` command line. Exit codes: 0 ok, 1 invalid config or failed start, 2 bad usage.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { startTurnout, type Turnout } from '../app.js'
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.js'
import { startDemo } from './demo.js'

export class UsageError extends Error {}

export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  env: process.env,
}

export const HELP = `turnout: an L7 HTTP proxy for progressive delivery (canary splits, mirroring, rollouts)

Usage:
  turnout --config FILE            start the proxy (also -c FILE, or env TURNOUT_CONFIG)
  turnout validate FILE            check a config file: prints ok, or one line per problem (exit 1)
  turnout demo [--listen ADDR] [--admin ADDR]
                                   two sample upstreams behind Turnout, 10% canary
  turnout --help | --version

Options:
  -c, --config FILE                config file (YAML or JSON)
                                     e.g. turnout --config config/gateway.yaml
      --listen ADDR                demo: proxy address (default 127.0.0.1:8080)
                                     e.g. turnout demo --listen 127.0.0.1:8000
      --admin ADDR                 demo: admin address (default 127.0.0.1:9901)
  -h, --help                       this text
  -v, --version                    the version

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file.
Exit codes: 0 ok, 1 invalid config or failed start, 2 bad usage.
`

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number | undefined> {
  try {
    return await dispatch(argv, io)
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`turnout: ${(err as Error).message}\nRun 'turnout --help' for usage.`)
      return 2
    }
    if (err instanceof ConfigError) {
      io.err(err.problems.map(formatProblem).join('\n'))
      return 1
    }
    io.err(`turnout: ${(err as Error).message}`)
    return 1
  }
}

async function dispatch(argv: string[], io: Io): Promise<number | undefined> {
  const [command, ...rest] = argv
  switch (command) {
    case 'validate':
      return validate(rest, io)
    case 'demo':
      return demo(rest, io)
    default:
      return run(argv, io)
  }
}

async function validate(argv: string[], io: Io): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} })
  if (positionals.length !== 1) throw new UsageError('validate needs exactly one FILE')
  try {
    await loadConfigFile(positionals[0]!, io.env)
    io.out('ok')
    return 0
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.out(err.problems.map(formatProblem).join('\n'))
    return 1
  }
}

async function demo(argv: string[], io: Io): Promise<number | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: { listen: { type: 'string' }, admin: { type: 'string' } },
  })
  const d = await startDemo({
    listen: values.listen ?? '127.0.0.1:8080',
    admin: values.admin ?? '127.0.0.1:9901',
    out: io.out,
  })
  return untilSignalled(d.turnout, io, () => d.close())
}

async function run(argv: string[], io: Io): Promise<number | undefined> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  })
  if (values.help) {
    io.out(HELP)
    return 0
  }
  if (values.version) {
    io.out(version())
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unknown command: ${positionals[0]}`)
  const file = values.config ?? io.env.TURNOUT_CONFIG
  if (!file)
    throw new UsageError('no config: pass --config FILE (or set TURNOUT_CONFIG), or try `turnout demo`')
  const config = await loadConfigFile(file, io.env)
  const turnout = await startTurnout({ config, configFile: file })
  return untilSignalled(turnout, io, () => turnout.close(), file)
}

/** Runs until SIGTERM/SIGINT (graceful drain, exit 0); SIGHUP reloads the config file. */
function untilSignalled(
  turnout: Turnout,
  _io: Io,
  close: () => Promise<void>,
  file?: string,
): Promise<number> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      turnout.logger.info({ signal }, 'shutting down')
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      process.off('SIGHUP', hup)
      close().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    const hup = () => {
      if (file) turnout.reload().catch(() => {})
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.on('SIGHUP', hup)
  })
}
