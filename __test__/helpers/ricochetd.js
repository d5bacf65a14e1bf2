'use strict'

// The ricochetd daemon (target/release/ricochetd, built by `npm run build`), spawned as an
// operator runs it, with stdout and stderr captured.
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { until } = require('./waiting')

const DAEMON = path.join(__dirname, '..', '..', 'target', 'release', 'ricochetd')

/** Throws a clear message when the binary has not been built. */
function assertBuilt () {
  if (!fs.existsSync(DAEMON)) throw new Error(`${DAEMON} is missing: run \`npm run build:daemon\``)
}

/**
 * Spawns ricochetd; returns {child, out, err, code, signal, exit}. `exit` resolves with the exit
 * code once the process has exited and its output is complete ('close', not 'exit').
 */
function spawnDaemon (args) {
  const child = spawn(DAEMON, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const entry = { child, out: '', err: '', code: null }
  child.stdout.on('data', (d) => { entry.out += d })
  child.stderr.on('data', (d) => { entry.err += d })
  entry.exit = new Promise((resolve) => child.on('close', (code, signal) => {
    entry.code = code
    entry.signal = signal
    resolve(code)
  }))
  return entry
}

/** Resolves with the port of ricochetd's `listening <host>:<port>` line. */
async function listeningPort (entry, ms = 10000) {
  const re = /listening \S+:(\d+)/
  await until(() => re.test(entry.out) || entry.code !== null, ms, 'the listening line')
  const m = entry.out.match(re)
  if (!m) throw new Error(`ricochetd exited (${entry.code}) before listening: ${entry.err}`)
  return Number(m[1])
}

module.exports = { DAEMON, assertBuilt, spawnDaemon, listeningPort }
