// What the bench runs on: CPU, cores, Node and peer versions, optional tools found or missing,
// and how processes are pinned to CPUs.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { nginxVersion } from './nginx.js'
import { hasCommand, tools } from './proc.js'
import { ROOT, TURNOUT_MAIN } from './targets.js'

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return null
  }
}

function wrkVersion() {
  if (!hasCommand('wrk')) return null
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' })
  const m = /wrk\s+(?:debian\/)?(\S+)/.exec(`${r.stdout}${r.stderr}`)
  return m ? m[1] : 'unknown'
}

function gitCommit() {
  const r = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

/** CPU ids this process may run on (Linux), else 0..n-1. */
export function allowedCpus() {
  try {
    const m = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (m) {
      const ids = []
      for (const part of m[1].split(',')) {
        const [a, b] = part.split('-').map(Number)
        for (let i = a; i <= (b ?? a); i++) ids.push(i)
      }
      if (ids.length > 0) return ids
    }
  } catch {
    // not Linux
  }
  return [...Array(os.availableParallelism()).keys()]
}

/**
 * Pinning plan: the proxy gets the first CPU to itself; the load generator gets the rest (with 3+ CPUs
 * the upstreams get the second CPU, otherwise they share with the load generator).
 */
export function pinPlan(enabled) {
  const cpus = allowedCpus()
  if (!enabled)
    return {
      pinned: false,
      why: 'disabled by --no-pin',
      proxy: null,
      upstream: null,
      loadgen: null,
      loadgenCount: cpus.length,
    }
  if (!tools.taskset)
    return {
      pinned: false,
      why: 'taskset not found',
      proxy: null,
      upstream: null,
      loadgen: null,
      loadgenCount: cpus.length,
    }
  if (cpus.length < 2)
    return { pinned: false, why: 'only one CPU', proxy: null, upstream: null, loadgen: null, loadgenCount: 1 }
  const proxy = String(cpus[0])
  const upstream = String(cpus[1])
  const rest = cpus.length >= 3 ? cpus.slice(2) : cpus.slice(1)
  return { pinned: true, why: null, proxy, upstream, loadgen: rest.join(','), loadgenCount: rest.length }
}

export function machineInfo() {
  const cpus = os.cpus()
  const peers = {
    autocannon: pkgVersion('autocannon'),
    undici: pkgVersion('undici'),
    'http-proxy': pkgVersion('http-proxy'),
    nginx: hasCommand('nginx') ? nginxVersion() : null,
    wrk: wrkVersion(),
  }
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    allowedCpus: allowedCpus().length,
    arch: os.arch(),
    platform: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    peers,
    tools: { taskset: tools.taskset, setpriv: tools.setpriv },
    turnout: {
      built: fs.existsSync(TURNOUT_MAIN),
      version: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
      commit: gitCommit(),
    },
  }
}
