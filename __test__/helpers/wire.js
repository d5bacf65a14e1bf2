'use strict';

// Independent test oracle for the ricochet.js 0.3.x wire protocol (shared/PROTOCOL.md §1–5, §7).
//
// Built only on Node built-ins. It deliberately shares no code with the project under test: the
// crypto is Node's own AES-256-XTS plus an EVP_BytesToKey(MD5) derivation written out by hand, and
// the framing is a plain LF splitter over a raw TCP socket.

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');

/** `delimiters.encryption`: `"{ENCRYPT}"` including both double quotes (11 bytes). */
const DELIM = '"{ENCRYPT}"';
/** Default padding: sixteen LF characters. */
const PAD16 = '\n'.repeat(16);
const ALGORITHM = 'aes-256-xts';
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const DEFAULT_WAIT_MS = 2000;

const VECTORS_DIR = path.join(__dirname, '..', '..', '..', 'shared', 'vectors');

// ---------------------------------------------------------------------------------------------------
// Crypto (§2)

/**
 * `crypto.createCipher` key derivation: EVP_BytesToKey with MD5, no salt, one round, over the UTF-8
 * password. D1 = MD5(P), Di = MD5(D(i-1) || P); key = D1..D4 (64 bytes), iv = D5 (16 bytes).
 */
function deriveKeyIv(password) {
  const pass = Buffer.isBuffer(password) ? password : Buffer.from(String(password), 'utf8');
  const blocks = [];
  let prev = Buffer.alloc(0);
  while (blocks.length < 5) {
    prev = crypto.createHash('md5').update(Buffer.concat([prev, pass])).digest();
    blocks.push(prev);
  }
  return { key: Buffer.concat(blocks.slice(0, 4)), iv: blocks[4] };
}

/**
 * The sender's plaintext, exactly as 0.3.x builds it:
 * `util.format('%s%s%s', data, DELIM, pad || PAD16)`. `%s` keeps strings as they are and writes
 * numbers in JS decimal form (`-0` stays `"-0"`, unlike `String(-0)`).
 */
function plaintextOf(data, pad) {
  return util.format('%s%s%s', data, DELIM, pad || PAD16);
}

/**
 * Encrypt `data` for the wire: lowercase hex of AES-256-XTS over the whole plaintext as ONE data
 * unit (one `update()` call). Throws like Node does for plaintexts under 16 bytes.
 */
function encrypt(password, data, pad) {
  const { key, iv } = deriveKeyIv(password);
  const cipher = crypto.createCipheriv(ALGORITHM, key, iv);
  const out = Buffer.concat([cipher.update(Buffer.from(plaintextOf(data, pad), 'utf8')), cipher.final()]);
  return out.toString('hex');
}

/**
 * Full decrypted plaintext (no trimming, no splitting). Node hex rules: odd length throws, decoding
 * stops at the first non-hex pair; fewer than 16 bytes throws. Invalid UTF-8 becomes U+FFFD.
 */
function decryptRaw(password, hex) {
  const { key, iv } = deriveKeyIv(password);
  const decipher = crypto.createDecipheriv(ALGORITHM, key, iv);
  const out = Buffer.concat([decipher.update(String(hex), 'hex'), decipher.final()]);
  return out.toString('utf8');
}

/**
 * Receiver result (§2.6 with the D6 fix): decrypt, `String.prototype.trim`, keep what precedes the
 * LAST delimiter (the whole text if there is none). An empty result, or any exception, gives `false`.
 */
function decrypt(password, hex) {
  try {
    const text = decryptRaw(password, hex).trim();
    const at = text.lastIndexOf(DELIM);
    const piece = at === -1 ? text : text.slice(0, at);
    return piece === '' ? false : piece;
  } catch (_err) {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Frames (§3, §4)

/**
 * The client's auth frame (§3.1), key order publicKey, authKey, authStamp, then `extra` fields.
 * authStamp = encrypt(privateKey, stamp) with PAD16; authKey = encrypt(privateKey, authKey, authStamp hex).
 */
function authFrame({ publicKey, privateKey, authKey, stamp = Date.now(), extra } = {}) {
  const authStamp = encrypt(privateKey, stamp);
  const frame = { publicKey, authKey: encrypt(privateKey, authKey, authStamp), authStamp };
  if (extra) Object.assign(frame, extra);
  return frame;
}

/** A 32-character id over [A-Za-z0-9], from a CSPRNG. */
function newId() {
  let id = '';
  for (let i = 0; i < 32; i++) id += ID_ALPHABET[crypto.randomInt(ID_ALPHABET.length)];
  return id;
}

const JSON_BLANK = /^[ \t\r\n]*$/;

/**
 * A raw TCP peer that speaks newline-delimited JSON.
 *
 * Received bytes are split strictly on LF; lines that are empty or JSON whitespace only are skipped.
 * Every other line is kept in `lines` (raw text, without the LF). Lines that parse are appended to
 * `frames`; lines that do not parse also go to `badLines`. An unterminated tail is never delivered
 * as a frame; once the socket closes it is left in `remainder`.
 *
 * `next()` / `nextMatching()` consume frames: each received frame is handed out at most once, in
 * arrival order. `nextMatching` leaves non-matching frames unread for later calls.
 */
class RawClient {
  constructor(socket) {
    this.socket = socket;
    /** @type {any[]} parsed frames, in arrival order */
    this.frames = [];
    /** @type {string[]} raw non-blank lines, without the LF */
    this.lines = [];
    /** @type {string[]} lines that failed JSON.parse */
    this.badLines = [];
    /** @type {Error[]} socket errors (kept so they never go unhandled) */
    this.errors = [];
    /** unterminated bytes left when the socket closed */
    this.remainder = '';
    this.closed = false;
    /** the party passed to the last auth(), used as the default key for message() */
    this.party = null;
    /** the write promise of the last message() */
    this.lastWrite = null;

    this._pending = [];
    this._consumed = [];
    this._cursor = 0;
    this._waiters = [];
    this._isEnded = false;
    this._endWaiters = [];
    this._closeWaiters = [];

    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('end', () => this._onEnd());
    socket.on('close', () => this._onClose());
    socket.on('error', (err) => this.errors.push(err));
    RawClient._open.add(this);
  }

  /** Connect to `host:port` with TCP_NODELAY on. Resolves once connected. */
  static async connect(port, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.setNoDelay(true);
      const client = new RawClient(socket);
      const onError = (err) => {
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.removeListener('error', onError);
        resolve(client);
      });
    });
  }

  /** Close every RawClient that is still open (handy in afterEach/afterAll). */
  static async closeAll() {
    await Promise.all([...RawClient._open].map((c) => c.close()));
  }

  /**
   * Write `JSON.stringify(value) + '\n'`, or a string/Buffer exactly as given (for hand-made bytes).
   * Resolves once the data has been handed to the kernel; rejects on a write error.
   */
  send(value) {
    const out = typeof value === 'string' || value instanceof Uint8Array ? value : JSON.stringify(value) + '\n';
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed || !this.socket.writable) {
        reject(new Error('socket is not writable'));
        return;
      }
      this.socket.write(out, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Next unread frame. Rejects with Error('timeout waiting for frame') after `timeoutMs`. */
  next(timeoutMs = DEFAULT_WAIT_MS) {
    return this.nextMatching(() => true, timeoutMs);
  }

  /**
   * First unread frame for which `pred(frame)` is truthy; other frames stay unread. The promise is
   * pre-marked as handled, so one that is never awaited cannot raise an unhandled rejection.
   */
  nextMatching(pred, timeoutMs = DEFAULT_WAIT_MS) {
    const promise = new Promise((resolve, reject) => {
      for (let i = this._cursor; i < this.frames.length; i++) {
        if (this._consumed[i]) continue;
        let hit;
        try {
          hit = pred(this.frames[i]);
        } catch (err) {
          reject(err);
          return;
        }
        if (hit) {
          this._consume(i);
          resolve(this.frames[i]);
          return;
        }
      }
      const waiter = { pred, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        this._dropWaiter(waiter);
        reject(new Error('timeout waiting for frame'));
      }, timeoutMs);
      this._waiters.push(waiter);
    });
    promise.catch(() => {});
    return promise;
  }

  /** Frames received but not yet handed out by next()/nextMatching(). */
  unread() {
    return this.frames.filter((_f, i) => !this._consumed[i]);
  }

  /**
   * Resolves when the peer ends or closes the connection (at once if that already happened).
   * With `timeoutMs`, rejects with Error('timeout waiting for end') if it does not happen in time.
   */
  ended(timeoutMs) {
    if (this._isEnded || this.closed) return Promise.resolve();
    const promise = new Promise((resolve, reject) => {
      const entry = { resolve, timer: null };
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          const at = this._endWaiters.indexOf(entry);
          if (at !== -1) this._endWaiters.splice(at, 1);
          reject(new Error('timeout waiting for end'));
        }, timeoutMs);
      }
      this._endWaiters.push(entry);
    });
    promise.catch(() => {});
    return promise;
  }

  /**
   * Send the auth frame for `party` ({publicKey, privateKey, authKey}) and return the reply frame.
   * `opts`: `stamp`, `extra` (see authFrame) and `timeout` (ms to wait for the reply).
   */
  async auth(party, opts = {}) {
    const { timeout = DEFAULT_WAIT_MS, stamp, extra } = opts;
    this.party = party;
    const frame = authFrame({
      publicKey: party.publicKey,
      privateKey: party.privateKey,
      authKey: party.authKey,
      stamp: stamp === undefined ? Date.now() : stamp,
      extra,
    });
    await this.send(frame);
    return this.next(timeout);
  }

  /**
   * Build and send a frame the way stock clients do (§4.2):
   * `{headers:{id,to,type,handle,encrypted[,timeout][,status][,...extraHeaders]}, body}`.
   * When `encrypted` is truthy the body is encrypt(privateKey, JSON.stringify(body), id);
   * `privateKey` defaults to the key of the party passed to auth(). Returns the frame; the write
   * promise is kept in `lastWrite`.
   */
  message(to, handle, body, opts = {}) {
    const {
      encrypted = true,
      privateKey = this.party ? this.party.privateKey : undefined,
      id = newId(),
      type = 'message',
      timeout,
      status,
      extraHeaders,
    } = opts;
    const headers = { id, to, type, handle, encrypted };
    if (timeout !== undefined) headers.timeout = timeout;
    if (status !== undefined) headers.status = status;
    if (extraHeaders) Object.assign(headers, extraHeaders);
    let wireBody = body;
    if (encrypted) {
      if (privateKey === undefined || privateKey === null) {
        throw new TypeError('message(): encrypted frames need opts.privateKey or a prior auth()');
      }
      wireBody = encrypt(privateKey, JSON.stringify(body), id);
    }
    const frame = { headers, body: wireBody };
    const write = this.send(frame);
    write.catch(() => {});
    this.lastWrite = write;
    return frame;
  }

  /** Destroy the socket; resolves on 'close'. Pending next() calls reject; all timers are cleared. */
  close() {
    for (const waiter of this._waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('client closed while waiting for frame'));
    }
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this._closeWaiters.push(resolve);
      this.socket.destroy();
    });
  }

  // -------------------------------------------------------------------------------------------------

  _onData(chunk) {
    let start = 0;
    let lf = chunk.indexOf(0x0a, start);
    while (lf !== -1) {
      this._pending.push(chunk.subarray(start, lf));
      const line = Buffer.concat(this._pending).toString('utf8');
      this._pending = [];
      this._onLine(line);
      start = lf + 1;
      lf = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) this._pending.push(chunk.subarray(start));
  }

  _onLine(line) {
    if (JSON_BLANK.test(line)) return;
    this.lines.push(line);
    let value;
    try {
      value = JSON.parse(line);
    } catch (_err) {
      this.badLines.push(line);
      return;
    }
    const index = this.frames.push(value) - 1;
    for (const waiter of this._waiters) {
      let hit;
      try {
        hit = waiter.pred(value);
      } catch (err) {
        this._dropWaiter(waiter);
        waiter.reject(err);
        return;
      }
      if (hit) {
        this._dropWaiter(waiter);
        this._consume(index);
        waiter.resolve(value);
        return;
      }
    }
  }

  _consume(index) {
    this._consumed[index] = true;
    while (this._consumed[this._cursor]) this._cursor++;
  }

  _dropWaiter(waiter) {
    clearTimeout(waiter.timer);
    const at = this._waiters.indexOf(waiter);
    if (at !== -1) this._waiters.splice(at, 1);
  }

  _onEnd() {
    this._isEnded = true;
    this._flushEndWaiters();
  }

  _onClose() {
    this.closed = true;
    this._isEnded = true;
    if (this._pending.length) {
      this.remainder = Buffer.concat(this._pending).toString('utf8');
      this._pending = [];
    }
    RawClient._open.delete(this);
    this._flushEndWaiters();
    for (const resolve of this._closeWaiters.splice(0)) resolve();
  }

  _flushEndWaiters() {
    for (const entry of this._endWaiters.splice(0)) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
  }
}

/** @type {Set<RawClient>} */
RawClient._open = new Set();

// ---------------------------------------------------------------------------------------------------
// Vectors

/** Parsed shared/vectors/frames.json (a fresh copy on every call). */
function loadFrames() {
  return JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, 'frames.json'), 'utf8'));
}

/** Parsed shared/vectors/crypto.json (a fresh copy on every call). */
function loadCrypto() {
  return JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, 'crypto.json'), 'utf8'));
}

module.exports = {
  DELIM,
  PAD16,
  deriveKeyIv,
  encrypt,
  decrypt,
  decryptRaw,
  authFrame,
  newId,
  RawClient,
  loadFrames,
  loadCrypto,
};
