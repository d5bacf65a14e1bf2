'use strict'

// Soak test: `node soak/run.js [--quick] [--clients N] [--messages M] [--workers K]
//   [--deadline S] [--inflight B] [--connect-concurrency C] [--fd-limit F] [--inject lose|duplicate|reorder]`.
// One server process (soak/server.js) and K worker processes (soak/worker.js) holding the
// clients. Every client authenticates (publicKey k<i> → channel c<i>), then client i sends its
// share of the messages to client (i+1) mod N, one in INSECURE_EVERY with insecure(); receivers
// check that every message arrives exactly once and in order. The driver paces the traffic
// with a global in-flight budget, samples the RSS of every process from /proc, prints a
// markdown summary and writes JSON (and the summary) to soak/results/. Hard deadline; every
// child process is stopped on the way out. Exit code: 0 pass, 1 a check failed, 2 driver error.
// Node raises its soft open-file limit to the hard one by itself; when even the hard limit is too
// low the children are started as `bash -c 'ulimit -n …; exec node …'` (--fd-limit F forces that).
// --inject makes client 0 lose, duplicate or swap one message: a self-test that must fail.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const P = require('./proc')
const S = require('./shared')

const SERVER = path.join(__dirname, 'server.js')
const WORKER = path.join(__dirname, 'worker.js')
const FD_MARGIN = 256 // descriptors besides the sockets (node, tokio, pipes, libraries)
const RAISED_FD_LIMIT = 65536

function parseArgs (argv) {
  const opts = { quick: false }
  const rest = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i])
    const num = (name) => {
      const v = Number(val())
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`)
      return v
    }
    if (a === '--quick') opts.quick = true
    else if (a.startsWith('--clients')) rest.clients = num('--clients')
    else if (a.startsWith('--messages')) rest.messages = num('--messages')
    else if (a.startsWith('--workers')) rest.workers = num('--workers')
    else if (a.startsWith('--deadline')) rest.deadlineSecs = num('--deadline')
    else if (a.startsWith('--inflight')) rest.inflight = num('--inflight')
    else if (a.startsWith('--connect-concurrency')) rest.connectConcurrency = num('--connect-concurrency')
    else if (a.startsWith('--fd-limit')) rest.fdLimit = num('--fd-limit')
    else if (a.startsWith('--inject')) {
      rest.inject = val()
      if (!['lose', 'duplicate', 'reorder'].includes(rest.inject)) throw new Error('--inject takes lose, duplicate or reorder')
    } else throw new Error(`unknown argument ${a} (use --quick, --clients N, --messages M, --workers K, --deadline S, --inflight B, --connect-concurrency C, --fd-limit F, --inject lose|duplicate|reorder)`)
  }
  const base = opts.quick
    ? { clients: 1000, messages: 100000, workers: 4, deadlineSecs: 60 }
    : { clients: 10000, messages: 1000000, workers: 4, deadlineSecs: 600 }
  Object.assign(opts, {
    ...base,
    inflight: 20000, // messages sent and not yet received, over all workers
    connectConcurrency: 200, // handshakes in progress at once, over all workers
    burst: 4, // messages a sender writes per visit of the send loop
    highWaterMark: 64 * 1024, // per client: stop sending and wait for 'drain' past this
    stallSecs: opts.quick ? 10 : 30, // no message received for this long during traffic = stall
    ...rest
  })
  if (opts.clients < 2) throw new Error('--clients must be at least 2')
  opts.workers = Math.min(opts.workers, opts.clients)
  return opts
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const MiB = (kib) => (kib == null ? null : kib / 1024)
const fmt = (n, d = 0) => (n == null || Number.isNaN(n) ? '—' : Number(n).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }))
const log = (...a) => console.error('soak:', ...a)

/**
 * Decides whether children must be started under `ulimit -n`, or fails with a clear message.
 * Raising the soft limit up to the hard one needs no privilege; past it, CAP_SYS_RESOURCE (root
 * in most setups, not in every container), so the raise is tried once here first.
 */
function planFdLimit (opts) {
  const needServer = opts.clients + FD_MARGIN
  const needWorker = Math.ceil(opts.clients / opts.workers) + FD_MARGIN
  const need = Math.max(needServer, needWorker)
  const own = P.fdLimits()
  const plan = { needServer, needWorker, soft: own.soft, hard: own.hard, raiseTo: null }
  if (own.soft >= need && !opts.fdLimit) return plan
  const target = opts.fdLimit ||
    (own.hard >= need ? Math.min(own.hard, Math.max(RAISED_FD_LIMIT, need)) : Math.max(RAISED_FD_LIMIT, need))
  try {
    execFileSync('bash', ['-c', `ulimit -n ${target}`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    const why = String((err.stderr || err.message || '')).trim().split('\n').pop()
    throw new Error(`open file limit too low: the server needs ${needServer} descriptors and each worker ${needWorker}, ` +
      `but 'ulimit -n' is ${own.soft} (hard ${own.hard}) and raising it to ${target} failed (${why}). ` +
      `Raise it before running (e.g. 'ulimit -n ${need}' as root), or use fewer --clients / more --workers.`)
  }
  plan.raiseTo = target
  return plan
}

function portRangeSize () {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    return hi - lo + 1
  } catch (_) {
    return null
  }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  P.installCleanup()
  const t0 = Date.now()
  const custom = ['clients', 'messages', 'workers', 'inflight', 'inject'].some((k) => process.argv.some((a) => a.startsWith(`--${k}`)))
  const mode = (opts.quick ? 'quick' : 'full') + (custom ? '-custom' : '')
  const result = {
    mode,
    startedAt: new Date().toISOString(),
    options: opts,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0] && os.cpus()[0].model,
      totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      loadAvgAtStart: os.loadavg().map((x) => Number(x.toFixed(2)))
    },
    phases: {},
    memory: {},
    failures: []
  }
  const failures = result.failures
  let server = null
  const workers = []

  // Everything below is raced against the hard deadline and against any child dying early.
  let abort
  const aborted = new Promise((resolve, reject) => { abort = reject })
  aborted.catch(() => {})
  const deadlineTimer = setTimeout(() => abort(new Error(`hard deadline of ${opts.deadlineSecs} s reached`)), opts.deadlineSecs * 1000)
  const guard = (p) => Promise.race([p, aborted])
  let stopping = false
  const watch = (child) => {
    child.on('message', (m) => {
      if (m && m.type === 'error') abort(new Error(`process failed: ${child.soakName}: ${m.error}`))
    })
    child.once('exit', () => {
      if (!stopping) abort(new Error(`process failed: ${P.describeExit(child)}`))
    })
  }

  // Worker reports, also gathered after a failure when the workers still answer.
  const reports = new Array(opts.workers).fill(null)
  const collectReports = async (ms) => {
    await Promise.all(workers.map(async (w, k) => {
      if (!w || w.exitInfo) return
      const p = P.waitMsg(w, 'report', ms).then((m) => { reports[k] = m.report }, () => {})
      P.send(w, { type: 'report' })
      await p
    }))
  }
  const askServer = async (ms, extra = {}) => {
    if (!server || server.exitInfo) return null
    const p = P.waitMsg(server, 'stats', ms).then((m) => m.stats, () => null)
    P.send(server, { type: 'stats', ...extra })
    return p
  }

  let trafficDone = false
  try {
    // ---- preflight --------------------------------------------------------------------------
    const fd = planFdLimit(opts)
    result.fdLimit = fd
    if (fd.raiseTo) log(`open file limit ${fd.soft}, ${Math.max(fd.needServer, fd.needWorker)} needed: starting children under 'ulimit -n ${fd.raiseTo}'`)
    const ports = portRangeSize()
    if (ports !== null && ports < opts.clients + 100) {
      throw new Error(`net.ipv4.ip_local_port_range has ${ports} ports, fewer than the ${opts.clients} client connections to one server port`)
    }
    log(`${mode}: ${fmt(opts.clients)} clients in ${opts.workers} workers, ${fmt(opts.messages)} messages, deadline ${opts.deadlineSecs} s, load average ${result.machine.loadAvgAtStart.join(' ')}`)

    // ---- server -----------------------------------------------------------------------------
    const serverCfg = { clients: opts.clients, maxConnections: Math.max(20000, opts.clients * 2) }
    server = P.startNode(SERVER, [JSON.stringify(serverCfg)], { name: 'server', fdLimit: fd.raiseTo })
    watch(server)
    const listening = await guard(P.waitMsg(server, 'listening', 15000))
    if (listening.fdLimit < fd.needServer) throw new Error(`server open file limit is ${listening.fdLimit}, needs ${fd.needServer}`)
    const serverPid = listening.pid
    result.server = { pid: serverPid, port: listening.port, fdLimit: listening.fdLimit, maxConnections: serverCfg.maxConnections }
    await guard(sleep(500))
    result.memory.serverIdleKiB = P.memKiB(serverPid)

    // ---- workers ----------------------------------------------------------------------------
    const perWorkerConcurrency = Math.max(1, Math.ceil(opts.connectConcurrency / opts.workers))
    for (let k = 0; k < opts.workers; k++) {
      const wcfg = {
        port: listening.port,
        worker: k,
        workers: opts.workers,
        clients: opts.clients,
        messages: opts.messages,
        connectConcurrency: perWorkerConcurrency,
        burst: opts.burst,
        highWaterMark: opts.highWaterMark,
        inject: opts.inject || null
      }
      const w = P.startNode(WORKER, [JSON.stringify(wcfg)], { name: `worker${k}`, fdLimit: fd.raiseTo })
      watch(w)
      workers.push(w)
    }
    const loaded = await guard(Promise.all(workers.map((w) => P.waitMsg(w, 'loaded', 20000))))
    loaded.forEach((m, k) => {
      if (m.fdLimit < fd.needWorker) throw new Error(`worker${k} open file limit is ${m.fdLimit}, needs ${fd.needWorker}`)
    })
    const wpids = loaded.map((m) => m.pid)
    const wclients = loaded.map((m) => m.clients)
    result.workers = loaded.map((m) => ({ pid: m.pid, clients: m.clients, fdLimit: m.fdLimit }))
    result.memory.workerIdleKiB = wpids.map((pid) => P.memKiB(pid))
    result.memory.workerIdleHeap = loaded.map((m) => m.memory)

    // ---- connect ----------------------------------------------------------------------------
    const connectStart = Date.now()
    const readyCount = new Array(opts.workers).fill(0)
    const onConnecting = workers.map((w, k) => {
      const fn = (m) => { if (m && m.type === 'connecting') readyCount[k] = m.ready }
      w.on('message', fn)
      return fn
    })
    const connectLog = setInterval(() => {
      log(`connecting: ${fmt(readyCount.reduce((a, b) => a + b, 0))}/${fmt(opts.clients)} ready, server RSS ${fmt(MiB(P.memKiB(serverPid)), 1)} MiB`)
    }, 3000)
    for (const w of workers) P.send(w, { type: 'connect' })
    let readyMsgs
    try {
      readyMsgs = await guard(Promise.all(workers.map((w) => P.waitMsg(w, 'ready', opts.deadlineSecs * 1000))))
    } finally {
      clearInterval(connectLog)
      workers.forEach((w, k) => w.off('message', onConnecting[k]))
    }
    const connectSecs = (Date.now() - connectStart) / 1000
    result.phases.connectSecs = connectSecs
    result.phases.connectPerWorker = readyMsgs.map((m) => m.connect)
    log(`all ${fmt(opts.clients)} clients ready in ${connectSecs.toFixed(1)} s`)

    await guard(sleep(1000))
    result.memory.serverReadyKiB = P.memKiB(serverPid)
    result.memory.serverReadyFds = P.openFds(serverPid)
    result.memory.workerReadyKiB = wpids.map((pid) => P.memKiB(pid))
    result.memory.workerReadyHeap = readyMsgs.map((m) => m.memory)
    const readyStats = await guard(askServer(10000, { clients: true }))
    result.serverAtReady = readyStats
    if (!readyStats || readyStats.clientsListed !== opts.clients) {
      throw new Error(`server lists ${readyStats && readyStats.clientsListed} authenticated clients, expected ${opts.clients}`)
    }

    // ---- traffic ----------------------------------------------------------------------------
    const prog = workers.map(() => ({ sent: 0, received: 0, unique: 0 }))
    const limits = new Array(opts.workers).fill(Math.floor(opts.inflight / opts.workers))
    const done = new Array(opts.workers).fill(false)
    let maxInflight = 0
    const peak = { server: 0, workers: wpids.map(() => 0) }
    let resolveTraffic
    const trafficP = new Promise((resolve) => { resolveTraffic = resolve })
    const sum = (key) => prog.reduce((a, p) => a + p[key], 0)
    const onTraffic = workers.map((w, k) => {
      const fn = (m) => {
        if (!m) return
        if (m.type === 'progress') {
          prog[k] = m
          const inflight = sum('sent') - sum('received')
          if (inflight > maxInflight) maxInflight = inflight
          const grant = Math.max(0, opts.inflight - inflight)
          const lim = m.sent + Math.floor(grant / opts.workers)
          if (lim > limits[k]) {
            limits[k] = lim
            P.send(w, { type: 'credit', limit: lim })
          }
        } else if (m.type === 'done') {
          done[k] = true
          if (done.every(Boolean)) resolveTraffic()
        }
      }
      w.on('message', fn)
      return fn
    })
    let lastReceived = 0
    let lastChange = Date.now()
    let lastLog = Date.now()
    let lastLogReceived = 0
    let stallReject
    const stallP = new Promise((resolve, reject) => { stallReject = reject })
    stallP.catch(() => {})
    const sampler = setInterval(() => {
      const s = P.memKiB(serverPid)
      if (s > peak.server) peak.server = s
      wpids.forEach((pid, k) => {
        const r = P.memKiB(pid)
        if (r > peak.workers[k]) peak.workers[k] = r
      })
      const received = sum('received')
      const now = Date.now()
      if (received !== lastReceived) {
        lastReceived = received
        lastChange = now
      } else if (now - lastChange > opts.stallSecs * 1000) {
        stallReject(new Error(`stall: no message received for ${opts.stallSecs} s (${fmt(sum('sent'))} sent, ${fmt(received)} received)`))
      }
      if (now - lastLog >= 5000) {
        const rate = (received - lastLogReceived) / ((now - lastLog) / 1000)
        log(`traffic: ${fmt(sum('sent'))} sent, ${fmt(received)} received (${fmt(rate)} msgs/s), in flight ${fmt(sum('sent') - received)}, server RSS ${fmt(MiB(s), 1)} MiB`)
        lastLog = now
        lastLogReceived = received
      }
    }, 100)
    const trafficStart = process.hrtime.bigint()
    workers.forEach((w, k) => P.send(w, { type: 'start', limit: limits[k] }))
    try {
      await guard(Promise.race([trafficP, stallP]))
      trafficDone = true
    } finally {
      clearInterval(sampler)
      workers.forEach((w, k) => w.off('message', onTraffic[k]))
      const secs = Number(process.hrtime.bigint() - trafficStart) / 1e9
      result.phases.trafficSecs = secs
      result.phases.maxInflightSeen = maxInflight
      result.memory.serverPeakTrafficKiB = peak.server || null
      result.memory.workerPeakTrafficKiB = peak.workers
      result.memory.serverHwmKiB = P.memKiB(serverPid, 'VmHWM')
      result.memory.workerHwmKiB = wpids.map((pid) => P.memKiB(pid, 'VmHWM'))
    }
    log(`traffic done in ${result.phases.trafficSecs.toFixed(1)} s`)
    // Late duplicates would arrive now.
    await guard(sleep(500))
  } catch (err) {
    failures.push(err.message)
    log(`FAILED: ${err.message}`)
  } finally {
    clearTimeout(deadlineTimer)
  }

  // ---- reports and teardown (bounded; runs after a failure too) -----------------------------
  await collectReports(5000)
  result.serverStats = await askServer(5000)
  stopping = true
  const closeRes = await Promise.all(workers.map(async (w) => {
    if (w.exitInfo) return 'exited'
    const p = P.waitMsg(w, 'closed', 20000).then((m) => m.result, (e) => `no close: ${e.message}`)
    P.send(w, { type: 'close' })
    const r = await p
    await P.waitExit(w, 2000)
    return r
  }))
  if (server && !server.exitInfo) {
    const p = P.waitMsg(server, 'closed', 15000).then((m) => m.stats, () => null)
    P.send(server, { type: 'close' })
    const s = await p
    if (s) result.serverStatsAtClose = s
    await P.waitExit(server, 2000)
  }
  await P.stop(P.liveChildren(), 2000)
  result.teardown = {
    workerClose: closeRes,
    exits: [server, ...workers].filter(Boolean).map((c) => ({ name: c.soakName, ...(c.exitInfo || { code: null, signal: 'still running' }) }))
  }
  for (const e of result.teardown.exits) {
    if (e.signal === 'still running') failures.push(`${e.name} could not be stopped`)
    else if (stopping && e.code !== 0 && e.code !== null && !failures.some((f) => f.includes(e.name))) failures.push(`${e.name} exited with code ${e.code}`)
  }

  // ---- checks -------------------------------------------------------------------------------
  result.reports = reports
  const got = reports.filter(Boolean)
  const total = (key) => got.reduce((a, r) => a + r[key], 0)
  const ev = (key) => got.reduce((a, r) => a + r.events[key], 0)
  const delivery = {
    reportsFrom: got.length,
    sent: total('sent'),
    expected: total('expected'),
    unique: total('unique'),
    frames: total('frames'),
    lost: total('lost'),
    duplicated: total('duplicated'),
    reordered: total('reordered'),
    gaps: total('gaps'),
    corrupt: total('corrupt')
  }
  result.delivery = delivery
  if (got.length !== opts.workers) failures.push(`only ${got.length} of ${opts.workers} workers reported`)
  if (got.length) {
    if (delivery.lost && trafficDone) failures.push(`${delivery.lost} message(s) lost`)
    else if (delivery.lost) failures.push(`${delivery.lost} message(s) not delivered when the run stopped (${delivery.expected - delivery.sent} of them never sent)`)
    if (delivery.duplicated) failures.push(`${delivery.duplicated} message(s) duplicated`)
    if (delivery.reordered) failures.push(`${delivery.reordered} message(s) reordered`)
    if (delivery.corrupt) failures.push(`${delivery.corrupt} message(s) corrupt (wrong sender, seq, channel or encrypted flag)`)
    if (delivery.sent !== opts.messages && trafficDone) failures.push(`${delivery.sent} messages sent, expected ${opts.messages}`)
  }
  const clientErrors = {}
  for (const k of ['authFail', 'connectionFail', 'disconnected', 'sendError', 'receiveError', 'error', 'timeout', 'notHandled']) clientErrors[k] = ev(k)
  result.clientErrors = clientErrors
  const badClient = Object.entries(clientErrors).filter(([, v]) => v > 0)
  if (badClient.length) failures.push(`client errors: ${badClient.map(([k, v]) => `${k} ${v}`).join(', ')}`)
  const ss = result.serverStats
  if (ss) {
    const serverErrors = { authFail: ss.authFail, rejected: ss.rejected, clientError: ss.clientError, clientTimeout: ss.clientTimeout, messageError: ss.messageError, invalidMessage: ss.invalidMessage, eventsDropped: ss.eventsDropped }
    result.serverErrors = serverErrors
    const bad = Object.entries(serverErrors).filter(([, v]) => v > 0)
    if (bad.length) failures.push(`server errors: ${bad.map(([k, v]) => `${k} ${v}`).join(', ')}`)
    if (trafficDone && ss.routed !== opts.messages) failures.push(`server routed ${ss.routed} frames, expected ${opts.messages}`)
    if (ss.disconnected > 0) failures.push(`server saw ${ss.disconnected} disconnects before teardown`)
  }

  // ---- figures ------------------------------------------------------------------------------
  const m = result.memory
  const per = (a, b, n) => (a != null && b != null && n ? ((a - b) * 1024) / n : null)
  const mean = (xs) => (xs && xs.length && xs.every((x) => x != null) ? xs.reduce((a, b) => a + b, 0) / xs.length : null)
  const wClients = (result.workers || []).map((w) => w.clients)
  const workerPer = (arr) => (arr && m.workerIdleKiB ? mean(arr.map((v, k) => per(v, m.workerIdleKiB[k], wClients[k]))) : null)
  result.figures = {
    passed: failures.length === 0,
    msgsPerSec: result.phases.trafficSecs && trafficDone ? opts.messages / result.phases.trafficSecs : null,
    serverBytesPerConnReady: per(m.serverReadyKiB, m.serverIdleKiB, opts.clients),
    serverBytesPerConnPeak: per(m.serverPeakTrafficKiB, m.serverIdleKiB, opts.clients),
    workerBytesPerClientReady: workerPer(m.workerReadyKiB),
    workerBytesPerClientPeak: workerPer(m.workerPeakTrafficKiB),
    workerHeapBytesPerClient: m.workerReadyHeap && m.workerIdleHeap ? mean(m.workerReadyHeap.map((h, k) => (h.heapUsed - m.workerIdleHeap[k].heapUsed) / wClients[k])) : null,
    totalSecs: (Date.now() - t0) / 1000
  }
  result.machine.loadAvgAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)))
  result.finishedAt = new Date().toISOString()

  const md = render(result)
  console.log(md)
  const dir = path.join(__dirname, 'results')
  fs.mkdirSync(dir, { recursive: true })
  const stamp = result.startedAt.replace(/[:.]/g, '-')
  const file = path.join(dir, `${stamp}-${mode}.json`)
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  fs.writeFileSync(file.replace(/\.json$/, '.md'), md + '\n')
  log(`results: ${path.relative(process.cwd(), file)} (${result.figures.totalSecs.toFixed(1)} s)`)
  process.exitCode = failures.length ? 1 : 0
}

function render (r) {
  const m = r.memory
  const f = r.figures
  const d = r.delivery
  const o = r.options
  const mib = (kib) => (kib == null ? '—' : `${fmt(MiB(kib), 1)} MiB`)
  const bytes = (b) => (b == null ? '—' : `${fmt(b)} B (${fmt(b / 1024, 1)} KiB)`)
  const mibList = (xs) => (xs && xs.length ? xs.map((x) => fmt(MiB(x), 1)).join(' / ') + ' MiB' : '—')
  const conn = r.phases.connectPerWorker
  const connP99 = conn ? Math.max(...conn.map((c) => c.p99)) : null
  const connMax = conn ? Math.max(...conn.map((c) => c.max)) : null
  const rows = [
    ['result', f.passed ? '**PASS**' : `**FAIL**: ${r.failures.join('; ')}`],
    ['clients (authenticated, one server)', `${fmt(o.clients)} in ${o.workers} worker processes`],
    ['messages', `${fmt(o.messages)} (client i → client i+1; 1 in ${S.INSECURE_EVERY} insecure(), the rest encrypted aes-256-xts)`],
    ['connect + authenticate all clients', r.phases.connectSecs != null ? `${fmt(r.phases.connectSecs, 1)} s (per client p99 ${fmt(connP99)} ms, max ${fmt(connMax)} ms; ${o.connectConcurrency} at a time)` : '—'],
    ['traffic duration', r.phases.trafficSecs != null ? `${fmt(r.phases.trafficSecs, 1)} s` : '—'],
    ['throughput (received)', f.msgsPerSec != null ? `${fmt(f.msgsPerSec)} msgs/s` : '—'],
    ['in flight (budget / max seen)', `${fmt(o.inflight)} / ${fmt(r.phases.maxInflightSeen)}`],
    ['sent / received once', d ? `${fmt(d.sent)} / ${fmt(d.unique)}` : '—'],
    ['lost / duplicated / reordered / corrupt', d ? `${fmt(d.lost)} / ${fmt(d.duplicated)} / ${fmt(d.reordered)} / ${fmt(d.corrupt)}` : '—'],
    ['server frames routed', r.serverStats ? fmt(r.serverStats.routed) : '—'],
    ['client / server error events', `${r.clientErrors ? Object.values(r.clientErrors).reduce((a, b) => a + b, 0) : '—'} / ${r.serverErrors ? Object.values(r.serverErrors).reduce((a, b) => a + b, 0) : '—'}`],
    ['server RSS idle (listening, no clients)', mib(m.serverIdleKiB)],
    ['server RSS, all clients ready', `${mib(m.serverReadyKiB)}${m.serverReadyFds ? ` (${fmt(m.serverReadyFds)} fds open)` : ''}`],
    ['server RSS peak during traffic (VmHWM overall)', `${mib(m.serverPeakTrafficKiB)} (${mib(m.serverHwmKiB)})`],
    ['server memory per connection (ready − idle) / clients', bytes(f.serverBytesPerConnReady)],
    ['server memory per connection at traffic peak', bytes(f.serverBytesPerConnPeak)],
    ['worker RSS idle / ready / peak (each worker)', m.workerIdleKiB ? `${mibList(m.workerIdleKiB)}; ${mibList(m.workerReadyKiB)}; ${mibList(m.workerPeakTrafficKiB)}` : '—'],
    ['worker memory per client (ready − idle), mean', bytes(f.workerBytesPerClientReady)],
    ['worker memory per client at traffic peak, mean', bytes(f.workerBytesPerClientPeak)],
    ['worker JS heap per client (ready − idle heapUsed), mean', bytes(f.workerHeapBytesPerClient)],
    ['wall time / deadline', `${fmt(f.totalSecs, 1)} s / ${o.deadlineSecs} s`],
    ['machine', `${r.machine.cpus} CPUs, load average ${r.machine.loadAvgAtStart.join(' ')} at start, ${r.machine.loadAvgAtEnd.join(' ')} at end, node ${r.machine.node}`]
  ]
  const lines = [`## ricochet soak (${r.mode}): ${f.passed ? 'PASS' : 'FAIL'}`, '', '| metric | value |', '|---|---|']
  for (const [k, v] of rows) lines.push(`| ${k} | ${v} |`)
  const ex = (r.reports || []).filter(Boolean).flatMap((w) => [...w.lostPairs, ...w.examples]).slice(0, 10)
  const sx = (r.serverStats && r.serverStats.examples) || []
  if (ex.length || sx.length) {
    lines.push('', 'First anomalies:')
    for (const e of [...ex, ...sx]) lines.push(`- ${e}`)
  }
  return lines.join('\n')
}

main().catch((err) => {
  console.error('soak: driver error:', err && err.stack ? err.stack : err)
  P.killAll()
  process.exitCode = 2
})
