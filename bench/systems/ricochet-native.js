'use strict'

// ricochet-native adapter: the server is the ricochetd daemon (target/release/ricochetd, built by
// `npm run build`: the same core without Node) granting the two bench users from a keys file;
// the clients are exactly the ricochet adapter's (the system runs plaintext, like ricochet-plain).
// The daemon logs `listening <host>:<port>` on stdout and serves Prometheus metrics, from which
// stats() reads the routed and failed message counters.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const { connect, USERS } = require('./ricochet')

const DAEMON = path.join(__dirname, '..', '..', 'target', 'release', 'ricochetd')

/** Resolves with the first stdout match of `re` (its groups), or rejects on exit or after `ms`. */
function waitLine (child, re, ms) {
  return new Promise((resolve, reject) => {
    let text = ''
    const done = (fn, v) => {
      clearTimeout(timer)
      child.stdout.off('data', onData)
      child.off('exit', onExit)
      fn(v)
    }
    const onData = (d) => {
      text += d
      const m = text.match(re)
      if (m) done(resolve, m)
    }
    const onExit = () => done(reject, new Error(require('../harness').describeExit(child)))
    const timer = setTimeout(() => done(reject, new Error(`ricochetd: no ${re} within ${ms} ms`)), ms)
    child.stdout.on('data', onData)
    child.once('exit', onExit)
  })
}

/** GET http://host:port/metrics as text; null when it does not answer. */
function scrape (host, port, ms = 1000) {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/metrics', timeout: ms }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve(body))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(null))
  })
}

/** The counters the Node bench server reports over IPC, from the Prometheus text. */
function statsOf (text) {
  if (text === null) return null
  const routed = text.match(/^ricochet_messages_routed_total (\d+)$/m)
  const failed = [...text.matchAll(/^ricochet_messages_failed_total\{code="([^"]+)"\} (\d+)$/gm)]
  return {
    routed: routed ? Number(routed[1]) : null,
    messageErrors: failed.reduce((n, m) => n + Number(m[2]), 0),
    firstError: failed.length ? failed[0][1] : null
  }
}

async function startServer () {
  const h = require('../harness')
  if (!fs.existsSync(DAEMON)) throw new Error(`${DAEMON} is missing: run \`npm run build:daemon\``)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ricochet-native-'))
  fs.writeFileSync(path.join(dir, 'keys.json'), JSON.stringify(USERS))
  const config = path.join(dir, 'ricochet.json')
  fs.writeFileSync(config, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    keys: 'keys.json',
    server: { metrics: { host: '127.0.0.1', port: 0 } }
  }))
  const child = h.spawnBin(DAEMON, ['--config', config], 'ricochetd')
  child.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  try {
    const m = await waitLine(child, /listening [\d.]+:(\d+) .*metrics on ([\d.]+):(\d+)/, 5000)
    const [port, metricsHost, metricsPort] = [Number(m[1]), m[2], Number(m[3])]
    return { child, pid: child.pid, port, stats: async () => statsOf(await scrape(metricsHost, metricsPort)) }
  } catch (err) {
    await h.stop([child])
    throw err
  }
}

module.exports = { USERS, startServer, connect }
