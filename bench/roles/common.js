'use strict'

// Shared by the sender and receiver processes: config from argv, the system adapter, IPC helpers.
const cfg = JSON.parse(process.argv[2])

// Reports failures to the driver and exits with it (tools/ipc.js).
const { send, fail } = require('../../tools/ipc').childSetup()

/** The ~200-byte payload. */
const DATA = 'x'.repeat(160)
const payload = (seq) => ({ seq, ts: Date.now(), data: DATA })

function connect (role) {
  return require(`../systems/${cfg.adapter}`).connect(role, cfg)
}

module.exports = { cfg, send, fail, payload, connect }
