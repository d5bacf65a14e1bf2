'use strict'

// Benchmark driver: `node bench/run.js [--quick] [--runs N] [--systems a,b] [--workloads W1,W2]
// [--publish]`. Writes results/<time>.json and .svg; --publish also writes docs/bench.svg.
// For every run, system and workload it starts a fresh server/broker, receiver and sender
// (bench/workload.js), then prints a markdown table and writes bench/results/<ISO time>.json.
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { installCleanup } = require('./harness')
const { runWorkload } = require('./workload')
const { render, writeJson } = require('./report')
const { renderSvg } = require('./chart')
const fs = require('node:fs')

const SYSTEMS = [
  { id: 'ricochet-enc', label: 'ricochet enc', adapter: 'ricochet', plain: false },
  { id: 'ricochet-plain', label: 'ricochet plain', adapter: 'ricochet', plain: true },
  // The same core as a native daemon (ricochetd, no Node), plaintext like ricochet-plain.
  { id: 'ricochet-native', label: 'ricochet native', adapter: 'ricochet-native', plain: true },
  // Two ricochet nodes joined over a nats-server; sender on edge-1, receiver on edge-2.
  { id: 'ricochet-cluster', label: 'ricochet cluster', adapter: 'ricochet-cluster', plain: true },
  { id: 'nats', label: 'nats', adapter: 'nats' },
  { id: 'raw', label: 'raw', adapter: 'raw' }
]
const DEADLINE_MS = 20000

function parseArgs (argv) {
  const opts = { quick: false, runs: 1, systems: null, workloads: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i])
    if (a === '--quick') opts.quick = true
    else if (a === '--publish') opts.publish = true
    else if (a.startsWith('--runs')) opts.runs = Number(val())
    else if (a.startsWith('--systems')) opts.systems = val().split(',')
    else if (a.startsWith('--workloads')) opts.workloads = val().split(',')
    else throw new Error(`unknown argument ${a} (use --quick, --runs N, --systems a,b, --workloads W1,W2,W3, --publish)`)
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error('--runs needs a positive integer')
  return opts
}

function workloads (quick) {
  const rr = { durationMs: quick ? 2000 : 5000, warmupMs: quick ? 200 : 500 }
  return [
    { id: 'W1', params: { count: quick ? 50000 : 200000 } },
    { id: 'W2', params: { ...rr, inflight: 1 } },
    { id: 'W3', params: { ...rr, inflight: 64 } }
  ]
}

function tryRun (cmd, args, re) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return re ? (out.match(re) || [null, out.trim()])[1] : out.trim()
  } catch (_) {
    return null
  }
}

function machine () {
  const pkg = (p) => { try { return require(p).version } catch (_) { return null } }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] && os.cpus()[0].model,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    ricochet: pkg(path.join(__dirname, '..', 'package.json')),
    natsClient: pkg('nats/package.json'),
    natsServer: tryRun('nats-server', ['--version']) || tryRun('/usr/sbin/nats-server', ['--version'])
  }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  const startedAt = new Date().toISOString()
  const systems = SYSTEMS.filter((s) => !opts.systems || opts.systems.includes(s.id))
  for (const s of systems) s.mod = require(`./systems/${s.adapter}`)
  const wls = workloads(opts.quick).filter((w) => !opts.workloads || opts.workloads.includes(w.id))
  const t0 = Date.now()

  const runs = []
  for (let run = 0; run < opts.runs; run++) {
    const results = []
    for (const sys of systems) {
      for (const wl of wls) {
        const r = await runWorkload(sys, wl, DEADLINE_MS)
        results.push(r)
        const fig = wl.id === 'W1'
          ? `${Math.round(r.throughput || 0)} msgs/s, loss ${r.loss}`
          : `${Math.round(r.rps || 0)} rt/s, p99 ${Math.round(r.p99 || 0)} µs`
        console.error(`[run ${run + 1}/${opts.runs}] ${sys.id.padEnd(16)} ${wl.id}: ${r.ok ? fig : 'ERROR ' + r.error} (${r.wallSecs.toFixed(1)} s)`)
      }
    }
    runs.push(results)
  }

  const { agg, text } = render(runs, systems)
  const title = `ricochet benchmark${opts.quick ? ' (quick)' : ''}: ${opts.runs} run(s), ${os.cpus().length} CPUs, node ${process.version}`
  console.log(`\n## ${title}\n\n${text}\n`)
  const failedNats = runs.flat().find((r) => /^(nats|ricochet-cluster)$/.test(r.system) && /nats-server|apt-get/.test(r.error || ''))
  if (failedNats) console.log(`NOTE: nats-server could not be set up (${failedNats.system}): ${failedNats.error}\n`)

  const file = writeJson(path.join(__dirname, 'results'), {
    startedAt,
    finishedAt: new Date().toISOString(),
    totalSecs: (Date.now() - t0) / 1000,
    args: process.argv.slice(2),
    machine: machine(),
    workloads: wls,
    deadlineMs: DEADLINE_MS,
    systems: systems.map(({ mod, ...s }) => s),
    runs,
    medians: agg,
    table: text
  })
  const svg = renderSvg(JSON.parse(fs.readFileSync(file, 'utf8')))
  fs.writeFileSync(file.replace(/\.json$/, '.svg'), svg)
  if (opts.publish) fs.writeFileSync(path.join(__dirname, '..', 'docs', 'bench.svg'), svg)
  console.error(`results: ${path.relative(process.cwd(), file)} (+ .svg${opts.publish ? ', docs/bench.svg' : ''}) (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
}

main().catch((err) => {
  console.error('bench: harness error:', err && err.stack ? err.stack : err)
  process.exitCode = 2
})
