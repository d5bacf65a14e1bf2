'use strict'

// Defaults of ricochet.js 0.3.x (PROTOCOL.md §8) plus the limits this implementation adds.
// User options are deep-merged over them (the original merged shallowly, D20).

const MiB = 1024 * 1024

const DEFAULTS = Object.freeze({
  delimiters: { message: '\n', encryption: '"{ENCRYPT}"', authKey: '$#AUTH#$' },
  timeouts: { reconnect: 1500, reconnectMax: 30000, message: 5000, latencyBuffer: 500, auth: 3500, authKey: 30000, idle: 0 },
  keepAlive: 30000,
  events: { wildcard: true, delimiter: '.', newListener: false, maxListeners: 10 },
  encoding: 'utf8',
  encryption: 'aes-256-xts',
  queueSize: 1,
  host: '127.0.0.1',
  port: 23225,
  maxMessageSize: 40 * MiB,
  maxQueueSize: 64 * MiB,
  maxConnections: 10000,
  maxAuthFailures: 30,
  maxQueue: 1000,
  maxBuffer: 64 * MiB,
  highWaterMark: 1 * MiB
})

// aes-256-xts is the ricochet.js wire format; aes-256-gcm is authenticated and needs both ends
// to be this implementation.
const ENCRYPTIONS = ['aes-256-xts', 'aes-256-gcm']

function isPlainObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)
}

/** Deep merge of plain objects; arrays and other values replace. Inputs are not modified. */
function deepMerge (base, over) {
  const out = {}
  for (const [k, v] of Object.entries(base)) out[k] = isPlainObject(v) ? deepMerge(v, {}) : v
  if (over === undefined || over === null) return out
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k], v) : v
  }
  return out
}

const warned = new Set()
function warnOnce (key, message) {
  if (warned.has(key)) return
  warned.add(key)
  process.emitWarning(message, { code: 'RICOCHET_' + key })
}

function positive (cfg, path, { integer = false, min = 1 } = {}) {
  const value = path.reduce((o, k) => (o == null ? undefined : o[k]), cfg)
  const name = path.join('.')
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`ricochet: option "${name}" must be a number, got ${typeof value}`)
  }
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new RangeError(`ricochet: option "${name}" must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${value}`)
  }
}

/** Merges `config` over the defaults and validates it; throws TypeError/RangeError naming the option. */
function resolveConfig (config) {
  if (config !== undefined && config !== null && !isPlainObject(config)) {
    throw new TypeError('ricochet: config must be a plain object')
  }
  for (const key of ['delimiters', 'timeouts', 'events']) {
    if (config && config[key] !== undefined && !isPlainObject(config[key])) {
      throw new TypeError(`ricochet: option "${key}" must be an object`)
    }
  }
  const cfg = deepMerge(DEFAULTS, config)
  if (!ENCRYPTIONS.includes(cfg.encryption)) {
    throw new TypeError(`ricochet: unknown encryption "${cfg.encryption}"; supported: ${ENCRYPTIONS.join(', ')}`)
  }
  if (cfg.delimiters.message !== '\n') {
    // D21: any other frame delimiter breaks framing for every peer, so LF is always used.
    warnOnce('DELIMITER', 'ricochet: delimiters.message is ignored; frames always end with LF')
    cfg.delimiters.message = '\n'
  }
  if (cfg.delimiters.encryption !== DEFAULTS.delimiters.encryption) {
    warnOnce('ENCRYPT_DELIMITER', 'ricochet: delimiters.encryption is ignored; the wire-compatible "{ENCRYPT}" is always used')
    cfg.delimiters.encryption = DEFAULTS.delimiters.encryption
  }
  if (cfg.encoding !== 'utf8' && cfg.encoding !== 'utf-8') {
    warnOnce('ENCODING', 'ricochet: encoding is ignored; frames are always UTF-8')
    cfg.encoding = 'utf8'
  }
  for (const t of ['reconnect', 'reconnectMax', 'message', 'auth', 'authKey']) positive(cfg, ['timeouts', t])
  positive(cfg, ['timeouts', 'latencyBuffer'], { min: 0 })
  positive(cfg, ['timeouts', 'idle'], { min: 0 })
  positive(cfg, ['keepAlive'], { min: 0 })
  positive(cfg, ['maxMessageSize'], { integer: true, min: 64 })
  positive(cfg, ['maxQueueSize'], { integer: true, min: 1024 })
  positive(cfg, ['maxConnections'], { integer: true })
  if (cfg.metrics !== undefined && cfg.metrics !== null && cfg.metrics !== false) {
    if (!isPlainObject(cfg.metrics)) throw new TypeError('ricochet: option "metrics" must be an object like {port, host}')
    const { port, host } = cfg.metrics
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`ricochet: option "metrics.port" must be an integer 0-65535, got ${port}`)
    if (host !== undefined && typeof host !== 'string') throw new TypeError('ricochet: option "metrics.host" must be a string')
  } else {
    cfg.metrics = null
  }
  if (cfg.cluster !== undefined && cfg.cluster !== null && cfg.cluster !== false) {
    const c = cfg.cluster
    if (!isPlainObject(c)) throw new TypeError('ricochet: option "cluster" must be an object like {nats, name}')
    if (typeof c.nats !== 'string' || !/^(nats|tls):\/\//.test(c.nats)) throw new TypeError('ricochet: option "cluster.nats" must be a nats:// URL')
    if (c.name === undefined) c.name = `ricochet-${require('node:os').hostname()}-${process.pid}`
    if (typeof c.name !== 'string' || c.name === '') throw new TypeError('ricochet: option "cluster.name" must be a non-empty string')
  } else {
    cfg.cluster = null
  }
  positive(cfg, ['maxQueue'], { integer: true, min: 0 })
  positive(cfg, ['maxAuthFailures'], { integer: true, min: 0 })
  positive(cfg, ['maxBuffer'], { integer: true, min: 1024 })
  positive(cfg, ['highWaterMark'], { integer: true, min: 1 })
  return cfg
}

module.exports = { DEFAULTS, deepMerge, resolveConfig }
