'use strict'

// Aggregates runs (medians), renders the markdown table and writes the JSON results file.
const fs = require('node:fs')
const path = require('node:path')

// [workload, field, label, decimals, aggregate]
const ROWS = [
  ['W1', 'throughput', 'W1 one-way throughput (msgs/s)', 0],
  ['W1', 'loss', 'W1 loss (msgs, max over runs)', 0, 'max'],
  ['W1', 'peakRssMB', 'W1 server peak RSS (MiB)', 1],
  ['W1', 'cpuPerMsgUs', 'W1 server CPU per routed msg (µs)', 2],
  ['W1', 'senderCpuPerMsgUs', 'W1 sender CPU per msg (µs)', 2],
  ['W1', 'receiverCpuPerMsgUs', 'W1 receiver CPU per msg (µs)', 2],
  ['W2', 'rps', 'W2 req/reply, 1 in flight (round trips/s)', 0],
  ['W2', 'p50', 'W2 p50 latency (µs)', 0],
  ['W2', 'p99', 'W2 p99 latency (µs)', 0],
  ['W2', 'peakRssMB', 'W2 server peak RSS (MiB)', 1],
  ['W2', 'cpuPerMsgUs', 'W2 server CPU per routed msg (µs)', 2],
  ['W3', 'rps', 'W3 req/reply, 64 in flight (round trips/s)', 0],
  ['W3', 'p99', 'W3 p99 latency (µs)', 0],
  ['W3', 'peakRssMB', 'W3 server peak RSS (MiB)', 1],
  ['W3', 'cpuPerMsgUs', 'W3 server CPU per routed msg (µs)', 2],
  ['W3', 'senderCpuPerMsgUs', 'W3 requester CPU per round trip (µs)', 2],
  ['W3', 'receiverCpuPerMsgUs', 'W3 responder CPU per round trip (µs)', 2]
]
const RATIOS = [['ricochet-plain', 'nats'], ['ricochet-plain', 'raw'], ['ricochet-enc', 'raw'], ['ricochet-native', 'ricochet-plain']]

function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** {system: {workload: {field: {value, n, runs, errors}}}} over every run's results. */
function aggregate (runs, systems) {
  const out = {}
  for (const sys of systems) {
    out[sys.id] = {}
    for (const [wl, field, , , how] of ROWS) {
      const results = runs.map((r) => r.find((x) => x.system === sys.id && x.workload === wl)).filter(Boolean)
      if (results.length === 0) continue
      const ok = results.filter((x) => x.ok)
      const vals = ok.map((x) => x[field]).filter((v) => typeof v === 'number' && Number.isFinite(v))
      out[sys.id][wl] = out[sys.id][wl] || {}
      out[sys.id][wl][field] = {
        value: vals.length ? (how === 'max' ? Math.max(...vals) : median(vals)) : null,
        n: vals.length,
        runs: results.length,
        errors: results.filter((x) => !x.ok).map((x) => x.error)
      }
    }
  }
  return out
}

const fmt = (v, d) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })

function table (agg, systems) {
  const ids = new Set(systems.map((s) => s.id))
  const ratios = RATIOS.filter(([a, b]) => ids.has(a) && ids.has(b))
  const ran = (wl) => systems.some((s) => agg[s.id] && agg[s.id][wl])
  const head = ['metric', ...systems.map((s) => s.label), ...ratios.map(([a, b]) => `${short(a)}/${short(b)}`)]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`]
  for (const [wl, field, label, dec] of ROWS.filter(([wl]) => ran(wl))) {
    const cell = (id) => agg[id] && agg[id][wl] && agg[id][wl][field]
    const cells = systems.map((s) => {
      const c = cell(s.id)
      if (!c) return 'n/a'
      if (c.value === null) return c.errors.length ? 'ERROR' : '—'
      return fmt(c.value, dec) + (c.n < c.runs ? ` (${c.n}/${c.runs} ok)` : '')
    })
    const rs = ratios.map(([a, b]) => {
      const x = cell(a)
      const y = cell(b)
      if (!x || !y || x.value === null || y.value === null || y.value === 0) return '—'
      return fmt(x.value / y.value, 2)
    })
    lines.push(`| ${[label, ...cells, ...rs].join(' | ')} |`)
  }
  return lines.join('\n')
}

function short (id) {
  return { 'ricochet-enc': 'ric-enc', 'ricochet-plain': 'ric-plain', 'ricochet-native': 'ric-native' }[id] || id
}

/** Errors and anomalies (loss, reordering, failed requests, client-side errors) as lines. */
function notes (runs) {
  const out = []
  runs.forEach((results, i) => {
    for (const r of results) {
      const where = `${r.system} ${r.workload}${runs.length > 1 ? ` (run ${i + 1})` : ''}`
      if (!r.ok) out.push(`ERROR ${where}: ${r.error}${r.received !== undefined ? ` (receiver had ${r.received})` : ''}`)
      if (r.loss) out.push(`LOSS ${where}: ${r.loss} of ${r.sent} messages not delivered`)
      if (r.outOfOrder) out.push(`ORDER ${where}: ${r.outOfOrder} messages out of sequence`)
      if (r.failed) out.push(`FAILED ${where}: ${r.failed} requests failed (first: ${r.firstError})`)
      if (r.mismatched) out.push(`MISMATCH ${where}: ${r.mismatched} replies with the wrong seq`)
      const s = r.serverStats
      if (s && (s.messageErrors || s.clientErrors)) out.push(`SERVER ${where}: ${s.messageErrors || 0} message errors, ${s.clientErrors || 0} client errors (first: ${s.firstError})`)
    }
  })
  return out
}

function render (runs, systems) {
  const agg = aggregate(runs, systems)
  const n = runs.length
  const legend = `Ratios are column ÷ column of the ${n > 1 ? `medians over ${n} runs` : 'values'}: above 1 means more throughput, but also more latency/RSS/CPU.`
  const cluster = systems.some((s) => s.id === 'ricochet-cluster')
    ? ['', 'ricochet cluster: two ricochet nodes joined over a nats-server, sender on one node and receiver on the other, plaintext. ' +
      'Its server CPU is both nodes summed per delivered message (nats-server excluded: brokerCpuPerMsgUs in the JSON); its peak RSS is the larger node.']
    : []
  const list = notes(runs)
  return { agg, text: [table(agg, systems), '', legend, ...cluster, ...(list.length ? ['', 'Notes:', ...list.map((l) => `- ${l}`)] : [])].join('\n') }
}

function writeJson (dir, doc) {
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${doc.startedAt}.json`)
  fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n')
  return file
}

module.exports = { render, writeJson, aggregate, ROWS }
