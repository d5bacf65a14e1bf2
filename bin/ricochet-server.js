#!/usr/bin/env node
'use strict'

// Standalone ricochet server: `ricochet-server --config ricochet.json`. See --help.
const fs = require('node:fs')
const path = require('node:path')
const { Server } = require('..')

const HELP = `Usage: ricochet-server --config <file.json>

Runs a ricochet server without writing code.

Config file (JSON):
  {
    "listen": { "host": "127.0.0.1", "port": 23225 },
    "keys": "keys.json",              // path, relative to the config file
    "cluster": { "nats": "nats://127.0.0.1:4222", "name": "edge-1" },   // optional
    "server": { ... }                 // any Server option: timeouts, maxConnections,
                                      // maxMessageSize, maxQueueSize, encryption, metrics, ...
  }

Keys file (JSON): publicKey -> { privateKey, channel, groups, authKey?, ip? }
  { "pub-api": { "privateKey": "…", "channel": "api", "groups": ["jobs"], "authKey": "…" } }

Signals:
  SIGHUP   reload the keys file; connected clients stay
  SIGTERM  stop accepting, disconnect clients, exit (also SIGINT)

Options:
  --config <file>   the config file (required)
  --help            this text
`

function log (...parts) {
  console.log(new Date().toISOString(), ...parts)
}

function fail (message) {
  console.error(`ricochet-server: ${message}`)
  process.exit(2)
}

function parseArgs (argv) {
  const opts = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--help' || a === '-h') opts.help = true
    else if (a === '--config') opts.config = argv[++i]
    else if (a.startsWith('--config=')) opts.config = a.slice('--config='.length)
    else fail(`unknown argument ${a} (see --help)`)
  }
  return opts
}

function readJson (file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${err.message}`)
  }
}

/** Validates the keys file; throws naming the first bad entry. */
function loadKeys (file) {
  const keys = readJson(file, 'keys file')
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) throw new Error(`${file}: must map publicKey to {privateKey, channel, groups}`)
  for (const [pub, k] of Object.entries(keys)) {
    const ok = k && typeof k.privateKey === 'string' && typeof k.channel === 'string' && k.channel !== '' &&
      (k.groups === true || (Array.isArray(k.groups) && k.groups.length > 0))
    if (!ok) throw new Error(`${file}: entry "${pub}" needs privateKey, channel and groups (true or a non-empty list)`)
  }
  return new Map(Object.entries(keys))
}

function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.help) {
    process.stdout.write(HELP)
    return
  }
  if (!opts.config) fail('--config <file> is required (see --help)')
  let config, keys, keysFile
  try {
    config = readJson(opts.config, 'config')
    if (typeof config.keys !== 'string') throw new Error('config needs "keys": "<path to keys file>"')
    keysFile = path.resolve(path.dirname(opts.config), config.keys)
    keys = loadKeys(keysFile)
  } catch (err) {
    fail(err.message)
  }
  const listen = config.listen || {}
  let server
  try {
    // A top-level "cluster" is a shorthand for server.cluster.
    server = new Server({ ...(config.server || {}), ...(config.cluster ? { cluster: config.cluster } : {}) })
  } catch (err) {
    fail(`invalid "server" options: ${err.message}`)
  }
  server.authCallback = async ({ publicKey, ip }) => {
    const k = keys.get(publicKey)
    if (!k) throw new Error('unknown publicKey')
    const result = { publicKey, privateKey: k.privateKey, channel: k.channel, groups: k.groups }
    if (k.authKey !== undefined) result.authKey = k.authKey
    if (k.ip !== undefined) result.ip = k.ip
    return result
  }
  const names = new Map()
  server.on('clientConnected', ({ id, ip }) => log('connect', id, ip))
  server.on('clientReady', ({ id }) => { names.set(id, id); log('ready', id) })
  server.on('clientAuthFail', (e) => log('auth-fail', e.id || (e.raw && e.raw.id) || '-', e.code))
  server.on('clientDisconnected', ({ id }) => log('disconnect', id))
  server.on('clientRejected', (e) => log('refused', e.ip, e.code))
  server.on('messageError', (e) => log('route-fail', e.raw && e.raw.id, e.code))
  server.on('error', (err) => log('error', err.code || '', err.message))
  server.on('clusterConnected', () => log('cluster', 'connected to NATS'))
  server.on('clusterDisconnected', () => log('cluster', 'lost NATS; local routing goes on'))

  process.on('SIGHUP', () => {
    try {
      keys = loadKeys(keysFile)
      log('reload', `${keys.size} keys from ${keysFile}`)
    } catch (err) {
      log('reload-failed', err.message, '(keeping the previous keys)')
    }
  })
  let stopping = false
  const stop = (sig) => {
    if (stopping) return
    stopping = true
    log('stop', sig, `${server.getClients().length} clients`)
    server.close(() => {
      log('stopped')
      process.exit(0)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))

  server.once('error', (err) => {
    if (server.listening) return
    fail(`cannot listen: ${err.code || ''} ${err.message}`)
  })
  server.listen(listen.port ?? 23225, listen.host ?? '127.0.0.1', () => {
    const a = server.address()
    const m = server.metricsAddress()
    log('listening', `${a.address}:${a.port}`, `${keys.size} keys`, m ? `metrics on ${m.address}:${m.port}` : '')
  })
}

main()
