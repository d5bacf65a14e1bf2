'use strict'

const { EventEmitter } = require('node:events')
const { NativeServer } = require('../binding')
const { resolveConfig } = require('./options')
const { closeOnce } = require('./closing')
const { RicochetError, errorObject, fullCode } = require('./errors')
const { parseListenArgs } = require('./listen-args')
const { traceServer } = require('./debug')

// Events whose payload copies frames: the core only produces them while listened to, so a
// flood of bad or unroutable frames costs nothing when nobody watches.
const PER_MESSAGE = new Set(['message', 'clientInput', 'messageError', 'invalidMessage'])

/** JSON of a value, never throwing (circular or BigInt values become their String()). */
function safeJson (value) {
  try {
    const s = JSON.stringify(value)
    return s === undefined ? 'null' : s
  } catch (_) {
    return JSON.stringify(String(value))
  }
}

/** The validated config as the native server takes it. */
function nativeOptions (config) {
  return {
    authTimeout: config.timeouts.auth,
    authKeyWindow: config.timeouts.authKey,
    maxMessageSize: config.maxMessageSize,
    maxQueueSize: config.maxQueueSize,
    maxConnections: config.maxConnections,
    idleTimeout: config.timeouts.idle,
    keepalive: config.keepAlive,
    maxAuthFailures: config.maxAuthFailures,
    encryption: config.encryption
  }
}

/** Runs a `(data, cb)` callback that may also return a Promise; `done` is called at most once. */
function callHook (fn, thisArg, data, done) {
  let settled = false
  const once = (...args) => {
    if (settled) return
    settled = true
    done(...args)
  }
  try {
    const ret = fn.call(thisArg, data, once)
    if (ret && typeof ret.then === 'function') {
      ret.then((value) => once(null, value), (err) => once(err || new Error('rejected')))
    }
  } catch (err) {
    once(err)
  }
}

/**
 * A ricochet server: authenticates clients through `authCallback` and routes their messages in
 * the native core. Emits the events of ricochet.js 0.3.x (see README).
 */
class Server extends EventEmitter {
  constructor (config) {
    super()
    this.config = resolveConfig(config)
    this.authCallback = null
    this.unroutedCallback = null
    this._native = new NativeServer(nativeOptions(this.config))
    this._state = 'idle' // idle → starting → listening → closing → closed
    this._address = null
    this._closeWaiters = []
    this.on('newListener', (name) => {
      if (PER_MESSAGE.has(name)) this._native.setWants(name, true)
    })
    this.on('removeListener', (name) => {
      if (PER_MESSAGE.has(name) && this.listenerCount(name) === 0) this._native.setWants(name, false)
    })
    traceServer(this)
  }

  /** @deprecated set `server.authCallback` instead. */
  auth (fn) {
    this.authCallback = fn
    return this
  }

  /** @deprecated set `server.unroutedCallback` instead. */
  unrouted (fn) {
    this.unroutedCallback = fn
    return this
  }

  /** True while accepting connections. */
  get listening () {
    return this._state === 'listening'
  }

  /** `{messages}`: frames routed since start. */
  get stats () {
    return { messages: this._native.routed() }
  }

  /**
   * Counters and gauges: connections, authenticated, queuedBytes, maxQueuedBytes,
   * messagesRouted, messagesFailed {code: n}, connections/auth/bytes/frames totals.
   */
  metrics () {
    return JSON.parse(this._native.metrics())
  }

  /** `{address, port}` of the Prometheus endpoint (`metrics: {port}`), or null. */
  metricsAddress () {
    return this._state === 'listening' && this._metricsAddress ? { ...this._metricsAddress } : null
  }

  /** `[{id, ip, channel, groups, stats: {sent, received}}]` for every connection. */
  getClients () {
    return JSON.parse(this._native.clients())
  }

  /** Like `net.Server#address()`: `{address, family, port}` while listening, else null. */
  address () {
    return this._state === 'listening' ? { ...this._address } : null
  }

  /** Takes the forms of `net.Server#listen` that apply to TCP: (port, host, backlog, cb) or (options, cb). */
  listen (...args) {
    const { port, host, backlog, callback } = parseListenArgs(args)
    if (typeof this.authCallback !== 'function') {
      throw new RicochetError('server_nocallback')
    }
    if (this._state !== 'idle') {
      const err = new RicochetError('server_inuse')
      process.nextTick(() => (callback ? callback(err) : this.emit('error', err)))
      return this
    }
    this._state = 'starting'
    this._native.setUnrouted(typeof this.unroutedCallback === 'function')
    const native = this._native
    native.start((batch) => { if (native === this._native) this._dispatch(batch) })
    if (callback) this.once('listening', callback)
    const bind = (h) => this._native.listen(h, port, backlog)
    const attempt = host === undefined
      ? bind('::').catch(() => bind('0.0.0.0'))
      : bind(host)
    const metrics = this.config.metrics
    attempt.then(async (addr) => {
      this._address = JSON.parse(addr)
      if (this.config.cluster) {
        await native.joinCluster(this.config.cluster.nats, this.config.cluster.name)
      }
      if (metrics) {
        // The Prometheus endpoint is served by the core beside the server, until close().
        this._metricsAddress = JSON.parse(await native.listenMetrics(metrics.host || '127.0.0.1', metrics.port))
      }
      if (this._state !== 'starting') return
      this._state = 'listening'
      this.emit('listening')
    }).catch((err) => {
      const [code, ...rest] = String(err.message).split('|')
      const e = new Error(rest.join('|') || code)
      e.code = code
      if (callback) this.removeListener('listening', callback)
      // close() during the bind owns the native server now; it finishes the close.
      if (this._state !== 'starting') return
      this._state = 'idle'
      // The native side has started its event pump; stop it so the process can exit.
      this._native.close().catch(() => {})
      this._native = this._fresh()
      this.emit('error', e)
    })
    return this
  }

  _fresh () {
    const n = new NativeServer(nativeOptions(this.config))
    for (const name of PER_MESSAGE) n.setWants(name, this.listenerCount(name) > 0)
    return n
  }

  /**
   * Stops accepting, disconnects every client (each gets `clientDisconnected`), then emits
   * `close` and calls `callback`. Idempotent; also returns a Promise.
   */
  close (callback) {
    return closeOnce(this, callback)
  }

  /** Receives one batch of native events: `[name, payload, name, payload, …]`. */
  _dispatch (batch) {
    const items = JSON.parse(batch)
    for (let i = 0; i < items.length; i += 2) {
      const name = items[i]
      const payload = items[i + 1]
      try {
        this._event(name, payload)
      } catch (err) {
        // A throwing listener behaves as in any EventEmitter: an uncaught exception, raised
        // outside the native call so the rest of the batch is still delivered.
        process.nextTick(() => { throw err })
      }
    }
  }

  _event (name, payload) {
    switch (name) {
      case '_auth':
        return this._authenticate(payload.rid, payload.data)
      case '_unrouted':
        return this._unrouted(payload.rid, payload.data)
      case '_closed': {
        this._state = 'closed'
        const waiters = this._closeWaiters.splice(0)
        this.emit('close')
        for (const w of waiters) w()
        return
      }
      case 'error':
        // Accept errors (e.g. EMFILE) are not fatal to the server; only report them if asked.
        if (this.listenerCount('error') > 0) this.emit('error', Object.assign(new Error(payload.message), payload))
        return
      default:
        this.emit(name, payload)
    }
  }

  _authenticate (rid, data) {
    if (typeof this.authCallback !== 'function') {
      return this._native.resolveAuth(rid, safeJson(errorObject('server_nocallback').Error), null)
    }
    callHook(this.authCallback, this, data, (err, result) => {
      if (this._state === 'closed') return
      if (err) {
        const reason = err instanceof Error ? err.message : err
        this._native.resolveAuth(rid, safeJson(reason), null)
      } else {
        this._native.resolveAuth(rid, null, safeJson(result === undefined ? null : result))
      }
    })
  }

  _unrouted (rid, data) {
    const fn = this.unroutedCallback
    if (typeof fn !== 'function') return this._native.resolveUnrouted(rid, 'message_norecipient')
    callHook(fn, this, data, (err, value) => {
      if (this._state === 'closed') return
      // cb() / resolve(undefined): the application took the frame over. cb(code) or a rejection
      // carrying a code: answer the sender with that code; unknown codes mean no recipient (D18).
      const code = err !== null && err !== undefined ? err : null
      if (code === null && (value === undefined || value === null)) {
        return this._native.resolveUnrouted(rid, null)
      }
      const given = code !== null ? (typeof code === 'string' ? code : code.code) : value
      this._native.resolveUnrouted(rid, fullCode(given) || 'ricochet.message_norecipient')
    })
  }
}

module.exports = { Server }
