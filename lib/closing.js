'use strict'

/**
 * The close() both classes share: idempotent, resolves every caller once the native side
 * reported `_closed` (the owner calls the waiters then), also takes a callback.
 */
function closeOnce (owner, callback) {
  const p = new Promise((resolve) => {
    if (owner._state === 'idle' || owner._state === 'closed') return process.nextTick(resolve)
    owner._closeWaiters.push(resolve)
    if (owner._state === 'closing') return
    owner._state = 'closing'
    owner._native.close().catch(() => {})
  })
  if (typeof callback === 'function') p.then(() => callback())
  return p
}

module.exports = { closeOnce }
