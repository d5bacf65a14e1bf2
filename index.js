'use strict'

// Public entry: assembles the handwritten JS layer over the generated native loader
// (binding.js), which is never edited by hand.
const { Server } = require('./lib/server')
const { Client } = require('./lib/client')
const { errorCodes, RicochetError } = require('./lib/errors')

module.exports = { Server, Client, errorCodes, RicochetError }
