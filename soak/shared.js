'use strict'

// What the driver, the server and the workers agree on: credentials, the traffic plan and the
// per-message modifiers. Everything is a pure function of (clients, messages, workers).

const PRIVATE_KEY = 'soak-private-key-6b1f0c93'
const AUTH_KEY = 'soak-auth-key'
const GROUP = 'soak'
const HANDLE = 'soak.msg'

/** Which worker holds client `i`: interleaved, so every pair i → i+1 crosses processes. */
const workerOf = (i, workers) => i % workers

/** Ring topology: client i sends to client (i+1) mod N, so each receiver has exactly one sender. */
const receiverOf = (i, n) => (i + 1) % n
const senderOf = (j, n) => (j - 1 + n) % n

/** Messages sent by client i: `messages` spread evenly, the remainder on the lowest ids. */
function countOf (i, n, messages) {
  const base = Math.floor(messages / n)
  return base + (i < messages % n ? 1 : 0)
}

/** One message in INSECURE_EVERY goes out with client.insecure() (plaintext, encrypted:false). */
const INSECURE_EVERY = 4
const isInsecure = (seq) => seq % INSECURE_EVERY === INSECURE_EVERY - 1

module.exports = { PRIVATE_KEY, AUTH_KEY, GROUP, HANDLE, workerOf, receiverOf, senderOf, countOf, INSECURE_EVERY, isInsecure }
