'use strict'

// Shared by the sender and receiver processes: config from argv, the system adapter, IPC helpers.
const cfg = JSON.parse(process.argv[2])

// Die with the driver (IPC closes when it exits).
process.on('disconnect', () => process.exit(0))
// A clean exit on SIGTERM lets --cpu-prof (BENCH_CPU_PROF) write its profile.
process.on('SIGTERM', () => process.exit(0))

function fail (err) {
  const error = err && err.stack ? err.stack : String(err)
  if (process.connected) process.send({ type: 'error', error }, () => process.exit(1))
  else process.exit(1)
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

const send = (msg) => { if (process.connected) process.send(msg) }

/** The ~200-byte payload. */
const DATA = 'x'.repeat(160)
const payload = (seq) => ({ seq, ts: Date.now(), data: DATA })

function connect (role) {
  return require(`../systems/${cfg.adapter}`).connect(role, cfg)
}

module.exports = { cfg, send, fail, payload, connect }
