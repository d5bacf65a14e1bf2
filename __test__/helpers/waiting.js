'use strict'

// Waiting helpers for tests: every timer they start is remembered so afterEach can clear it
// (`clearTimers()`), which keeps jest free of open handles even when a test fails early.

const timers = new Set()

function track (t) {
  timers.add(t)
  return t
}

/** Clears every timer started by these helpers. */
function clearTimers () {
  for (const t of timers) clearTimeout(t)
  timers.clear()
}

function delay (ms) {
  return new Promise((resolve) => track(setTimeout(resolve, ms)))
}

/** Resolves with the listener's arguments (an array) the next time `emitter` emits `name`. */
function nextEvent (emitter, name, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = track(setTimeout(() => {
      emitter.removeListener(name, on)
      reject(new Error(`timeout waiting for event "${name}"`))
    }, ms))
    function on (...args) {
      clearTimeout(t)
      resolve(args)
    }
    emitter.once(name, on)
  })
}

/** Resolves with the result of `p`, or rejects with `Error(label)` after `ms`. */
function within (p, ms, label) {
  return new Promise((resolve, reject) => {
    const t = track(setTimeout(() => reject(new Error(label || `not settled within ${ms} ms`)), ms))
    p.then((v) => { clearTimeout(t); resolve(v) }, (e) => { clearTimeout(t); reject(e) })
  })
}

/** Polls `pred` until true. */
async function until (pred, ms = 5000, label = 'condition') {
  const start = Date.now()
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timeout waiting for ${label}`)
    await delay(10)
  }
}

/**
 * Registers an afterEach that runs, newest first, the cleanups a test adds with the returned
 * function (sockets, servers, clients), then clears the helpers' timers.
 */
function useCleanups () {
  let list = []
  afterEach(async () => {
    const run = list
    list = []
    for (const fn of run.reverse()) await fn()
    clearTimers()
  })
  return (fn) => { list.push(fn) }
}

module.exports = { clearTimers, delay, nextEvent, within, until, useCleanups }
