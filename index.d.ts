// Public typings of ricochet (handwritten; the generated binding.d.ts types the native layer).
import { EventEmitter } from 'node:events'
import type { EventEmitter2, ConstructorOptions as EventEmitter2Options } from 'eventemitter2'

/** Names of every error code, without the `ricochet.` prefix. */
export type ErrorCodeName =
  | 'auth_authkey' | 'auth_channel' | 'auth_expiredkey' | 'auth_failure' | 'auth_ip'
  | 'auth_lookup' | 'auth_malformed' | 'auth_nogroups' | 'auth_timeout'
  | 'client_auth' | 'client_connected' | 'client_connection' | 'client_send'
  | 'message_auth' | 'message_badjson' | 'message_channel' | 'message_decrypt' | 'message_group'
  | 'message_malformed' | 'message_noclient' | 'message_notfound' | 'message_nothandled'
  | 'message_norecipient' | 'message_self' | 'message_timeout' | 'server_inuse' | 'server_nocallback'
  | 'message_toolarge' | 'client_slow' | 'client_disconnected' | 'client_queuefull'
  | 'server_closed' | 'server_maxconnections' | 'auth_ratelimit' | 'request_failed' | 'request_aborted'

/** A full error code as it appears in `code` fields and on the wire. */
export type ErrorCode = `ricochet.${ErrorCodeName}`

/** `{ name: text }` for every code (names without prefix). */
export declare const errorCodes: Readonly<Record<ErrorCodeName, string>>

/** The original's error object shape: `{Error: text, code, ...extra}`. */
export interface RicochetErrorObject {
  Error: string
  code: ErrorCode
  [extra: string]: unknown
}

/** Errors thrown or rejected by ricochet: an Error with `code` and the original `Error` text. */
export declare class RicochetError extends Error {
  constructor (code: ErrorCodeName | ErrorCode, extra?: Record<string, unknown>)
  code: ErrorCode
  Error: string
}

/** Groups: the wildcard `true` or a non-empty list. */
export type Groups = true | Array<string | number | boolean | null>

export interface Delimiters {
  /** Frame terminator; always LF (any other value is ignored with a warning). */
  message?: '\n' | string
  /** Encryption delimiter; always `"{ENCRYPT}"` for wire compatibility. */
  encryption?: string
  /** Unused, kept for compatibility. */
  authKey?: string
}

export interface Timeouts {
  /** First reconnect delay in ms (default 1500); later ones back off exponentially. */
  reconnect?: number
  /** Longest reconnect delay in ms (default 30000). */
  reconnectMax?: number
  /** Default request timeout in ms (default 5000). */
  message?: number
  /** Added to the requester's local timer (default 500). */
  latencyBuffer?: number
  /** Server: how long a connection may stay unauthenticated (default 3500). */
  auth?: number
  /** Server: accepted distance between authStamp and the clock (default 30000). */
  authKey?: number
  /** Close a connection that receives nothing for this long (ms; default 0 = off). Server: `clientTimeout`; client: `timeout`, then reconnect. */
  idle?: number
}

/** Options shared by Server and Client; deep-merged over the defaults. */
export interface Config {
  delimiters?: Delimiters
  timeouts?: Timeouts
  /** Options of the client's EventEmitter2 handle emitter. */
  events?: EventEmitter2Options
  /** Always utf8. */
  encoding?: 'utf8' | 'utf-8'
  /** Payload cipher: `aes-256-xts` (default, ricochet.js-compatible) or `aes-256-gcm` (authenticated; both ends must use it). Unknown values throw a TypeError. */
  encryption?: 'aes-256-xts' | 'aes-256-gcm'
  /** Unused (kept for compatibility). */
  queueSize?: number
  host?: string
  port?: number
  /** Longest accepted frame in bytes (default 40 MiB). */
  maxMessageSize?: number
  /** Server: bytes queued to one client before it is dropped as slow (default 64 MiB). */
  maxQueueSize?: number
  /** Server: simultaneous connections (default 10000). */
  maxConnections?: number
  /** Server: failed logins allowed per IP per minute before its connections are refused (default 30, 0 = no limit). */
  maxAuthFailures?: number
  /** TCP keepalive idle time in ms (default 30000, 0 = off). */
  keepAlive?: number
  /**
   * Server: join the servers on this NATS server. Channels are unique across all of them and
   * messages reach channels held on any of them (default off).
   */
  cluster?: { nats: string, name?: string } | null
  /** Server: serve Prometheus text on `GET /metrics` at this address (default off). */
  metrics?: { port: number, host?: string } | null
  /** Client: messages held while not ready (default 1000). */
  maxQueue?: number
  /** Client: outbound bytes allowed to wait for the socket (default 64 MiB). */
  maxBuffer?: number
  /** Client: `drain` fires when the outbound buffer falls below this (default 1 MiB). */
  highWaterMark?: number
}

/** A message frame as received. */
export interface Frame<B = unknown> {
  headers: {
    id: string
    to: string
    from: string
    type: 'message' | 'request' | 'reply'
    handle?: string
    encrypted?: boolean
    groups?: Groups
    timeout?: number
    status?: 'update' | 'response' | 'error' | string
    [key: string]: unknown
  }
  body: B
  [key: string]: unknown
}

/** What `authCallback` receives: the auth frame's fields plus the peer's ip and its MD5. */
export interface AuthData {
  publicKey: unknown
  authKey: string
  authStamp: string
  ip: string
  /** Upper-case MD5 hex of `ip`. */
  iphash: string
  [extra: string]: unknown
}

/** What `authCallback` answers. `authKey` and `ip` are checked when given. */
export interface AuthResult {
  channel: string
  privateKey: string
  groups: Groups
  publicKey?: unknown
  authKey?: string | null
  ip?: string | null
}

/** Call `cb(err, result)` or return a Promise of the result (rejecting to refuse). */
export type AuthCallback =
  (data: AuthData, cb: (err: unknown, result?: AuthResult) => void) => void | Promise<AuthResult>

export interface UnroutedData { id: string, message: Frame }
/** `cb()` / resolving nothing takes the message over; a code answers the sender with it. */
export type UnroutedCallback =
  (data: UnroutedData, cb: (code?: ErrorCodeName | ErrorCode | null) => void) => void | Promise<ErrorCodeName | ErrorCode | undefined | void>

export interface ClientInfo {
  id: string
  ip: string
  channel: string | null
  groups: Groups | []
  stats: { sent: number, received: number }
}

export interface ServerMetrics {
  connections: number
  authenticated: number
  queuedBytes: number
  maxQueuedBytes: number
  messagesRouted: number
  /** Routing failures by full code. */
  messagesFailed: Partial<Record<ErrorCode, number>>
  connectionsTotal: number
  authSuccessTotal: number
  authFailuresTotal: number
  bytesInTotal: number
  bytesOutTotal: number
  framesInTotal: number
}

export interface ServerEvents {
  listening: []
  close: []
  error: [err: Error & { code?: string }]
  clientConnected: [{ id: string, ip: string }]
  clientReady: [{ id: string }]
  clientAuthFail: [RicochetErrorObject & { id?: string, ip?: string, raw?: { id: string, message: unknown } }]
  clientDisconnected: [{ id: string }]
  clientError: [{ id: string, Error: string, code: string }]
  clientTimeout: [{ id: string }]
  clientEnd: [{ id: string, data: null }]
  clientInput: [{ id: string, message: Frame }]
  clientRejected: [RicochetErrorObject & { ip: string }]
  message: [{ id: string, message: Frame }]
  messageError: [RicochetErrorObject & { raw: { id: string, message?: Frame } }]
  invalidMessage: [RicochetErrorObject & { id: string, msg: string }]
  eventsDropped: [{ count: number }]
  clusterConnected: [{}]
  clusterDisconnected: [{}]
}

export interface ListenOptions { port?: number | string, host?: string, backlog?: number }

export declare class Server extends EventEmitter {
  constructor (config?: Config)
  readonly config: Required<Config>
  authCallback: AuthCallback | null
  unroutedCallback: UnroutedCallback | null
  readonly listening: boolean
  /** Frames routed since start. */
  readonly stats: { messages: number }
  /** @deprecated set `authCallback`. */
  auth (fn: AuthCallback): this
  /** @deprecated set `unroutedCallback`. */
  unrouted (fn: UnroutedCallback): this
  listen (port?: number | string, host?: string, backlog?: number, callback?: (err?: RicochetError) => void): this
  listen (port: number | string, host: string, callback?: (err?: RicochetError) => void): this
  listen (port: number | string, callback?: (err?: RicochetError) => void): this
  listen (options: ListenOptions, callback?: (err?: RicochetError) => void): this
  listen (callback?: (err?: RicochetError) => void): this
  address (): { address: string, family: 'IPv4' | 'IPv6', port: number } | null
  getClients (): ClientInfo[]
  /** Counters and gauges of the core. */
  metrics (): ServerMetrics
  /** Where the Prometheus endpoint listens, or null. */
  metricsAddress (): { address: string, port: number } | null
  close (callback?: () => void): Promise<void>
  on<K extends keyof ServerEvents> (event: K, listener: (...args: ServerEvents[K]) => void): this
  once<K extends keyof ServerEvents> (event: K, listener: (...args: ServerEvents[K]) => void): this
  off<K extends keyof ServerEvents> (event: K, listener: (...args: ServerEvents[K]) => void): this
  emit<K extends keyof ServerEvents> (event: K, ...args: ServerEvents[K]): boolean
}

export interface ConnectOptions {
  host?: string
  port?: number
  localAddress?: string
  publicKey: string
  privateKey: string
  authKey?: string
}

export interface RequestEvents<R = unknown> {
  update: [data: unknown]
  response: [err: unknown, data: R]
  success: [data: R]
  fail: [err: unknown]
  error: [data: unknown]
  timeout: [{ local: boolean }]
  close: []
}

/** The requester's view of one request. */
export declare class Request<R = unknown> extends EventEmitter {
  readonly id: string
  readonly to: string
  /** Resolves with the response data; rejects with a RicochetError carrying `code`. */
  promise (): Promise<R>
  on<K extends keyof RequestEvents<R>> (event: K, listener: (...args: RequestEvents<R>[K]) => void): this
  once<K extends keyof RequestEvents<R>> (event: K, listener: (...args: RequestEvents<R>[K]) => void): this
}

/** The responder's handle on one request. */
export declare class Reply extends EventEmitter {
  readonly frame: Frame
  readonly closed: boolean
  emit (event: 'update', data?: unknown): boolean
  emit (event: 'response', err: unknown, data?: unknown): boolean
  emit (event: 'error', data: unknown): boolean
  emit (event: string | symbol, ...args: unknown[]): boolean
  /** Forwards another request's update/response/error as this reply's. */
  inherit (request: Request): this
  on (event: 'timeout' | 'close', listener: () => void): this
  on (event: string | symbol, listener: (...args: any[]) => void): this
}

export interface RequestOptions<R = unknown> {
  timeout?: number
  encrypt?: boolean
  signal?: AbortSignal
  onUpdate?: (data: unknown) => void
}

export interface ClientEvents {
  connected: []
  reconnected: []
  ready: [{ channel: string, groups: Groups }]
  authFail: [{ message: { auth: false, code?: ErrorCode, error?: string, [k: string]: unknown } }]
  connectionFail: [{ err: { message: string, code: string } }]
  disconnected: [hadError: boolean]
  close: [hadError: boolean]
  sendError: [RicochetErrorObject & { message: unknown }]
  receiveError: [RicochetErrorObject & { message: unknown }]
  error: [err: Error & { code?: string }]
  end: []
  drain: []
  timeout: []
  lookup: [err: null, address: string, family: 4 | 6, host: string]
}

export declare class Client extends EventEmitter {
  constructor (config?: Config)
  readonly config: Required<Config>
  /** EventEmitter2 with wildcards (`files.*`, `**`), delimiter `.`. */
  readonly handles: EventEmitter2
  readonly channel: string | null
  readonly groups: Groups | null
  readonly ready: boolean
  /** Bytes accepted for sending and not yet written to the socket. */
  readonly bufferedAmount: number
  connect (options: ConnectOptions, callback?: (err?: RicochetError) => void): this
  encrypt (): this
  insecure (): this
  timeout (ms: number): this
  message (channel: string, handle: string, body?: unknown): this
  request<R = unknown> (channel: string, handle: string, body?: unknown): Request<R>
  requestAsync<R = unknown> (channel: string, handle: string, body?: unknown, options?: RequestOptions<R>): Promise<R>
  /** A request handler: `(body, reply, msg)`. */
  handle<B = unknown> (name: string, fn: (body: B, reply: Reply, msg: Frame<B>) => void): this
  /** A message handler: `(body, msg)`. */
  handle<B = unknown> (name: string, fn: (body: B, msg: Frame<B>) => void): this
  notHandled (fn: ((frame: Frame) => void) | null): this
  flushHandles (): this
  close (callback?: () => void): Promise<void>
  on<K extends keyof ClientEvents> (event: K, listener: (...args: ClientEvents[K]) => void): this
  once<K extends keyof ClientEvents> (event: K, listener: (...args: ClientEvents[K]) => void): this
  off<K extends keyof ClientEvents> (event: K, listener: (...args: ClientEvents[K]) => void): this
  emit<K extends keyof ClientEvents> (event: K, ...args: ClientEvents[K]): boolean
}
