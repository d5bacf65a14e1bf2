'use strict'

// Sender process. On {type:'start'} runs W1 (cfg.count one-way messages, paced by the adapter's
// backpressure) or a request/reply loop (cfg.inflight concurrent, cfg.warmupMs + cfg.durationMs).
const { cfg, send, fail, payload, connect } = require('./common')

async function oneWay (sys) {
  const n = cfg.count
  const t0 = process.hrtime.bigint()
  let seq = 0
  let waits = 0
  while (seq < n) {
    let ok = true
    let burst = 0
    while (ok && seq < n && burst < 1000) {
      ok = sys.send(payload(seq++))
      burst++
    }
    if (!ok) {
      waits++
      await sys.waitDrain()
    } else {
      await new Promise(setImmediate)
    }
  }
  await sys.flush()
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  send({ type: 'sent', sent: seq, sendSecs: secs, drainWaits: waits, errors: sys.errors() })
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

async function requestReply (sys) {
  const hr = () => process.hrtime.bigint()
  const mStart = hr() + BigInt(cfg.warmupMs) * 1000000n
  const mEnd = mStart + BigInt(cfg.durationMs) * 1000000n
  const lat = []
  let seq = 0
  let total = 0
  let completed = 0
  let failed = 0
  let mismatched = 0
  let firstError = null

  async function worker () {
    for (;;) {
      const t0 = hr()
      if (t0 >= mEnd) return
      const s = seq++
      let res
      try {
        res = await sys.request(payload(s))
      } catch (err) {
        failed++
        firstError = firstError || String(err.code || err.message)
        continue
      }
      const t1 = hr()
      total++
      if (!res || res.seq !== s) mismatched++
      if (t1 >= mStart && t1 < mEnd) {
        completed++
        if (t0 >= mStart) lat.push(Number(t1 - t0) / 1000)
      }
    }
  }
  await Promise.all(Array.from({ length: cfg.inflight }, worker))
  lat.sort((a, b) => a - b)
  send({
    type: 'done',
    total,
    completed,
    rps: completed / (cfg.durationMs / 1000),
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    samples: lat.length,
    failed,
    mismatched,
    firstError,
    errors: sys.errors()
  })
}

async function main () {
  const sys = await connect('sender')
  send({ type: 'ready' })
  process.on('message', (m) => {
    if (!m || m.type !== 'start') return
    const run = cfg.workload === 'W1' ? oneWay(sys) : requestReply(sys)
    run.catch(fail)
  })
}

main().catch(fail)
