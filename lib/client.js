'use strict'

const { EventEmitter } = require('node:events')
const { EventEmitter2 } = require('eventemitter2')
const crypto = require('node:crypto')
const { NativeClient } = require('../binding')
const { resolveConfig } = require('./options')
const { closeOnce } = require('./closing')
const { RicochetError, errorObject } = require('./errors')
const { Request, Reply } = require('./request')
const { validateConnect } = require('./connect-options')
const { headersJson, quote } = require('./headers')
const { traceClient } = require('./debug')
const { HeaderTemplates } = require('./templates')
const { HandleCache } = require('./handle-cache')

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
// Names that must never reach the handle emitter from the wire (D14).
const RESERVED = new Set(['error', 'newListener', 'removeListener'])
const ID_RE = /^[A-Za-z0-9]{1,64}$/
// A batch this large is handed over at once instead of at the end of the tick. Kept under
// V8's large-object size (128 KiB): the native call flattens the batch rope into one new
// string, and a large one gets freshly mapped pages every time (a W1 sender took ~13k page
// faults per 200k messages more with 256 KiB).
const FLUSH_AT = 64 * 1024

// Ids are cut from a flat string of random id characters, refilled from one CSPRNG call.
// Building an id a character at a time made a 32-deep rope, which every Map lookup of a
// pending request then compared and hashed character by character (ConsString::Get was 3 %
// of a requester's CPU). A call costs ~5 µs whatever its size up to 16 KiB, so the refill
// draws 16 KiB into a reused buffer: randomBytes(4096) per ~124 ids was 3 % of a W3 requester.
const ID_CODES = Buffer.from(ID_CHARS, 'latin1')
const ID_REFILL = 16384
let idRandom = null
let idOut = null
let idChars = ''
let idPos = 0

function refillIds () {
  if (!idRandom) {
    idRandom = Buffer.allocUnsafeSlow(ID_REFILL)
    idOut = Buffer.allocUnsafeSlow(ID_REFILL)
  }
  crypto.randomFillSync(idRandom)
  let n = 0
  for (let i = 0; i < ID_REFILL; i++) {
    // 248 = 4 × 62: dropping the rest keeps every character equally likely.
    const b = idRandom[i]
    if (b < 248) idOut[n++] = ID_CODES[b % 62]
  }
  idChars = idOut.latin1Slice(0, n)
  idPos = 0
}

/** 32 chars of [A-Za-z0-9] from a CSPRNG (D15), without modulo bias. */
function newId () {
  if (idPos + 32 > idChars.length) refillIds()
  const id = idChars.slice(idPos, idPos + 32)
  idPos += 32
  return id
}

/** The descriptor of an `e`/`p` batch record (`<e|p><to>\0<handle>\0<body>`), for reports. */
function described (record) {
  const [to, handle] = record.slice(1).split('\0')
  return { to: JSON.parse(to), handle: JSON.parse(handle), encrypt: record[0] === 'e' }
}

/**
 * A ricochet client: one named channel on a server. Sends messages and requests, answers
 * requests through `client.handles` (EventEmitter2 with wildcards) and reconnects by itself.
 */
class Client extends EventEmitter {
  constructor (config) {
    super()
    this.config = resolveConfig(config)
    this.handles = new EventEmitter2(this.config.events)
    this._handleCache = new HandleCache()
    this.channel = null
    this.groups = null
    this._state = 'idle' // idle → connecting → ready ⇄ connecting → closed
    this._native = null
    this._sendBatch = null
    this._templates = null
    this._pending = new Map()
    this._replies = new Set()
    this._offline = []
    this._next = { encrypt: undefined, timeout: undefined }
    this._nextSet = false
    this._q1 = this._q2 = this._q1Json = this._q2Json = undefined
    this._notHandled = null
    this._closeWaiters = []
    // Outgoing frames of one tick, handed to the native side in one call.
    this._batch = ''
    this._batchDescs = []
    this._flushQueued = false
    this._nativeBuffered = 0
    this._needDrain = false
    this._flushBound = () => this._flush()
    traceClient(this)
  }

  /** Connects and authenticates; reconnects by itself until `close()`. */
  connect (options, callback) {
    if (this._state !== 'idle' && this._state !== 'closed') {
      const err = new RicochetError('client_connected')
      if (typeof callback === 'function') process.nextTick(callback, err)
      else throw err
      return this
    }
    const opts = validateConnect(options, this.config)
    const native = new NativeClient()
    this._native = native
    // A plain function bound to this native client rather than a method: see src/binding/send.rs.
    this._sendBatch = native.sendFunction()
    this._state = 'connecting'
    if (typeof callback === 'function') this.once('connected', () => callback())
    this._templates = new HeaderTemplates()
    native.connect(opts, (batch) => { if (native === this._native) this._dispatch(batch) })
    return this
  }

  /** The next message or request goes out encrypted (the default). */
  encrypt () {
    this._next.encrypt = true
    this._nextSet = true
    return this
  }

  /** The next message or request goes out with a plaintext body and `encrypted: false` (D2). */
  insecure () {
    this._next.encrypt = false
    this._nextSet = true
    return this
  }

  /** Timeout in ms for the next request. */
  timeout (ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
      throw new RangeError(`ricochet: timeout must be a positive number of ms, got ${ms}`)
    }
    this._next.timeout = ms
    this._nextSet = true
    return this
  }

  /** Bytes accepted for sending and not yet written to the socket. */
  get bufferedAmount () {
    if (this._nativeBuffered > 0 && this._batch === '' && this._native) {
      this._nativeBuffered = this._native.buffered()
    }
    return this._nativeBuffered + this._batch.length
  }

  /** Whether the client is authenticated and can send right now. */
  get ready () {
    return this._state === 'ready'
  }

  /** Registers a handler: `(body, msg)` for messages, `(body, reply, msg)` for requests. */
  handle (name, fn) {
    if (typeof fn !== 'function') throw new TypeError('ricochet: handle(name, fn) needs a function')
    this.handles.on(name, fn)
    return this
  }

  /** Called with the frame of every message or request no handle matched. */
  notHandled (fn) {
    this._notHandled = typeof fn === 'function' ? fn : null
    return this
  }

  /** Removes every handle. */
  flushHandles () {
    this.handles.removeAllListeners()
    return this
  }

  /** Sends a one-way message. */
  message (channel, handle, body) {
    const encrypt = this._next.encrypt !== false
    if (this._nextSet) this._resetNext()
    if (typeof channel === 'string' && typeof handle === 'string') {
      // The native side makes the id and headers of a message (see Client::send_batch).
      if (this._state === 'ready') this._transmitMessage(channel, handle, body, encrypt)
      else this._send({ to: channel, handle, body, encrypt, request: undefined, headers: undefined })
      return this
    }
    const id = newId()
    this._send({
      headers: { id, to: channel, type: 'message', handle, encrypted: encrypt },
      headersJson: headersJson(id, channel, 'message', handle, encrypt),
      idJson: '"' + id + '"',
      body,
      encrypt
    })
    return this
  }

  /** Sends a request; returns its emitter (`update`, `response`, `success`, `fail`, `error`, `timeout`). */
  request (channel, handle, body) {
    const mods = this._take()
    const timeout = mods.timeout || this.config.timeouts.message
    const id = newId()
    const req = new Request(this, id, channel, timeout)
    const plain = typeof channel === 'string' && typeof handle === 'string'
    this._send({
      headers: { id, to: channel, type: 'request', handle, encrypted: mods.encrypt, timeout },
      headersJson: plain
        ? '{"id":"' + id + '","to":' + this._quoted(channel) + ',"type":"request","handle":' + this._quoted(handle) +
          ',"encrypted":' + (mods.encrypt ? 'true' : 'false') + ',"timeout":' + JSON.stringify(timeout) + '}'
        : headersJson(id, channel, 'request', handle, mods.encrypt, timeout),
      idJson: '"' + id + '"',
      body,
      encrypt: mods.encrypt,
      request: req
    })
    return req
  }

  /** Promise form of `request`: resolves with the response data, rejects with a coded Error. */
  requestAsync (channel, handle, body, { timeout, encrypt = true, signal, onUpdate } = {}) {
    if (signal && signal.aborted) return Promise.reject(new RicochetError('request_aborted'))
    if (timeout !== undefined) this.timeout(timeout)
    if (encrypt === false) this.insecure()
    const req = this.request(channel, handle, body)
    if (typeof onUpdate === 'function') req.on('update', onUpdate)
    const p = req.promise()
    if (signal) {
      const onAbort = () => req._fail(new RicochetError('request_aborted'))
      signal.addEventListener('abort', onAbort, { once: true })
      const off = () => signal.removeEventListener('abort', onAbort)
      p.then(off, off)
    }
    return p
  }

  /** Stops reconnecting and closes; emits `close` and calls `callback`. Also returns a Promise. */
  close (callback) {
    return closeOnce(this, callback)
  }

  _take () {
    const mods = { encrypt: this._next.encrypt !== false, timeout: this._next.timeout }
    if (this._nextSet) this._resetNext()
    return mods
  }

  /** Forgets encrypt()/insecure()/timeout() once a send used them (in place: no garbage). */
  _resetNext () {
    this._next.encrypt = undefined
    this._next.timeout = undefined
    this._nextSet = false
  }

  /** JSON of a channel or handle name; the last two are remembered, as senders repeat them. */
  _quoted (s) {
    if (s === this._q1) return this._q1Json
    if (s === this._q2) return this._q2Json
    const json = quote(s)
    this._q2 = this._q1
    this._q2Json = this._q1Json
    this._q1 = s
    this._q1Json = json
    return json
  }

  /** Sends now when ready, queues while (re)connecting, fails at once otherwise (D16). */
  _send (desc) {
    if (this._state === 'ready') return this._transmit(desc)
    if (this._state === 'connecting') {
      if (this._offline.length < this.config.maxQueue) {
        if (desc.request) this._pending.set(desc.request.id, desc.request)
        this._offline.push(desc)
        return
      }
      return this._sendFailed(desc, 'client_queuefull')
    }
    this._sendFailed(desc, 'client_connection')
  }

  _transmit (desc) {
    if (desc.headers === undefined) return this._transmitMessage(desc.to, desc.handle, desc.body, desc.encrypt)
    const body = desc.body === undefined ? {} : desc.body
    let bodyJson
    try {
      bodyJson = JSON.stringify(body)
    } catch (err) {
      return this._sendFailed(desc, 'client_send', { reason: err.message })
    }
    const id = desc.headers.id
    const idJson = desc.idJson || (typeof id === 'string' && ID_RE.test(id) ? '"' + id + '"' : JSON.stringify(String(id)))
    // One record per frame; JSON text never holds raw \0 or \x01 (see Client::send_batch).
    this._batch += (desc.encrypt ? 'E' : 'P') + idJson + '\0' + (desc.headersJson || JSON.stringify(desc.headers)) + '\0' + bodyJson + '\x01'
    this._batchDescs.push(desc)
    if (desc.request) {
      this._pending.set(desc.request.id, desc.request)
      desc.request._arm()
    }
    this._queued()
  }

  /**
   * A one-way message to string names (the native side makes its id and headers): no
   * descriptor object per message, its record in the batch says all a failure report needs
   * (see described()).
   */
  _transmitMessage (to, handle, body, encrypt) {
    let bodyJson
    try {
      bodyJson = JSON.stringify(body === undefined ? {} : body)
    } catch (err) {
      return this._sendFailed({ to, handle, encrypt }, 'client_send', { reason: err.message })
    }
    this._batch += (encrypt ? 'e' : 'p') + this._quoted(to) + '\0' + this._quoted(handle) + '\0' + bodyJson + '\x01'
    this._batchDescs.push(null)
    this._queued()
  }

  /** After a record joined the batch: the drain mark, and a flush now or at the end of the tick. */
  _queued () {
    if (this._batch.length + this._nativeBuffered >= this.config.highWaterMark) this._needDrain = true
    if (this._batch.length >= FLUSH_AT) this._flush()
    else if (!this._flushQueued) {
      this._flushQueued = true
      queueMicrotask(this._flushBound)
    }
  }

  _flush () {
    this._flushQueued = false
    if (this._batch === '') return
    const batch = this._batch
    const descs = this._batchDescs
    this._batch = ''
    this._batchDescs = []
    // The bytes buffered after the batch, or -1 when some record failed.
    const buffered = this._sendBatch(batch)
    if (buffered >= 0) {
      this._nativeBuffered = buffered
    } else {
      const res = this._native.takeFailed()
      this._nativeBuffered = res.buffered
      let records = null
      for (const f of res.failed) {
        let desc = descs[f.index]
        if (desc === null) {
          if (records === null) records = batch.split('\x01')
          desc = described(records[f.index])
        }
        this._sendFailed(desc, f.code)
      }
    }
    // What waited in the batch counted as buffered: once the socket took it, say so.
    if (this._needDrain && this._nativeBuffered < this.config.highWaterMark) {
      this._needDrain = false
      process.nextTick(() => this.emit('drain'))
    }
  }

  _sendFailed (desc, code, extra) {
    // A message that never left has no id yet: give it one for the report.
    const headers = desc.headers || { id: newId(), to: desc.to, type: 'message', handle: desc.handle, encrypted: desc.encrypt }
    const err = errorObject(code, { message: headers, ...extra })
    if (desc.request) {
      this._pending.delete(desc.request.id)
      // request() has not returned yet when its send fails: fail on the next tick, so the
      // caller's listeners (or promise()) see it (D16).
      const req = desc.request
      process.nextTick(() => req._fail(errorObject(code, extra)))
    }
    if (this.listenerCount('sendError') > 0) this.emit('sendError', err)
  }

  _sendReply (h, status, body) {
    const encrypt = h.encrypted !== false
    const desc = {
      headers: { id: h.id, to: h.from, type: 'reply', handle: h.handle, encrypted: encrypt, status },
      headersJson: undefined,
      idJson: undefined,
      body,
      encrypt
    }
    // The usual reply, to string names and a well-formed id, skips JSON.stringify of the
    // headers (same bytes: key order id, to, type, handle, encrypted, status).
    if (typeof h.id === 'string' && ID_RE.test(h.id) && typeof h.from === 'string' && typeof h.handle === 'string') {
      desc.idJson = '"' + h.id + '"'
      desc.headersJson = '{"id":' + desc.idJson + ',"to":' + this._quoted(h.from) + ',"type":"reply","handle":' +
        this._quoted(h.handle) + ',"encrypted":' + (encrypt ? 'true' : 'false') + ',"status":"' + status + '"}'
    }
    this._send(desc)
  }

  _dispatch (batch) {
    const items = JSON.parse(batch)
    for (let i = 0; i < items.length; i += 2) {
      try {
        this._event(items[i], items[i + 1])
      } catch (err) {
        // A throwing handler is an uncaught exception, as with any EventEmitter listener; the
        // rest of the batch is still delivered.
        process.nextTick(() => { throw err })
      }
    }
  }

  _event (name, p) {
    switch (name) {
      case 'f': {
        const frame = this._templates.frame(p)
        // The native side only refers to slots it defined: a miss would be a bug there.
        if (frame === null) return this.listenerCount('receiveError') > 0 && this.emit('receiveError', errorObject('message_malformed', { message: p }))
        return this._receive(frame)
      }
      case 'tpl': return this._templates.define(p)
      case 'frame': return this._receive(p)
      case 'ready':
        this.channel = p.channel
        this.groups = p.groups
        // Queued before a close() that JS has already made: stay closing.
        if (this._state === 'closing' || this._state === 'closed') return
        this._state = 'ready'
        this.emit('ready', p)
        return this._flushOffline()
      case 'disconnected':
        if (this._state === 'ready') this._state = 'connecting'
        this._failPending('client_disconnected')
        for (const r of [...this._replies]) r._abandon()
        return this.emit('disconnected', p.hadError)
      case 'lookup': return this.emit('lookup', null, p.address, p.family, p.host)
      case 'error':
        if (this.listenerCount('error') > 0) this.emit('error', Object.assign(new Error(p.message), p))
        return
      case '_closed': {
        this._state = 'closed'
        this._failPending('client_disconnected')
        for (const r of [...this._replies]) r._abandon()
        for (const d of this._offline.splice(0)) this._sendFailed(d, 'client_connection')
        this.emit('close', false)
        for (const w of this._closeWaiters.splice(0)) w()
        return
      }
      case 'drain':
        this._nativeBuffered = this._native ? this._native.buffered() : 0
        if (!this._needDrain) return
        this._needDrain = false
        return this.emit('drain')
      case 'connected':
      case 'reconnected':
      case 'end':
      case 'timeout':
        return this.emit(name)
      default:
        // authFail {message}, connectionFail {err}, receiveError {Error, code, message}
        return this.emit(name, p)
    }
  }

  _flushOffline () {
    const queued = this._offline.splice(0)
    for (const desc of queued) {
      if (this._state !== 'ready') {
        this._offline.push(desc)
        continue
      }
      this._transmit(desc)
    }
  }

  _failPending (code) {
    const pending = [...this._pending.values()]
    this._pending.clear()
    const queued = new Set(this._offline.map((d) => d.request).filter(Boolean))
    for (const req of pending) {
      // Requests still waiting in the offline queue go out after the next `ready`.
      if (queued.has(req)) this._pending.set(req.id, req)
      else req._fail(errorObject(code))
    }
  }

  _receive (frame) {
    // close() was called (maybe by an earlier handler of this batch): nothing more is handled.
    if (this._state === 'closing' || this._state === 'closed') return
    const h = frame.headers
    if (h.type === 'reply') return this._receiveReply(frame)
    if (h.type !== 'message' && h.type !== 'request') return
    const handle = h.handle
    const usable = typeof handle === 'string' && handle !== '' && !RESERVED.has(handle)
    // True when a listener (wildcards included) matched, as EventEmitter2's emit() reports.
    if (h.type === 'message') {
      const handled = usable && this._handleCache.emit(this.handles, handle, frame.body, frame, undefined, false)
      if (!handled && this._notHandled) this._notHandled(frame)
      return
    }
    const reply = new Reply(this, frame)
    const handled = usable && this._handleCache.emit(this.handles, handle, frame.body, reply, frame, true)
    if (handled) return
    if (this._notHandled) this._notHandled(frame)
    reply.emit('error', errorObject('message_nothandled'))
  }

  _receiveReply (frame) {
    const h = frame.headers
    const req = this._pending.get(h.id)
    // D15: only the request's recipient (or the server on its behalf) may answer it.
    if (!req || h.from !== req.to) {
      return this.listenerCount('receiveError') > 0 && this.emit('receiveError', errorObject('message_notfound', { message: frame }))
    }
    if (typeof h.status !== 'string') {
      return this.listenerCount('receiveError') > 0 && this.emit('receiveError', errorObject('message_malformed', { message: frame }))
    }
    req._reply(h.status, frame.body)
  }
}

module.exports = { Client, newId }
