'use strict'

const { EventEmitter } = require('node:events')
const { RicochetError, errorObject, fullCode } = require('./errors')
const { startTimer } = require('./timer')

const TIMEOUT = 'ricochet.message_timeout'

/** An Error for a failed request, keeping the original payload's fields. */
function requestError (payload) {
  if (payload instanceof Error) return payload
  if (payload && typeof payload === 'object') {
    const code = fullCode(payload.code)
    if (code) {
      const err = new RicochetError(code, payload)
      if (typeof (payload.Error || payload.error) === 'string') err.message = payload.Error || payload.error
      return err
    }
  }
  const text = typeof payload === 'string' ? payload : (payload && (payload.message || payload.Error || payload.error)) || 'request failed'
  const err = new RicochetError('request_failed', { data: payload })
  err.message = String(text)
  return err
}

/**
 * The requester's side: an EventEmitter with `update`, `response` (err, data), `success`,
 * `fail`, `error` and `timeout` ({local}). Settles once; `promise()` gives a Promise view.
 */
class Request extends EventEmitter {
  constructor (client, id, to, timeout) {
    super()
    this.id = id
    this.to = to
    this._client = client
    this._timeout = timeout
    this._timer = null
    this._done = false
    this._failure = undefined
    this._promise = null
    this._resolve = null
    this._reject = null
    this._answer = null
  }

  /** Resolves with the response data; rejects with an Error carrying `code`. */
  promise () {
    if (!this._promise) {
      // The settle paths call these directly: three listeners (two `once` wrappers) per
      // request were a visible share of a requester's allocations.
      this._promise = new Promise((resolve, reject) => {
        if (this._failure !== undefined) return reject(requestError(this._failure))
        // Already answered (promise() asked for late, e.g. from a response listener).
        if (this._answer) return this._answer.ok ? resolve(this._answer.value) : reject(requestError(this._answer.value))
        this._resolve = resolve
        this._reject = reject
      })
    }
    return this._promise
  }

  /** (Re)starts the local timer: T + latencyBuffer, restarted by every update (D7). */
  _arm () {
    if (this._done) return
    clearTimeout(this._timer)
    const ms = this._timeout + this._client.config.timeouts.latencyBuffer
    this._timer = startTimer(this, () => {
      const payload = { local: true }
      this.emit('timeout', payload)
      this._fail(Object.assign(payload, { Error: errorObject('message_timeout').Error, code: TIMEOUT }))
    }, ms)
  }

  _settle () {
    this._done = true
    clearTimeout(this._timer)
    this._client._pending.delete(this.id)
  }

  /** Terminal error: emitted only to listeners (a request nobody watches must not throw). */
  _fail (data) {
    if (this._done) return
    this._settle()
    this._failure = data
    // Settled before the events: a throwing listener must not leave the promise pending
    // (its reactions run as microtasks, after the events, as before).
    if (this._reject) this._reject(requestError(data))
    if (this.listenerCount('error') > 0) this.emit('error', data)
  }

  _reply (status, body) {
    if (this._done) return false
    if (status === 'update') {
      this._arm()
      this.emit('update', body)
      return true
    }
    if (status === 'response') {
      this._settle()
      const err = body && typeof body === 'object' ? body.error : undefined
      const data = body && typeof body === 'object' ? body.data : body
      const ok = err === undefined || err === null || err === '' || err === false
      this._answer = { ok, value: ok ? data : err }
      if (ok && this._resolve) this._resolve(data)
      if (!ok && this._reject) this._reject(requestError(err))
      this.emit('response', err, data)
      if (ok) this.emit('success', data)
      else this.emit('fail', err)
      return true
    }
    if (status === 'error') {
      this._fail(body)
      // D8: a responder-side timeout arrives as an error with the prefixed code.
      const code = body && typeof body === 'object' ? fullCode(body.code) : undefined
      if (code === TIMEOUT) this.emit('timeout', { local: false })
      return true
    }
    this.emit(status, body)
    return true
  }
}

/**
 * The responder's side, given to request handlers: the application emits `update` (data),
 * `response` (err, data) or `error` (data) on it; `timeout` fires when the requester's
 * deadline passes first (the requester then gets `ricochet.message_timeout`).
 */
class Reply extends EventEmitter {
  constructor (client, frame) {
    super()
    this.frame = frame
    this._client = client
    this._closed = false
    this._timer = null
    const t = frame.headers.timeout
    this._timeout = typeof t === 'number' && t > 0 ? t : 0
    client._replies.add(this)
    this._arm()
  }

  /** Whether a terminal reply was sent. */
  get closed () {
    return this._closed
  }

  emit (name, ...args) {
    if (name === 'update') this._send('update', args[0] || {}) && this._arm()
    else if (name === 'response') this._send('response', { error: args[0], data: args[1] || {} }) && this._close()
    else if (name === 'error' && !this._closed) {
      this._send('error', args[0])
      this._close()
      return super.listenerCount('error') > 0 ? super.emit(name, ...args) : true
    }
    return super.emit(name, ...args)
  }

  /** Forwards another request's outcome (e.g. a request made to a further channel) as ours. */
  inherit (request) {
    request.on('update', (d) => this.emit('update', d))
    request.on('response', (err, data) => this.emit('response', err, data))
    request.on('error', (d) => this.emit('error', d))
    return this
  }

  _arm () {
    if (!this._timeout || this._closed) return
    clearTimeout(this._timer)
    this._timer = startTimer(this, () => {
      if (this._closed) return
      super.emit('timeout')
      this._send('error', { Error: errorObject('message_timeout').Error, code: TIMEOUT })
      this._close()
    }, this._timeout)
  }

  _send (status, body) {
    if (this._closed) return false
    const h = this.frame.headers
    this._client._sendReply(h, status, body)
    return true
  }

  _close () {
    this._closed = true
    clearTimeout(this._timer)
    this._client._replies.delete(this)
    super.emit('close')
  }

  /** The connection dropped: the requester has failed this request already, so stop here. */
  _abandon () {
    if (!this._closed) this._close()
  }
}

module.exports = { Request, Reply, requestError }
