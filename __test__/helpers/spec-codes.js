'use strict'

// The 27 error codes of ricochet.js 0.3.x with their exact texts, as PROTOCOL.md §7 lists them:
// the tests' own copy, independent of the implementation's table.
const ORIGINAL_CODES = {
  auth_authkey: 'Client provided invalid authkey.',
  auth_channel: 'Channel is already occupied by another client.',
  auth_expiredkey: 'Client provided expired authkey.',
  auth_failure: 'Client failed to authenticate with server.',
  auth_ip: 'Client failed to match expected IP.',
  auth_lookup: 'Authentication callback failed to provide required schema.',
  auth_malformed: 'Malformed authentication request.',
  auth_nogroups: 'Client tried to authenticate with invalid, or no active groups.',
  auth_timeout: 'Client did not respond with authentication request in time.',
  client_auth: 'Client is not authorised.',
  client_connected: 'Can not connect. Client already connected.',
  client_connection: 'Can not send message, client not yet connected.',
  client_send: 'Failed to send network message.',
  message_auth: 'Client unauthenticated and unable to receive message.',
  message_badjson: 'Message does not contain valid JSON syntax.',
  message_channel: 'Message is addressed to another channel.',
  message_decrypt: 'Message failed to decrypt.',
  message_group: 'Message is sent from another, inaccesible group.',
  message_malformed: 'Malformed message received.',
  message_noclient: 'Client could not be found by given id.',
  message_notfound: 'No message found with given id.',
  message_nothandled: 'Failed to receive message, no listeners found.',
  message_norecipient: 'No recipient found by given id.',
  message_self: 'Client attempted to send message to itself.',
  message_timeout: 'Request timed out.',
  server_inuse: 'Server is already listening.',
  server_nocallback: 'No `authCallback` callback method set.'
}

module.exports = { ORIGINAL_CODES }
