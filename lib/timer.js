'use strict'

// The longest delay Node's setTimeout takes: a longer one fires after 1 ms, with a warning.
const MAX_DELAY = 2 ** 31 - 1

/**
 * setTimeout for `owner._timer` that also waits delays past MAX_DELAY (about 24.8 days), in
 * steps, so a request with a huge timeout (or a `timeout` header from the wire) does not
 * time out at once. `clearTimeout(owner._timer)` cancels it at any step.
 */
function startTimer (owner, fn, ms) {
  if (!(ms > MAX_DELAY)) return setTimeout(fn, ms)
  return setTimeout(() => {
    owner._timer = startTimer(owner, fn, ms - MAX_DELAY)
  }, MAX_DELAY)
}

module.exports = { startTimer, MAX_DELAY }
