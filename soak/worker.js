'use strict'

// Soak worker process: holds the clients i with i % workers === worker, each a `new Client()`
// on channel c<i>. Protocol with the driver (IPC):
//   → {type:'loaded', pid, fdLimit, clients}        after start-up, before any connection
//   ← {type:'connect'}  → {type:'connecting', ready} (progress) … {type:'ready', connect}
//   ← {type:'start'}    sends this worker's share, never past the cumulative `limit` of the
//   ← {type:'credit', limit} messages the driver grants (the global in-flight budget)
//   → {type:'progress', sent, received, unique}      every PROGRESS_MS
//   → {type:'done'}                                  everything sent and received
//   ← {type:'report'}   → {type:'report', report}    final counts (any time, also after a stall)
//   ← {type:'close'}    → {type:'closed'}            closes every client, then exits
// Each client sends countOf(i) messages {from: i, seq} to c<i+1>; every INSECURE_EVERY-th one
// with insecure(). Each receiver checks its single sender's sequence: exactly once, in order.
const path = require('node:path')
const { Client } = require(path.join(__dirname, '..'))
const { fdLimits } = require('./proc')
const S = require('./shared')

const cfg = JSON.parse(process.argv[2])
const { worker: W, workers: K, clients: N, messages: M } = cfg
const PROGRESS_MS = 50
const CHUNK = 1000 // messages per macrotask before yielding to the event loop

const { send, fail } = require('../tools/ipc').childSetup()

// ---- the local clients -------------------------------------------------------------------
const ids = []
for (let i = 0; i < N; i++) if (S.workerOf(i, K) === W) ids.push(i)
const L = ids.length
const clients = new Array(L)

// Sender side.
const toSend = new Int32Array(L) // messages client ids[li] sends
const nextSend = new Int32Array(L) // next seq to send
const blocked = new Uint8Array(L) // waiting for 'drain'
// Receiver side: client ids[li] receives from senderOf(ids[li]) only.
const expectTotal = new Int32Array(L) // messages its sender sends
const nextSeq = new Int32Array(L) // one past the highest seq seen
const unique = new Int32Array(L)
const dups = new Int32Array(L)
const late = new Int32Array(L) // arrived after a higher seq (reordered)
const gaps = new Int32Array(L) // times a seq was skipped
const corrupt = new Int32Array(L)
const missing = new Map() // li → Set of skipped seqs not yet seen

let expectedAll = 0
for (let li = 0; li < L; li++) {
  const i = ids[li]
  toSend[li] = S.countOf(i, N, M)
  expectTotal[li] = S.countOf(S.senderOf(i, N), N, M)
  expectedAll += expectTotal[li]
}
let sentAll = 0
let toSendAll = 0
for (let li = 0; li < L; li++) toSendAll += toSend[li]
let framesAll = 0
let uniqueAll = 0
let trafficStarted = false
let doneSent = false

const events = {
  ready: 0,
  reconnected: 0,
  disconnected: 0,
  disconnectedInTraffic: 0,
  authFail: 0,
  connectionFail: 0,
  sendError: 0,
  receiveError: 0,
  error: 0,
  timeout: 0,
  notHandled: 0
}
const examples = []
const example = (s) => { if (examples.length < 20) examples.push(s) }

function onFrame (li, body, msg) {
  framesAll++
  const j = ids[li]
  const s = S.senderOf(j, N)
  const seq = body && body.seq
  const h = msg && msg.headers
  const ok = body && body.from === s && Number.isInteger(seq) && seq >= 0 && seq < expectTotal[li] &&
    h && h.from === `c${s}` && h.to === `c${j}` &&
    (S.isInsecure(seq) ? h.encrypted === false : h.encrypted !== false)
  if (!ok) {
    corrupt[li]++
    example(`corrupt at c${j}: headers ${JSON.stringify(h).slice(0, 200)} body ${JSON.stringify(body).slice(0, 120)}`)
    return
  }
  if (seq === nextSeq[li]) {
    nextSeq[li]++
    unique[li]++
    uniqueAll++
  } else if (seq > nextSeq[li]) {
    let set = missing.get(li)
    if (!set) missing.set(li, (set = new Set()))
    for (let k = nextSeq[li]; k < seq; k++) set.add(k)
    example(`gap at c${j} from c${s}: expected seq ${nextSeq[li]}, got ${seq}`)
    gaps[li]++
    nextSeq[li] = seq + 1
    unique[li]++
    uniqueAll++
  } else {
    const set = missing.get(li)
    if (set && set.delete(seq)) {
      late[li]++
      unique[li]++
      uniqueAll++
      example(`reordered at c${j} from c${s}: seq ${seq} after ${nextSeq[li] - 1}`)
      if (set.size === 0) missing.delete(li)
    } else {
      dups[li]++
      example(`duplicate at c${j} from c${s}: seq ${seq}`)
    }
  }
  checkDone()
}

function makeClient (li) {
  const i = ids[li]
  const c = new Client({ highWaterMark: cfg.highWaterMark })
  c.handle(S.HANDLE, (body, msg) => onFrame(li, body, msg))
  c.notHandled((frame) => { events.notHandled++; example(`not handled at c${i}: ${JSON.stringify(frame.headers).slice(0, 200)}`) })
  c.on('reconnected', () => { events.reconnected++ })
  c.on('disconnected', () => {
    events.disconnected++
    if (trafficStarted) events.disconnectedInTraffic++
    example(`c${i} disconnected${trafficStarted ? ' during traffic' : ''}`)
  })
  c.on('authFail', (e) => { events.authFail++; example(`c${i} authFail ${JSON.stringify(e.message).slice(0, 200)}`) })
  c.on('connectionFail', (e) => { events.connectionFail++; example(`c${i} connectionFail ${e.err && (e.err.code || e.err.message)}`) })
  c.on('sendError', (e) => { events.sendError++; example(`c${i} sendError ${e.code}`) })
  c.on('receiveError', (e) => { events.receiveError++; example(`c${i} receiveError ${e.code}`) })
  c.on('error', (e) => { events.error++; example(`c${i} error ${e.code || e.message}`) })
  c.on('timeout', () => { events.timeout++ })
  c.on('drain', () => {
    if (blocked[li]) {
      blocked[li] = 0
      schedulePump()
    }
  })
  clients[li] = c
  return c
}

// ---- connecting ---------------------------------------------------------------------------
async function connectAll () {
  const t0 = Date.now()
  const times = new Float64Array(L)
  let next = 0
  let ready = 0
  const progress = setInterval(() => send({ type: 'connecting', ready }), 250)
  const one = (li) => new Promise((resolve) => {
    const c = makeClient(li)
    const start = process.hrtime.bigint()
    c.once('ready', () => {
      times[li] = Number(process.hrtime.bigint() - start) / 1e6
      events.ready++
      ready++
      resolve()
    })
    c.connect({ host: '127.0.0.1', port: cfg.port, publicKey: `k${ids[li]}`, privateKey: S.PRIVATE_KEY, authKey: S.AUTH_KEY })
  })
  const lanes = Array.from({ length: Math.min(cfg.connectConcurrency, L) }, async () => {
    while (next < L) await one(next++)
  })
  await Promise.all(lanes)
  clearInterval(progress)
  const sorted = Array.from(times).sort((a, b) => a - b)
  const pct = (p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : 0
  return { ms: Date.now() - t0, p50: pct(0.5), p99: pct(0.99), max: sorted[sorted.length - 1] || 0 }
}

// ---- sending ------------------------------------------------------------------------------
let limit = 0 // cumulative messages the driver allows this worker to have sent
let cursor = 0
let pumpQueued = false
let pendingSenders = 0 // senders with messages left
for (let li = 0; li < L; li++) if (toSend[li] > 0) pendingSenders++

function schedulePump () {
  if (!pumpQueued && trafficStarted) {
    pumpQueued = true
    setImmediate(pump)
  }
}

function pump () {
  pumpQueued = false
  let budget = Math.min(limit - sentAll, CHUNK)
  const before = sentAll
  let visited = 0
  // One pass at most over the clients; each sends up to `burst` messages per visit.
  while (budget > 0 && pendingSenders > 0 && visited < L) {
    const li = cursor
    cursor = cursor + 1 === L ? 0 : cursor + 1
    visited++
    if (blocked[li] || nextSend[li] >= toSend[li]) continue
    const c = clients[li]
    const i = ids[li]
    const to = `c${S.receiverOf(i, N)}`
    let n = Math.min(cfg.burst, budget, toSend[li] - nextSend[li])
    while (n-- > 0) {
      const seq = nextSend[li]++
      if (cfg.inject && i === 0 && seq === INJECT_AT && toSend[li] > INJECT_AT + 1) inject(c, to, i, li, seq)
      else {
        if (S.isInsecure(seq)) c.insecure()
        c.message(to, S.HANDLE, { from: i, seq })
      }
      sentAll++
      budget--
    }
    if (nextSend[li] >= toSend[li]) pendingSenders--
    else if (c.bufferedAmount >= cfg.highWaterMark) blocked[li] = 1
  }
  if (pendingSenders > 0 && sentAll < limit) {
    // A whole pass sent nothing: every remaining sender waits for 'drain'. Poll as a safety
    // net against a missed event.
    if (sentAll === before) setTimeout(unblockPoll, 5)
    else schedulePump()
  }
  checkDone()
}

// Self-test of the checks (`run.js --inject lose|duplicate|reorder`): client 0 skips, doubles or
// swaps one message. The run must then fail.
const INJECT_AT = 5
function inject (c, to, i, li, seq) {
  const one = (s) => {
    if (S.isInsecure(s)) c.insecure()
    c.message(to, S.HANDLE, { from: i, seq: s })
  }
  if (cfg.inject === 'duplicate') {
    one(seq)
    one(seq)
  } else if (cfg.inject === 'reorder') {
    one(seq + 1)
    one(seq)
    nextSend[li]++
    sentAll++
  } // 'lose': nothing goes out, but the message counts as sent
}

function unblockPoll () {
  for (let li = 0; li < L; li++) {
    if (blocked[li] && clients[li].bufferedAmount < cfg.highWaterMark) blocked[li] = 0
  }
  schedulePump()
}

function checkDone () {
  if (!doneSent && trafficStarted && sentAll === toSendAll && uniqueAll === expectedAll) {
    doneSent = true
    send({ type: 'done' })
  }
}

function report () {
  let lost = 0
  let duplicated = 0
  let reordered = 0
  let gapCount = 0
  let corrupted = 0
  const lostPairs = []
  for (let li = 0; li < L; li++) {
    const l = expectTotal[li] - unique[li]
    if (l > 0 && lostPairs.length < 10) lostPairs.push(`c${S.senderOf(ids[li], N)}→c${ids[li]}: ${l} of ${expectTotal[li]} missing (next expected ${nextSeq[li]})`)
    lost += l
    duplicated += dups[li]
    reordered += late[li]
    gapCount += gaps[li]
    corrupted += corrupt[li]
  }
  const mem = process.memoryUsage()
  return {
    worker: W,
    clients: L,
    sent: sentAll,
    toSend: toSendAll,
    frames: framesAll,
    expected: expectedAll,
    unique: uniqueAll,
    lost,
    duplicated,
    reordered,
    gaps: gapCount,
    corrupt: corrupted,
    events,
    examples,
    lostPairs,
    readyNow: clients.filter((c) => c && c.ready).length,
    memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external }
  }
}

// ---- driver messages ----------------------------------------------------------------------
let progressTimer = null
process.on('message', async (m) => {
  if (!m) return
  switch (m.type) {
    case 'connect': {
      const connect = await connectAll()
      const mem = process.memoryUsage()
      send({ type: 'ready', connect, memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external } })
      return
    }
    case 'credit':
      if (m.limit > limit) {
        limit = m.limit
        schedulePump()
      }
      return
    case 'start':
      trafficStarted = true
      limit = Math.max(limit, m.limit || 0)
      progressTimer = setInterval(() => send({ type: 'progress', sent: sentAll, received: framesAll, unique: uniqueAll }), PROGRESS_MS)
      send({ type: 'progress', sent: sentAll, received: framesAll, unique: uniqueAll })
      schedulePump()
      checkDone()
      return
    case 'report':
      send({ type: 'report', report: report() })
      return
    case 'close': {
      if (progressTimer) clearInterval(progressTimer)
      const all = Promise.all(clients.filter(Boolean).map((c) => c.close()))
      const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000))
      const r = await Promise.race([all.then(() => 'ok'), timeout])
      send({ type: 'closed', result: r })
      setTimeout(() => process.exit(0), 50)
    }
  }
})

const mem0 = process.memoryUsage()
send({ type: 'loaded', pid: process.pid, fdLimit: fdLimits().soft, clients: L, memory: { rss: mem0.rss, heapUsed: mem0.heapUsed, heapTotal: mem0.heapTotal, external: mem0.external } })
