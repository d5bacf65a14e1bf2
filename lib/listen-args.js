'use strict'

function toPort (value) {
  if (value === undefined || value === null) return 0
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new RangeError(`ricochet: listen port must be an integer 0-65535, got ${JSON.stringify(value)}`)
  }
  return n
}

/**
 * Normalises the argument forms of `net.Server#listen` that apply to TCP:
 * `(port?, host?, backlog?, cb?)` and `(options, cb?)`. A missing host means every interface
 * and a missing port a free one, as in Node.
 */
function parseListenArgs (args) {
  const list = [...args]
  const callback = typeof list[list.length - 1] === 'function' ? list.pop() : undefined
  let port, host, backlog
  if (list[0] !== null && typeof list[0] === 'object') {
    const o = list[0]
    if (o.path !== undefined) throw new TypeError('ricochet: listen on a path (IPC) is not supported')
    port = o.port
    host = o.host
    backlog = o.backlog
  } else {
    [port, host, backlog] = list
    if (typeof host === 'number' && backlog === undefined) {
      backlog = host
      host = undefined
    }
  }
  if (host !== undefined && host !== null && typeof host !== 'string') {
    throw new TypeError('ricochet: listen host must be a string')
  }
  if (backlog !== undefined && (!Number.isInteger(backlog) || backlog < 0)) {
    throw new RangeError('ricochet: listen backlog must be a non-negative integer')
  }
  return {
    port: toPort(port),
    host: host === null || host === '' ? undefined : host,
    backlog: backlog === undefined ? 511 : backlog,
    callback
  }
}

module.exports = { parseListenArgs }
