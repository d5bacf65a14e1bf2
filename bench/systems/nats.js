'use strict'

// NATS adapter. Driver side: finds (or apt-installs) nats-server and starts it on a free port.
// Role side: the `nats` npm client; publish/subscribe for W1 (flushing every FLUSH_EVERY
// messages), request/respond for W2/W3. Bodies are JSON text, like the other systems.
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const FLUSH_EVERY = 2000
let binary = null

/** The nats-server path; runs `apt-get install -y nats-server` once if it is missing. */
function findBinary () {
  if (binary) return binary
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'])
  const look = () => dirs.map((d) => path.join(d, 'nats-server')).find((p) => {
    try { fs.accessSync(p, fs.constants.X_OK); return true } catch (_) { return false }
  })
  binary = look()
  if (binary) return binary
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('nats-server is not installed and we are not root: run `apt-get install -y nats-server`')
  }
  console.error('bench: nats-server not found, running apt-get install -y nats-server ...')
  try {
    execFileSync('apt-get', ['install', '-y', 'nats-server'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 120000
    })
  } catch (err) {
    throw new Error(`apt-get install -y nats-server failed: ${String(err.stderr || err.message).trim().slice(-300)}`)
  }
  binary = look()
  if (!binary) throw new Error('apt-get install nats-server succeeded but nats-server is still not found')
  return binary
}

async function startServer () {
  const h = require('../harness')
  const bin = findBinary()
  let lastErr
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await h.freePort()
    const child = h.spawnBin(bin, ['-a', '127.0.0.1', '-p', String(port)], 'nats-server')
    try {
      await h.waitPort(port, 5000, child)
      return { child, pid: child.pid, port }
    } catch (err) {
      lastErr = err
      await h.stop([child])
    }
  }
  throw lastErr
}

async function connect (role, cfg) {
  const { connect: natsConnect } = require('nats')
  const nc = await natsConnect({ servers: `127.0.0.1:${cfg.port}`, reconnect: false })
  const enc = new TextEncoder()
  const dec = new TextDecoder()
  const errors = { subError: 0, closed: 0, first: null }
  const note = (e) => { errors.subError++; errors.first = errors.first || (e && (e.code || e.message)) }
  nc.closed().then(() => { errors.closed++ })
  let sent = 0

  return {
    send (body) {
      nc.publish('bench.msg', enc.encode(JSON.stringify(body)))
      return ++sent % FLUSH_EVERY !== 0
    },
    waitDrain: () => nc.flush(),
    flush: () => nc.flush(),
    request (body) {
      return nc.request('bench.echo', enc.encode(JSON.stringify(body)), { timeout: 5000 })
        .then((m) => JSON.parse(dec.decode(m.data)))
    },
    onMessage (fn) {
      nc.subscribe('bench.msg', { callback: (err, m) => (err ? note(err) : fn(JSON.parse(dec.decode(m.data)))) })
      return nc.flush()
    },
    serveEcho () {
      nc.subscribe('bench.echo', {
        callback: (err, m) => {
          if (err) return note(err)
          const body = JSON.parse(dec.decode(m.data))
          m.respond(enc.encode(JSON.stringify(body)))
        }
      })
      return nc.flush()
    },
    errors: () => errors,
    close: () => nc.close()
  }
}

module.exports = { startServer, connect }
