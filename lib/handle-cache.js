'use strict'

// Dispatch to `client.handles` (an EventEmitter2 with wildcards) without searching its listener
// tree for every message: that search costs ~165 ns per emit here, a plain EventEmitter ~30.
// The listeners matched by a name are remembered until any listener changes: every method that
// adds or removes listeners is wrapped on the emitter to bump a change counter (the public ones,
// and the internal _on/_many/_once/_onAny that waitFor() and prototype calls go through;
// EventEmitter2's once()/many() wrappers remove themselves through off()). Delivery is
// EventEmitter2's: `this` is the emitter, `this.event` the name, a snapshot of the listeners,
// true when one ran. Anything unusual goes to EventEmitter2's own emit: no wildcards (its
// listeners() is then the live array), onAny listeners (present or once added: emit's result
// depends on them), long names (they come from the wire and would be kept as keys).

const MUTATORS = [
  'on', 'addListener', 'prependListener', 'once', 'prependOnceListener', 'many', 'prependMany',
  'off', 'removeListener', 'removeAllListeners', 'onAny', 'prependAny', 'offAny',
  'listenTo', 'stopListeningTo', '_on', '_many', '_once', '_onAny'
]

// Names remembered at most, and the longest name remembered.
const MAX_NAMES = 256
const MAX_NAME_LENGTH = 256

// Per emitter, shared by every cache on it: bumped by each wrapped mutator call.
const CHANGES = Symbol('ricochet.handleChanges')

class HandleCache {
  constructor () {
    this._emitter = null
    this._seen = -1
    this._delimiter = null
    this._lists = new Map()
  }

  /** Emits `name` with (a, b) or (a, b, c) on `emitter`; true when a listener ran. */
  emit (emitter, name, a, b, c, three) {
    if (emitter.wildcard !== true || emitter._all || name.length > MAX_NAME_LENGTH) {
      return three ? emitter.emit(name, a, b, c) : emitter.emit(name, a, b)
    }
    if (emitter !== this._emitter) {
      watch(emitter)
      this._emitter = emitter
      this._seen = -1
    }
    if (this._seen !== emitter[CHANGES] || this._delimiter !== emitter.delimiter) {
      this._lists.clear()
      this._seen = emitter[CHANGES]
      this._delimiter = emitter.delimiter
    }
    let list = this._lists.get(name)
    if (list === undefined) {
      list = emitter.listeners(name)
      if (this._lists.size >= MAX_NAMES) this._lists.clear()
      this._lists.set(name, list)
    }
    const n = list.length
    if (n === 0) return false
    for (let i = 0; i < n; i++) {
      emitter.event = name
      if (three) list[i].call(emitter, a, b, c)
      else list[i].call(emitter, a, b)
    }
    return true
  }
}

/** Wraps the listener-changing methods of `emitter` once, to count its changes. */
function watch (emitter) {
  if (emitter[CHANGES] !== undefined) return
  Object.defineProperty(emitter, CHANGES, { value: 0, writable: true, configurable: true, enumerable: false })
  for (const name of MUTATORS) {
    const original = emitter[name]
    if (typeof original !== 'function') continue
    const wrapped = function (...args) {
      // Before and after: listeners of the change itself (newListener) may emit in between.
      emitter[CHANGES]++
      try {
        return original.apply(this, args)
      } finally {
        emitter[CHANGES]++
      }
    }
    Object.defineProperty(emitter, name, { value: wrapped, writable: true, configurable: true, enumerable: false })
  }
}

module.exports = { HandleCache }
