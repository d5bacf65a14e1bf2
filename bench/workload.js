'use strict'

// Runs one workload for one system: starts the server, receiver and sender processes, drives
// the workload over IPC under a hard deadline, measures the server from /proc, and always
// stops all three processes. Never throws: failures come back as `result.error`.
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

async function drive (system, wl, res, procs) {
  const server = procs.server = await system.mod.startServer()
  const serverGone = exitAsError(server.child)
  serverGone.catch(() => {})
  const cfg = JSON.stringify({ adapter: system.adapter, plain: !!system.plain, port: server.port, workload: wl.id, ...wl.params })
  procs.receiver = forkNode(ROLE('receiver'), [cfg], 'receiver')
  await Promise.race([waitMsg(procs.receiver, 'ready', 10000), serverGone])
  procs.sender = forkNode(ROLE('sender'), [cfg], 'sender')
  await Promise.race([waitMsg(procs.sender, 'ready', 10000), serverGone])

  const { sender, receiver } = procs
  const cpu0 = cpuMicros(server.pid)
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
  const cpu1 = cpuMicros(server.pid)
  res.routed = routed
  res.serverCpuMs = (cpu1 - cpu0) / 1000
  res.cpuPerMsgUs = routed > 0 ? (cpu1 - cpu0) / routed : null
  res.peakRssMB = memKiB(server.pid, 'VmHWM') / 1024
  res.serverStats = await askStats(server.child)
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
    await stop([procs.sender, procs.receiver, procs.server && procs.server.child])
  }
  res.wallSecs = (Date.now() - started) / 1000
  return res
}

module.exports = { runWorkload }
