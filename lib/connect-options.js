'use strict'

/**
 * Validates `client.connect(options)` and returns the native options. publicKey and privateKey
 * must really be strings (D23: the original's `false` defaults passed its check and crashed).
 */
function validateConnect (options, config) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('ricochet: connect(options) needs an options object')
  }
  const { host = '127.0.0.1', port = 23225, localAddress, publicKey, privateKey, authKey = '' } = options
  if (typeof publicKey !== 'string' || publicKey === '') {
    throw new TypeError('ricochet: connect option "publicKey" must be a non-empty string')
  }
  if (typeof privateKey !== 'string') {
    throw new TypeError('ricochet: connect option "privateKey" must be a string')
  }
  if (typeof authKey !== 'string') {
    throw new TypeError('ricochet: connect option "authKey" must be a string')
  }
  if (typeof host !== 'string' || host === '') {
    throw new TypeError('ricochet: connect option "host" must be a non-empty string')
  }
  const p = typeof port === 'string' ? Number(port) : port
  if (!Number.isInteger(p) || p < 1 || p > 65535) {
    throw new RangeError(`ricochet: connect option "port" must be an integer 1-65535, got ${port}`)
  }
  if (localAddress !== undefined && typeof localAddress !== 'string') {
    throw new TypeError('ricochet: connect option "localAddress" must be a string')
  }
  return {
    host,
    port: p,
    localAddress,
    publicKeyJson: JSON.stringify(publicKey),
    privateKey,
    authKey,
    reconnect: config.timeouts.reconnect,
    reconnectMax: Math.max(config.timeouts.reconnectMax, config.timeouts.reconnect),
    maxMessageSize: config.maxMessageSize,
    maxBuffer: config.maxBuffer,
    highWater: config.highWaterMark,
    idleTimeout: config.timeouts.idle,
    keepalive: config.keepAlive,
    encryption: config.encryption
  }
}

module.exports = { validateConnect }
