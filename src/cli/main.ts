// The `turnout` command line. Exit codes: 0 ok, 1 invalid config or failed start, 2 bad usage.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { checkAdminListen } from '../admin/token-rule.js'
import { startTurnout, type Turnout } from '../app.js'
import { workerCount } from '../cluster/count.js'
import { WORKER_ID_ENV } from '../cluster/messages.js'
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { describeUnresolved, unresolvedEndpoints } from '../upstream/resolve.js'
import { type AdminCommand, adminCommand } from './admin-client.js'
import { startDemo } from './demo.js'
import { runRolloutScenario, SCENARIOS, type Scenario } from './demo-rollout.js'
import { configFromFlags, FlagError, ROUTE_FLAG_OPTIONS, type RouteFlags, routeFlagsGiven } from './flags.js'
import { HealthUsage, health } from './health.js'

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
  turnout --primary URL [--canary URL] [flags]
                                   start a one-route proxy (route "default") without a file
  turnout --primary URL ... --print-config
                                   print that config as YAML and exit (to graduate to a file)
  turnout validate FILE            check a config file: prints ok, or one line per problem (exit 1);
                                   warns on stderr about endpoint hosts that do not resolve
  turnout health [--config FILE]   ask the admin listener of that config for /healthz (exit 0 ok, 1 not);
                                   sends admin.token when admin.protectHealth is on (container checks)
  turnout demo [--listen ADDR] [--admin ADDR]
                                   two sample upstreams behind Turnout, 10% canary
  turnout demo --scenario good-canary|bad-canary
                                   an automated rollout in under a minute, then exits
  turnout status [--json]          every route: ROUTE  WEIGHT  PHASE  STEP (--json: the API's JSON)
  turnout set-weight ROUTE N       set the live canary weight (0-100); pauses a running rollout
  turnout rollout start|pause|resume|promote|abort ROUTE
                                   drive a route's rollout
  turnout --help | --version

Options:
  -c, --config FILE                config file (YAML or JSON); not with the flags below
                                     e.g. turnout --config config/gateway.yaml
  -h, --help                       this text
                                     e.g. turnout --help
  -v, --version                    the version
                                     e.g. turnout --version

Flags instead of a file (each sets the config field it names; URL and ADDR accept the
shorthands :3000 and 3000 for 127.0.0.1:3000; a share is PERCENT with or without %):
      --primary URL                primary upstream (required; repeat for more endpoints)
                                     e.g. turnout --primary http://127.0.0.1:3000 --canary :3001
      --canary URL                 canary upstream (repeat for more endpoints)
                                     e.g. turnout --primary :3000 --canary localhost:3001
      --canary-weight PERCENT      split.canary: share of traffic to the canary (default 0)
                                     e.g. turnout --primary :3000 --canary :3001 --canary-weight 20
      --sticky-header NAME         split.sticky.header: same value, same variant
                                     e.g. ... --canary-weight 20 --sticky-header x-user-id
      --override-header NAME=VALUE overrides: requests with that header value go to the canary;
                                   repeatable
                                     e.g. ... --override-header x-canary=always
      --mirror PERCENT             mirror: copy that share of primary-served GET/HEAD/OPTIONS
                                   requests to the canary
                                     e.g. ... --mirror 100
      --canary-delay DUR[@PERCENT] faults: delay canary requests (all, or that share) before the
                                   upstream call; DUR is fixed (300ms) or a range (100ms-900ms)
                                     e.g. ... --canary-delay 300ms@50%
      --canary-abort STATUS[@PERCENT]
                                   faults: answer canary requests with STATUS (200-599) without
                                   calling the upstream
                                     e.g. ... --canary-abort 503@5%
      --primary-delay DUR[@PERCENT]
                                   the same for the primary
                                     e.g. ... --primary-delay 100ms-900ms@10%
      --primary-abort STATUS[@PERCENT]
                                   the same for the primary
                                     e.g. ... --primary-abort 500@1%
      --listen ADDR                proxy address (default 127.0.0.1:8080; also for demo)
                                     e.g. turnout --primary :3000 --listen :8000
      --admin ADDR                 admin address (default 127.0.0.1:9901; also for demo)
                                     e.g. turnout --primary :3000 --admin :9902
      --print-config               print the config the flags make, as YAML, and exit
                                     e.g. turnout --primary :3000 --canary :3001 --print-config > turnout.yaml
  Delays, aborts and overrides repeat; each occurrence is one rule. Faults show up as the response
  header x-turnout-fault: delay|abort, in the access log and in turnout_faults_injected_total.

Admin commands (status, set-weight, rollout) talk to a running Turnout's admin API:
      --admin URL                  its admin listener (env TURNOUT_ADMIN; default http://127.0.0.1:9901)
                                     e.g. turnout status --admin http://127.0.0.1:9902
      --token TOKEN                admin.token, when set (env TURNOUT_TOKEN)
                                     e.g. TURNOUT_TOKEN=... turnout rollout promote shop
  They exit 1 when the API refuses the request or cannot be reached.

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
    if (
      err instanceof UsageError ||
      err instanceof FlagError ||
      err instanceof HealthUsage ||
      (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
    ) {
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
    case 'status':
    case 'set-weight':
    case 'rollout':
      return adminCommand(command as AdminCommand, rest, io)
    case 'demo':
      return demo(rest, io)
    case 'health':
      return health(rest, io)
    default:
      return run(argv, io)
  }
}

async function validate(argv: string[], io: Io): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} })
  if (positionals.length !== 1) throw new UsageError('validate needs exactly one FILE')
  const file = positionals[0]!
  let config: Config
  try {
    config = await loadConfigFile(file, io.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.out(err.problems.map(formatProblem).join('\n'))
    return 1
  }
  // What the start would find by resolving names: the admin token rule decides on IPs (an error),
  // an endpoint that does not resolve is a warning (the start warns too, and keeps trying).
  const [admin, unresolved] = await Promise.all([checkAdminListen(config, file), unresolvedEndpoints(config)])
  const warnings = unresolved.map((u) => `${file}: warning: ${describeUnresolved(u)}`)
  if (admin.kind === 'unresolved') {
    warnings.push(
      `${file}: warning: admin.listen: host ${admin.host} does not resolve here (${admin.error}): the admin token rule is checked again at start`,
    )
  }
  if (warnings.length > 0) io.err(warnings.join('\n'))
  if (admin.kind === 'needs-token') {
    io.out(formatProblem(admin.problem))
    return 1
  }
  io.out('ok')
  return 0
}

async function demo(argv: string[], io: Io): Promise<number | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: { listen: { type: 'string' }, admin: { type: 'string' }, scenario: { type: 'string' } },
  })
  if (values.scenario !== undefined) {
    if (!(SCENARIOS as readonly string[]).includes(values.scenario)) {
      throw new UsageError(`--scenario ${values.scenario}: use ${SCENARIOS.join(' or ')}`)
    }
    return runRolloutScenario({
      scenario: values.scenario as Scenario,
      listen: values.listen,
      admin: values.admin,
      out: io.out,
    })
  }
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
      'print-config': { type: 'boolean' },
      ...ROUTE_FLAG_OPTIONS,
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
  const routeFlags = routeFlagsGiven(values)
  if (values.config !== undefined && routeFlags.length > 0) {
    throw new UsageError(
      `--config cannot be combined with ${routeFlags.join(', ')}: use either a config file or flags (turnout ${routeFlags[0]} ... --print-config writes the file)`,
    )
  }
  if (routeFlags.length > 0) return runFromFlags(values, argv, io)
  if (values['print-config'])
    throw new UsageError(
      '--print-config needs route flags, e.g. turnout --primary :3000 --canary :3001 --print-config',
    )
  const file = values.config ?? io.env.TURNOUT_CONFIG
  if (!file)
    throw new UsageError('no config: pass --config FILE (or set TURNOUT_CONFIG), or try `turnout demo`')
  // A cluster worker: forked by the primary below, with this same command line.
  if (io.env[WORKER_ID_ENV] !== undefined) {
    const { runClusterWorker } = await import('../cluster/index.js')
    return runClusterWorker({ configFile: file, env: io.env })
  }
  const config = await loadConfigFile(file, io.env)
  if (workerCount(config.workers) > 1) {
    const { runClusterPrimary } = await import('../cluster/index.js')
    return runClusterPrimary({ config, configFile: file, env: io.env })
  }
  const turnout = await startTurnout({ config, configFile: file, env: io.env })
  return untilSignalled(turnout, io, () => turnout.close(), file)
}

/** Flag mode: a one-route config built from flags, validated exactly like a file. */
async function runFromFlags(
  values: RouteFlags & { 'print-config'?: boolean },
  argv: string[],
  io: Io,
): Promise<number | undefined> {
  const shown = argv.filter((a) => a !== '--print-config')
  const command = `turnout ${shown.map((a) => (/^[\w@%:/.,=+-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ')}`
  let built: ReturnType<typeof configFromFlags>
  try {
    built = configFromFlags(values, io.env, command)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new UsageError(`the flags make an invalid config:\n${err.problems.map(formatProblem).join('\n')}`)
  }
  if (values['print-config']) {
    io.out(built.yaml)
    return 0
  }
  const turnout = await startTurnout({ config: built.config, env: io.env })
  return untilSignalled(turnout, io, () => turnout.close())
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
