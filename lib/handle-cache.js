'use strict'

// Dispatch to `client.handles` (an EventEmitter2 with wildcards) without searching its listener
// tree for every message: that search costs ~165 ns per emit here, a plain EventEmitter ~30.
// The listeners matched by a name are remembered until any listener changes. Every public
// method that changes listeners is wrapped on the instance to forget them (EventEmitter2's own
// once()/many() wrappers remove themselves through `off`, so they are seen too). Delivery is
// EventEmitter2's: `this` is the emitter, `this.event` the name, a snapshot of the listeners,
// true when one ran. With onAny listeners present, EventEmitter2's emit runs instead.

const MUTATORS = [
  'on', 'addListener', 'prependListener', 'once', 'prependOnceListener', 'many', 'prependMany',
  'off', 'removeListener', 'removeAllListeners', 'onAny', 'prependAny', 'offAny',
  'listenTo', 'stopListeningTo'
]

// Handle names come from the wire: remember a bounded number of them.
const MAX_NAMES = 256

class HandleCache {
  constructor () {
    this._emitter = null
    this._lists = new Map()
  }

  /** Emits `name` with (a, b) or (a, b, c) on `emitter`; true when a listener ran. */
  emit (emitter, name, a, b, c, three) {
    if (emitter !== this._emitter) this._watch(emitter)
    if (emitter._all && emitter._all.length) {
      return three ? emitter.emit(name, a, b, c) : emitter.emit(name, a, b)
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

  _watch (emitter) {
    this._emitter = emitter
    this._lists = new Map()
    const lists = () => this._lists
    for (const name of MUTATORS) {
      const original = emitter[name]
      if (typeof original !== 'function' || original._forgets) continue
      const wrapped = function (...args) {
        // Before and after: listeners of the change itself (newListener) may emit in between.
        lists().clear()
        try {
          return original.apply(this, args)
        } finally {
          lists().clear()
        }
      }
      wrapped._forgets = true
      Object.defineProperty(emitter, name, { value: wrapped, writable: true, configurable: true, enumerable: false })
    }
  }
}

module.exports = { HandleCache }
