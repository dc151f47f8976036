// Starting and stopping the bench targets and upstreams.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { writeNginxConfig } from './nginx.js'
import { hasCommand, removeTempDir, startChild, stopChild, tempDir, waitForMessage } from './proc.js'

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = path.resolve(BENCH_DIR, '..')
export const TURNOUT_MAIN = path.join(ROOT, 'dist', 'cli', 'main.js')
export const TURNOUT_BIN = path.join(ROOT, 'bin', 'turnout.js')

const STARTUP_MS = 15_000
const LOG_LIMIT = 64 * 2 ** 20

/** Start one upstream process; resolves to { name, port, url, child }. */
export async function startUpstream(name, { delayMs = 0, cpus = null } = {}) {
  const child = startChild(
    process.execPath,
    [path.join(BENCH_DIR, 'upstream.js'), '--name', name, '--delay-ms', String(delayMs)],
    { name: `upstream ${name}`, ipc: true, cpus },
  )
  const m = await waitForMessage(child, (x) => x?.ready, STARTUP_MS, `upstream ${name}`)
  return { name, port: m.port, host: `127.0.0.1:${m.port}`, url: `http://127.0.0.1:${m.port}`, child }
}

/** The three upstreams every run uses: fast primary, fast canary, slow (200 ms) canary. */
export async function startUpstreams(cpus) {
  const [primary, canary, slow] = await Promise.all([
    startUpstream('primary', { cpus }),
    startUpstream('canary', { cpus }),
    startUpstream('slow-canary', { delayMs: 200, cpus }),
  ])
  return { primary, canary, slow }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Why a target cannot run on this machine, or null when it can. */
export function prerequisiteMissing(base) {
  if (base === 'nginx' && !hasCommand('nginx')) return 'nginx binary not found'
  if (base.startsWith('turnout') && !fs.existsSync(TURNOUT_MAIN)) {
    return `${path.relative(ROOT, TURNOUT_MAIN)} missing (run npm run build)`
  }
  return null
}

/**
 * Start the target for a scenario row.
 * ctx: { upstreams, cpus, profile, resultsDir, tag, scenario, nginxWorkerConnections, turnoutExtraYaml }
 * Resolves to { url, pid, child, stop(), notes[] }; throws with a readable reason when it cannot start.
 */
export async function startTarget(row, ctx) {
  const { upstreams } = ctx
  const primary = upstreams.primary
  const canary = row.variant === 'split' ? upstreams.canary : upstreams.slow
  switch (row.base) {
    case 'direct':
      return { url: primary.url, pid: primary.child.pid, child: null, stop: async () => {}, notes: [] }
    case 'undici-min': {
      const args = [path.join(BENCH_DIR, 'undici-min.js'), '--upstream', primary.url]
      if (row.variant === 'mirror') args.push('--mirror', canary.url)
      return startNodeTarget(row, args, ctx)
    }
    case 'http-proxy':
      return startNodeTarget(row, [path.join(BENCH_DIR, 'http-proxy.js'), '--upstream', primary.url], ctx)
    case 'nginx':
      return startNginx(row, ctx, primary, canary)
    case 'turnout':
    case 'turnout-minimal':
      return startTurnout(row, ctx, primary, canary)
    default:
      throw new Error(`unknown target ${row.base}`)
  }
}

async function startNodeTarget(row, args, ctx) {
  const child = startChild(process.execPath, args, { name: row.id, ipc: true, cpus: ctx.cpus })
  const m = await waitForMessage(child, (x) => x?.ready, STARTUP_MS, row.id)
  return {
    url: `http://127.0.0.1:${m.port}`,
    pid: child.pid,
    child,
    stop: () => stopChild(child, 10_000),
    notes: [],
  }
}

function profileArgs(row, ctx) {
  fs.mkdirSync(ctx.resultsDir, { recursive: true })
  return [
    '--cpu-prof',
    '--cpu-prof-dir',
    ctx.resultsDir,
    '--cpu-prof-name',
    `${ctx.tag}-${ctx.scenario}-${row.id}.cpuprofile`,
  ]
}

async function startNginx(row, ctx, primary, canary) {
  let lastErr = null
  // the port is chosen before nginx binds it; retry if another process grabbed it meanwhile
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = tempDir('turnout-bench-nginx-')
    const port = await freePort()
    const conf = writeNginxConfig(dir, {
      port,
      primary: primary.host,
      canary: canary.host,
      variant: row.variant,
      workerConnections: ctx.nginxWorkerConnections ?? 8192,
    })
    // nginx forks a worker: run it under lib/guard.js, which kills the whole group when told to or when
    // the bench dies, so the worker is never orphaned
    const child = startChild(
      process.execPath,
      [path.join(BENCH_DIR, 'lib', 'guard.js'), 'nginx', '-p', dir, '-c', conf, '-g', 'daemon off;'],
      { name: row.id, cpus: ctx.cpus, ipc: true, noDeathSig: true },
    )
    try {
      const { pid } = await waitForMessage(child, (x) => x?.started, STARTUP_MS, 'nginx')
      await waitForPort(port, child, STARTUP_MS, 'nginx')
      const workerPid = await nginxWorkerPid(pid)
      return {
        url: `http://127.0.0.1:${port}`,
        pid,
        workerPid,
        child,
        stop: async () => {
          await stopChild(child, 8000)
          removeTempDir(dir)
        },
        notes: [],
      }
    } catch (err) {
      lastErr = err
      await stopChild(child, 2000)
      let log = ''
      try {
        log = fs.readFileSync(path.join(dir, 'error.log'), 'utf8').trim().split('\n').slice(-3).join(' | ')
      } catch {
        // no log
      }
      removeTempDir(dir)
      if (log) lastErr = new Error(`${err.message}: ${log}`)
    }
  }
  throw lastErr
}

async function nginxWorkerPid(masterPid) {
  for (let i = 0; i < 50; i++) {
    try {
      const kids = fs.readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim()
      if (kids) return Number(kids.split(/\s+/)[0])
    } catch {
      return null
    }
    await sleep(20)
  }
  return null
}

/** Resolve once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, child, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      const tail = child.entry?.stderrTail?.trim() ?? ''
      throw new Error(
        `${what} exited (${child.signalCode ?? child.exitCode})${tail ? `: ${lastLines(tail)}` : ''}`,
      )
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await sleep(50)
  }
  throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`)
}

function lastLines(s, n = 3) {
  return s.split('\n').slice(-n).join(' | ')
}

export function turnoutConfig(row, primary, canary, extraYaml = '') {
  const full = row.base === 'turnout'
  const lines = [
    'listen: 127.0.0.1:0',
    'admin: { listen: 127.0.0.1:0 }',
    `accessLog: { enabled: ${full} }`,
    `metrics: { enabled: ${full} }`,
    'routes:',
    '  - name: bench',
    `    primary: { endpoints: [${primary.url}] }`,
    `    canary: { endpoints: [${canary.url}] }`,
    `    split: { canary: ${row.variant === 'split' ? 10 : 0} }`,
  ]
  if (row.variant === 'mirror') lines.push('    mirror: { percent: 100 }')
  return `${lines.join('\n')}\n${extraYaml}`
}

async function startTurnout(row, ctx, primary, canary) {
  const missing = prerequisiteMissing(row.base)
  if (missing) throw new Error(missing)
  const dir = tempDir('turnout-bench-')
  const configFile = path.join(dir, 'turnout.yaml')
  fs.writeFileSync(configFile, turnoutConfig(row, primary, canary, ctx.turnoutExtraYaml))
  // stdout (JSON log lines, access log included) goes to a file so the bench never spends CPU reading it
  const logFile = path.join(dir, 'turnout.log')
  const fd = fs.openSync(logFile, 'a')
  const nodeArgs = ctx.profile ? profileArgs(row, ctx) : []
  const child = startChild(process.execPath, [...nodeArgs, TURNOUT_BIN, '--config', configFile], {
    name: row.id,
    cpus: ctx.cpus,
    stdout: fd,
    cwd: ROOT,
  })
  fs.closeSync(fd)
  // the access log grows fast under load: keep the file bounded (it is opened O_APPEND, so truncating is safe)
  const trim = setInterval(() => {
    try {
      if (fs.statSync(logFile).size > LOG_LIMIT) fs.truncateSync(logFile, 0)
    } catch {
      // gone
    }
  }, 2000)
  trim.unref()
  const stop = async () => {
    clearInterval(trim)
    await stopChild(child, 10_000)
    removeTempDir(dir)
  }
  try {
    const addrs = await waitForListening(logFile, child, STARTUP_MS)
    const notes = []
    if (addrs.admin) notes.push(`admin ${addrs.admin}`)
    return {
      url: `http://${addrs.proxy}`,
      adminUrl: addrs.admin ? `http://${addrs.admin}` : null,
      pid: child.pid,
      child,
      stop,
      notes,
      logFile,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Follow Turnout's stdout log for {"msg":"listening","listener":"proxy"|"admin","address":"host:port"}. */
async function waitForListening(logFile, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  const found = {}
  let offset = 0
  let partial = ''
  let proxyFoundAt = 0
  while (Date.now() < deadline) {
    let chunk = ''
    try {
      const fd = fs.openSync(logFile, 'r')
      const buf = Buffer.alloc(64 * 1024)
      const n = fs.readSync(fd, buf, 0, buf.length, offset)
      fs.closeSync(fd)
      offset += n
      chunk = buf.subarray(0, n).toString('utf8')
    } catch {
      // not written yet
    }
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (!line.includes('listening')) continue
      try {
        const rec = JSON.parse(line)
        if (rec.msg === 'listening' && typeof rec.address === 'string' && typeof rec.listener === 'string') {
          found[rec.listener] = rec.address
        }
      } catch {
        // not JSON
      }
    }
    if (found.proxy && !proxyFoundAt) proxyFoundAt = Date.now()
    // the admin listener is informative only: give it a second after the proxy one
    if (found.proxy && (found.admin || Date.now() - proxyFoundAt > 1000)) return found
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = child.entry?.stderrTail?.trim() || partial || chunk
      throw new Error(
        `turnout exited (${child.signalCode ?? child.exitCode})${tail ? `: ${lastLines(tail.trim())}` : ''}`,
      )
    }
    await sleep(found.proxy ? 20 : 50)
  }
  if (found.proxy) return found
  throw new Error(`turnout did not log {"msg":"listening","listener":"proxy"} within ${timeoutMs} ms`)
}
