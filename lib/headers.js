'use strict'

// Header JSON for the frames a client starts, built as text: the same bytes as
// JSON.stringify(headers) (key order id, to, type, handle, encrypted[, timeout]) at a quarter of
// the cost, which matters because the sending thread bounds one-way throughput.

// Anything JSON.stringify would escape (quote, backslash, control characters, and lone
// surrogates, which it writes as \udXXX; surrogates in general are left to it) takes the slow path.
const PLAIN = /^[^"\\\u0000-\u001f\u2028\u2029\ud800-\udfff]*$/

/** JSON of a string, quoted directly when nothing in it needs escaping. */
function quote (s) {
  return PLAIN.test(s) ? '"' + s + '"' : JSON.stringify(s)
}

/** JSON of a header value. */
function value (v) {
  return typeof v === 'string' ? quote(v) : JSON.stringify(v)
}

/**
 * `{"id":…,"to":…,"type":…,"handle":…,"encrypted":…[,"timeout":…]}`, or undefined when a value
 * would be left out by JSON.stringify (the caller then stringifies the object itself).
 */
function headersJson (id, to, type, handle, encrypted, timeout) {
  if (to === undefined || handle === undefined || typeof to === 'function' || typeof handle === 'function') return undefined
  let s = '{"id":' + value(id) + ',"to":' + value(to) + ',"type":"' + type + '","handle":' + value(handle) +
    ',"encrypted":' + (encrypted ? 'true' : 'false')
  if (timeout !== undefined) s += ',"timeout":' + JSON.stringify(timeout)
  return s + '}'
}

module.exports = { headersJson, quote }
