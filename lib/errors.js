'use strict'

// The error table lives in Rust (src/codes.rs) so the texts that travel on the wire have one
// source; this module turns it into the JS shapes users see.
const { NativeServer } = require('../binding')

const table = JSON.parse(NativeServer.errorTable())

/** `{ name: text }` for every code, names without the `ricochet.` prefix (as in ricochet.js). */
const errorCodes = Object.freeze(Object.fromEntries(table))

const PREFIX = 'ricochet.'

/** Full code (`ricochet.x`) for a name given with or without the prefix, or undefined. */
function fullCode (name) {
  if (typeof name !== 'string') return undefined
  const bare = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name
  return Object.prototype.hasOwnProperty.call(errorCodes, bare) ? PREFIX + bare : undefined
}

/**
 * An Error carrying a `ricochet.*` code. It also has the original's `Error` field (the text),
 * so code written for ricochet.js's `{Error, code}` objects keeps working.
 */
class RicochetError extends Error {
  constructor (code, extra) {
    const full = fullCode(code) || code
    const text = errorCodes[full.slice(PREFIX.length)] || String(code)
    super(text)
    this.name = 'RicochetError'
    this.code = full
    this.Error = text
    if (extra) Object.assign(this, extra)
  }
}

/** The original's plain `{Error, code, ...extra}` object for a code. */
function errorObject (code, extra) {
  const full = fullCode(code)
  return Object.assign({ Error: errorCodes[full.slice(PREFIX.length)], code: full }, extra)
}

module.exports = { errorCodes, fullCode, errorObject, RicochetError, PREFIX }
