'use strict'

// ricochet-cluster adapter: one nats-server (started like the nats system) and two ricochet
// server processes joined over it as cluster nodes edge-1 and edge-2. The sender connects to
// edge-1 and the receiver to edge-2, so every message, request and reply crosses the cluster.
// Role side: exactly the ricochet adapter (the system runs plaintext, like ricochet-plain).
const path = require('node:path')
const { connect, USERS } = require('./ricochet')

const SCRIPT = path.join(__dirname, '..', 'ricochet-server.js')

async function startServer () {
  const h = require('../harness')
  const nats = await require('./nats').startServer()
  const url = `nats://127.0.0.1:${nats.port}`
  const edges = []
  try {
    // Both nodes start in parallel; 'listening' comes after listen() has joined the cluster.
    const started = await Promise.allSettled(['edge-1', 'edge-2'].map((name) =>
      h.startNodeServer(SCRIPT, `ricochet-server ${name}`, 10000, [JSON.stringify({ cluster: { nats: url, name } })])))
    for (const s of started) if (s.status === 'fulfilled') edges.push(s.value)
    const failed = started.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason
  } catch (err) {
    await h.stop(edges.map((e) => e.child))
    await h.stop([nats.child])
    throw err
  }
  const [e1, e2] = edges
  return {
    child: e1.child,
    pid: e1.pid,
    port: e1.port, // the sender's server
    receiverPort: e2.port,
    // Measured (CPU summed, RSS max) and stats-polled: the two ricochet nodes. The nats-server
    // is watched and stopped too, and its CPU is recorded separately (brokerCpuPerMsgUs).
    procs: [
      { name: 'edge-1', child: e1.child, pid: e1.pid, role: 'server' },
      { name: 'edge-2', child: e2.child, pid: e2.pid, role: 'server' },
      { name: 'nats-server', child: nats.child, pid: nats.pid, role: 'broker' }
    ]
  }
}

module.exports = { USERS, startServer, connect }
