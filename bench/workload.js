'use strict'

// Runs one workload for one system: starts the server, receiver and sender processes, drives
// the workload over IPC under a hard deadline, measures the server from /proc, and always
// stops all of them. Never throws: failures come back as `result.error`.
// A system's startServer() may return `procs` ([{name, child, pid, role: 'server'|'broker'}])
// for several server processes (ricochet-cluster): CPU is summed and peak RSS is the max over
// the 'server' ones, 'broker' CPU is reported separately; `receiverPort` sends the receiver
// to another server than the sender. A server that is not a forked Node process gives its
// counters through `stats()` (ricochet-native) instead of answering {type:'stats'} over IPC.
const path = require('node:path')
const { forkNode, waitMsg, stop, askStats, describeExit } = require('./harness')
const { cpuMicros, memKiB } = require('./proc')

const ROLE = (name) => path.join(__dirname, 'roles', `${name}.js`)
const LONG = 3600e3 // waits bounded by the deadline instead

function exitAsError (child) {
  return new Promise((_, reject) => {
    if (child.exitInfo) return reject(new Error(describeExit(child)))
    child.once('exit', () => reject(new Error(describeExit(child))))
  })
}

/** Every server-side process of a started system (see the header). */
function serverProcs (server) {
  return server.procs || [{ name: 'server', child: server.child, pid: server.pid, role: 'server' }]
}

const sumCpu = (list) => list.reduce((t, p) => t + cpuMicros(p.pid), 0)

async function drive (system, wl, res, procs) {
  const server = procs.server = await system.mod.startServer()
  const all = serverProcs(server)
  const measured = all.filter((p) => p.role !== 'broker')
  const brokers = all.filter((p) => p.role === 'broker')
  const serverGone = Promise.race(all.map((p) => exitAsError(p.child)))
  serverGone.catch(() => {})
  const cfg = (port) => JSON.stringify({ adapter: system.adapter, plain: !!system.plain, port, workload: wl.id, ...wl.params })
  procs.receiver = forkNode(ROLE('receiver'), [cfg(server.receiverPort || server.port)], 'receiver')
  await Promise.race([waitMsg(procs.receiver, 'ready', 10000), serverGone])
  procs.sender = forkNode(ROLE('sender'), [cfg(server.port)], 'sender')
  await Promise.race([waitMsg(procs.sender, 'ready', 10000), serverGone])

  const { sender, receiver } = procs
  // The clients' CPU too: with three processes on two cores, their sum sets W1's rate.
  const clientCpu0 = [cpuMicros(sender.pid), cpuMicros(receiver.pid)]
  const cpu0 = sumCpu(measured)
  const brokerCpu0 = sumCpu(brokers)
  let routed
  if (wl.id === 'W1') {
    const sentP = waitMsg(sender, 'sent', LONG).then((m) => {
      if (receiver.connected) receiver.send({ type: 'sent' })
      return m
    })
    const doneP = waitMsg(receiver, 'done', LONG)
    sender.send({ type: 'start' })
    const [s, d] = await Promise.race([Promise.all([sentP, doneP]), serverGone])
    const secs = Number(BigInt(d.lastNs) - BigInt(d.firstNs)) / 1e9
    Object.assign(res, {
      sent: s.sent,
      received: d.received,
      loss: s.sent - d.received,
      outOfOrder: d.outOfOrder,
      throughput: d.received > 1 && secs > 0 ? (d.received - 1) / secs : null,
      senderSecs: s.sendSecs,
      drainWaits: s.drainWaits,
      clientErrors: { sender: s.errors, receiver: d.errors }
    })
    routed = d.received
  } else {
    const doneP = waitMsg(sender, 'done', LONG)
    sender.send({ type: 'start' })
    const d = await Promise.race([doneP, serverGone])
    Object.assign(res, {
      rps: d.rps,
      p50: d.p50,
      p99: d.p99,
      roundTrips: d.total,
      samples: d.samples,
      failed: d.failed,
      mismatched: d.mismatched,
      firstError: d.firstError,
      clientErrors: { sender: d.errors }
    })
    routed = 2 * d.total
  }
  const cpu1 = sumCpu(measured)
  // Per delivered message (W1) or per round trip (W2, W3; the sender is the requester).
  const perUnit = wl.id === 'W1' ? routed : routed / 2
  if (perUnit > 0) {
    res.senderCpuPerMsgUs = (cpuMicros(sender.pid) - clientCpu0[0]) / perUnit
    res.receiverCpuPerMsgUs = (cpuMicros(receiver.pid) - clientCpu0[1]) / perUnit
  }
  res.routed = routed
  res.serverCpuMs = (cpu1 - cpu0) / 1000
  res.cpuPerMsgUs = routed > 0 ? (cpu1 - cpu0) / routed : null
  const rss = measured.map((p) => memKiB(p.pid, 'VmHWM') / 1024)
  res.peakRssMB = Math.max(...rss)
  if (!server.procs) {
    res.serverStats = server.stats ? await server.stats() : await askStats(server.child)
    return
  }
  res.serverProcs = measured.length
  res.peakRssEachMB = rss
  if (brokers.length) {
    const b = sumCpu(brokers) - brokerCpu0
    res.brokerCpuMs = b / 1000
    res.brokerCpuPerMsgUs = routed > 0 ? b / routed : null
  }
  // Counters summed over the nodes (the notes read the sums); per node in serverStatsEach.
  const each = await Promise.all(measured.map((p) => askStats(p.child)))
  res.serverStatsEach = each
  res.serverStats = each.reduce((t, s) => {
    if (!s) return t
    for (const k of ['routed', 'messageErrors', 'clientErrors', 'disconnects']) t[k] = (t[k] || 0) + (s[k] || 0)
    t.firstError = t.firstError || s.firstError
    return t
  }, {})
}

/** Partial W1 figures from a receiver that is still alive (after a timeout or sender failure). */
async function partialW1 (res, receiver) {
  if (!receiver || !receiver.connected) return
  const p = waitMsg(receiver, 'done', 500).catch(() => null)
  receiver.send({ type: 'report' })
  const d = await p
  if (d) Object.assign(res, { received: d.received, outOfOrder: d.outOfOrder, clientErrors: { receiver: d.errors } })
}

async function runWorkload (system, wl, deadlineMs) {
  const res = { system: system.id, workload: wl.id, ok: false }
  const procs = {}
  const started = Date.now()
  let timer
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: not finished within ${deadlineMs / 1000} s`)), deadlineMs)
  })
  try {
    await Promise.race([drive(system, wl, res, procs), deadline])
    res.ok = true
  } catch (err) {
    res.error = String(err && err.message ? err.message : err).split('\n')[0].slice(0, 300)
    if (wl.id === 'W1' && res.received === undefined) await partialW1(res, procs.receiver)
  } finally {
    clearTimeout(timer)
    await stop([procs.sender, procs.receiver])
    const all = procs.server ? serverProcs(procs.server) : []
    await stop(all.filter((p) => p.role !== 'broker').map((p) => p.child))
    await stop(all.filter((p) => p.role === 'broker').map((p) => p.child))
  }
  res.wallSecs = (Date.now() - started) / 1000
  return res
}

module.exports = { runWorkload }
