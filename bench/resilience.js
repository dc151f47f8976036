#!/usr/bin/env node
// Resilience bench, two scenarios (markdown to stdout, progress to stderr):
//   blackhole  two endpoints, one accepts connections and never answers; the same load through
//              Turnout (outlier detection + retry with perTryTimeout), nginx (max_fails=1
//              fail_timeout=10s, proxy_next_upstream error timeout, proxy_read_timeout) and HAProxy
//              (httpchk checks, observe layer7 on-error mark-down, retries 1, option redispatch,
//              timeout server), each when installed.
//              Columns: requests, client errors (non-2xx + socket errors), rps, p99.
//   healthy    no cost when healthy: Turnout with outlier detection on (the default) vs off on one
//              healthy endpoint, interleaved rounds, throughput ratio (target >= 0.98x).
// Usage: node bench/resilience.js [--duration 10] [--connections 50] [--rounds 3] [--scenario blackhole,healthy]
// Needs dist/ (npm run build). nginx/haproxy rows say `missing` when the binary is not found.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad } from './lib/load.js'
import { hasCommand, removeTempDir, startChild, stopAll, stopChild, tempDir } from './lib/proc.js'
import { fmtMs, fmtNum, fmtRatio, markdownTable, median } from './lib/stats.js'
import { freePort, ROOT, startUpstream, TURNOUT_BIN, TURNOUT_MAIN, waitForPort } from './lib/targets.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    scenario: { type: 'string', default: 'blackhole,healthy' },
  },
})
const duration = Number(values.duration)
const connections = Number(values.connections)
const rounds = Number(values.rounds)
const scenarios = values.scenario.split(',')
const log = (s) => process.stderr.write(`${s}\n`)
const request = { method: 'GET', path: '/small', bodySize: 0 }

/** Accepts connections and never answers. */
async function startBlackhole() {
  const sockets = new Set()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    host: `127.0.0.1:${server.address().port}`,
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

async function startTurnoutWith(yaml) {
  if (!fs.existsSync(TURNOUT_MAIN)) throw new Error('dist/ missing (run npm run build)')
  const dir = tempDir('turnout-resil-')
  const port = await freePort()
  fs.writeFileSync(
    path.join(dir, 'turnout.yaml'),
    `listen: 127.0.0.1:${port}\nadmin: { listen: 127.0.0.1:0 }\naccessLog: { enabled: false }\n${yaml}`,
  )
  const child = startChild(process.execPath, [TURNOUT_BIN, '--config', path.join(dir, 'turnout.yaml')], {
    name: 'turnout',
    cwd: ROOT,
  })
  await waitForPort(port, child, 15_000, 'turnout')
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => stopChild(child, 10_000).then(() => removeTempDir(dir)),
  }
}

async function startNginx(good, hole) {
  const dir = tempDir('turnout-resil-nginx-')
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, sub))
  const port = await freePort()
  const runAs = process.getuid?.() === 0 ? 'user root root;\n' : ''
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${runAs}worker_processes 1;
error_log ${dir}/error.log crit;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream pool {
    server ${good.host} max_fails=1 fail_timeout=10s;
    server ${hole.host} max_fails=1 fail_timeout=10s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://pool;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 2s;
      proxy_read_timeout 500ms;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 2;
    }
  }
}
`,
  )
  const child = startChild('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    name: 'nginx',
    group: true,
  })
  await waitForPort(port, child, 15_000, 'nginx')
  return { url: `http://127.0.0.1:${port}`, stop: () => stopChild(child).then(() => removeTempDir(dir)) }
}

async function startHaproxy(good, hole) {
  const dir = tempDir('turnout-resil-haproxy-')
  const port = await freePort()
  fs.writeFileSync(
    path.join(dir, 'haproxy.cfg'),
    `global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 500ms
  retries 1
  option redispatch
  option http-keep-alive
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /small
  timeout check 500ms
  default-server check inter 1s fall 2 rise 2 observe layer7 error-limit 1 on-error mark-down
  server good ${good.host}
  server hole ${hole.host}
`,
  )
  const child = startChild('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], {
    name: 'haproxy',
    group: true,
  })
  await waitForPort(port, child, 15_000, 'haproxy')
  return { url: `http://127.0.0.1:${port}`, stop: () => stopChild(child).then(() => removeTempDir(dir)) }
}

async function blackhole() {
  const good = await startUpstream('good')
  const hole = await startBlackhole()
  const turnoutYaml = `routes:
  - name: bench
    primary: { endpoints: [${good.url}, ${hole.url}] }
    retry: { on: [connect-failure, gateway-error], perTryTimeout: 500ms }
`
  const targets = [
    ['turnout', () => startTurnoutWith(turnoutYaml)],
    ['nginx', hasCommand('nginx') ? () => startNginx(good, hole) : null],
    ['haproxy', hasCommand('haproxy') ? () => startHaproxy(good, hole) : null],
  ]
  const rows = []
  for (const [name, start] of targets) {
    if (start === null) {
      rows.push([name, 'missing', '', '', ''])
      continue
    }
    log(`blackhole: ${name}`)
    const t = await start()
    try {
      // One run from a cold start: what the failing endpoint costs before each proxy has learnt.
      const r = await runLoad({
        loadgen: 'autocannon',
        url: t.url,
        request,
        connections,
        duration,
        cpus: null,
      })
      rows.push([name, fmtNum(r.requests), fmtNum(r.errors), fmtNum(r.rps), fmtMs(r.p99)])
    } finally {
      await t.stop()
    }
  }
  hole.close()
  await stopChild(good.child)
  return `## blackhole: one of two endpoints accepts and never answers (${connections} connections, ${duration} s, cold start)\n\n${markdownTable(
    ['proxy', 'requests', 'client errors', 'rps', 'p99'],
    rows,
    ['l', 'r', 'r', 'r', 'r'],
  )}\n`
}

async function healthy() {
  const good = await startUpstream('good')
  const yaml = (outlier) => `routes:
  - name: bench
    primary: { endpoints: [${good.url}], outlierDetection: { enabled: ${outlier} } }
`
  const results = { on: [], off: [] }
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['on', 'off']) {
      log(`healthy: outlier detection ${mode}, round ${i + 1}`)
      const t = await startTurnoutWith(yaml(mode === 'on'))
      try {
        await runLoad({ loadgen: 'autocannon', url: t.url, request, connections, duration: 2, cpus: null })
        const r = await runLoad({
          loadgen: 'autocannon',
          url: t.url,
          request,
          connections,
          duration,
          cpus: null,
        })
        results[mode].push(r.rps)
      } finally {
        await t.stop()
      }
    }
  }
  await stopChild(good.child)
  const on = median(results.on)
  const off = median(results.off)
  return `## healthy: outlier detection on (default) vs off (${connections} connections, ${rounds} interleaved rounds of ${duration} s)\n\n${markdownTable(
    ['outlier detection', 'median rps', 'rounds', 'vs off'],
    [
      ['on', fmtNum(on), results.on.map((x) => fmtNum(x)).join(', '), fmtRatio(on / off)],
      ['off', fmtNum(off), results.off.map((x) => fmtNum(x)).join(', '), fmtRatio(1)],
    ],
    ['l', 'r', 'l', 'r'],
  )}\n`
}

try {
  const out = []
  if (scenarios.includes('blackhole')) out.push(await blackhole())
  if (scenarios.includes('healthy')) out.push(await healthy())
  process.stdout.write(`${out.join('\n')}`)
} finally {
  await stopAll()
}
