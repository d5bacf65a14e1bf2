//! The ricochet client core: one actor task owns the socket, (re)connects with backoff,
//! authenticates, checks and decrypts incoming frames (PROTOCOL.md §5) and writes outgoing ones
//! through a coalescing writer. Request bookkeeping, handles and timers live in the JS layer;
//! everything per-byte lives here.

pub mod backoff;
mod reader;
mod templates;

use reader::ReadEnd;
pub use reader::{Pumped, ReadHandoff, SocketReader};

use crate::codes::{self, Code};
use crate::net::{io_code, lock, now_ms};
use crate::server::{Event, EventSink};
use crate::wire::crypto;
use crate::wire::frame::{FrameError, LineCodec};
use crate::wire::json;
use crate::wire::message::{parse_line, Frame, Headers, Parsed};
use crate::wire::outbound::{Outbound, WriteSide};
use crate::wire::scan::Raw;
use crate::wire::seal::{Encryption, Seal};
use bytes::Bytes;
use serde_json::Value;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::FramedRead;

/// Initial read buffer per connection; it grows for longer lines. Small, because ten thousand
/// mostly idle connections each hold one.
const READ_BUFFER: usize = 2 * 1024;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connection settings, validated by `lib/client-options.js`.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server host name or address (resolved on every attempt).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Local address to bind before connecting.
    pub local_address: Option<String>,
    /// `publicKey` as JSON, copied verbatim into the auth frame.
    pub public_key_json: String,
    /// The shared secret used as the encryption password.
    pub private_key: String,
    /// The authKey sent (encrypted) in the auth frame.
    pub auth_key: String,
    /// `timeouts.reconnect`: the first reconnect delay.
    pub reconnect: Duration,
    /// Longest reconnect delay.
    pub reconnect_cap: Duration,
    /// Longest accepted incoming line.
    pub max_message_size: usize,
    /// Outbound bytes allowed to wait; beyond it sends fail.
    pub max_buffer: usize,
    /// Outbound high-water mark: `drain` fires when the buffer falls below it after exceeding it.
    pub high_water: usize,
    /// `timeouts.idle`: reconnect when nothing arrives for this long (`timeout` event).
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive idle time.
    pub keepalive: Option<Duration>,
    /// The payload cipher.
    pub encryption: Encryption,
    /// Frames whose headers repeat go to the events as `f` against `tpl` definitions
    /// (see `client::templates`) instead of as whole `frame` lines.
    pub header_templates: bool,
}

/// Why a frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Not connected and authenticated.
    NotReady,
    /// The frame is larger than the limits allow.
    TooLarge,
    /// The outbound buffer is full.
    BufferFull,
}

impl SendError {
    /// The `ricochet.*` code reported for this failure.
    pub fn code(self) -> Code {
        match self {
            SendError::NotReady => codes::CLIENT_CONNECTION,
            SendError::TooLarge => codes::MESSAGE_TOOLARGE,
            SendError::BufferFull => codes::CLIENT_QUEUEFULL,
        }
    }
}

/// Bytes of received frames allowed to wait for the JS thread before reading pauses.
const MAX_BACKLOG: usize = 16 * 1024 * 1024;

struct Inner {
    opts: ClientOptions,
    cipher: Seal,
    events: EventSink,
    out: Mutex<Option<Arc<Outbound>>>,
    above: AtomicBool,
    stop: CancellationToken,
    tracker: TaskTracker,
    handoff: Option<Arc<dyn ReadHandoff>>,
}

impl Inner {
    fn emit(&self, name: &'static str, payload: String) {
        self.events.send(Event { name, payload });
    }
}

/// A running client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Starts connecting in the background; must be called inside a tokio runtime.
    pub fn start(opts: ClientOptions, events: EventSink) -> Client {
        Client::start_with(opts, events, None)
    }

    /// Same, offering every authenticated connection to `handoff` as a second reader.
    pub fn start_with(
        opts: ClientOptions,
        events: EventSink,
        handoff: Option<Arc<dyn ReadHandoff>>,
    ) -> Client {
        let inner = Arc::new(Inner {
            cipher: Seal::new(opts.encryption, opts.private_key.as_bytes()),
            opts,
            events,
            out: Mutex::new(None),
            above: AtomicBool::new(false),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            handoff,
        });
        inner.tracker.spawn(actor(inner.clone()));
        Client { inner }
    }

    /// Builds one frame `{"headers":…,"body":…}` into `out`; the body is encrypted when
    /// `encrypt` (padded with `id`, the delimiter escaped, D6).
    fn build_frame(
        &self,
        headers: &RecordHeaders<'_>,
        body_json: &[u8],
        encrypt: bool,
        id: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let start = out.len();
        out.extend_from_slice(b"{\"headers\":");
        push_headers(out, headers, id, encrypt);
        out.extend_from_slice(b",\"body\":");
        if encrypt {
            let escaped = crypto::escape_delimiter(body_json);
            out.push(b'"');
            if self
                .inner
                .cipher
                .encrypt_hex_into(&escaped, id, out)
                .is_err()
            {
                out.truncate(start);
                return Err(SendError::TooLarge);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(body_json);
        }
        out.extend_from_slice(b"}\n");
        if out.len() - start > self.inner.opts.max_message_size {
            out.truncate(start);
            return Err(SendError::TooLarge);
        }
        Ok(())
    }

    /// Sends a batch of records built by `lib/client.js`, each one of
    /// - `<E|P><id as JSON string>\0<headers JSON>\0<body JSON>\x01`: a frame whose headers JS
    ///   built (requests, replies, unusual header values), encrypted for `E`;
    /// - `<e|p><to JSON>\0<handle JSON>\0<body JSON>\x01`: a one-way message whose id (from a
    ///   CSPRNG, D15) and headers are made here, which saves the sending JS thread both.
    ///
    /// JSON text never contains raw control characters, so the separators are unambiguous. All
    /// frames go to the writer as one buffer. Returns the index and error of every record that
    /// was not sent.
    pub fn send_batch(&self, batch: &[u8]) -> Vec<(usize, SendError)> {
        let mut failed = Vec::new();
        let mut out = lock(&self.inner.out)
            .as_ref()
            .map(|o| o.take_spare())
            .unwrap_or_default();
        out.reserve(batch.len() * 2 + 64);
        let mut count = 0;
        let before = self.buffered();
        for (i, record) in batch
            .split(|b| *b == 1)
            .filter(|r| !r.is_empty())
            .enumerate()
        {
            count = i + 1;
            let mark = out.len();
            let Some(res) = parse_record(record).map(|(encrypt, id, headers, body)| {
                self.build_frame(&headers, body, encrypt, id.bytes(), &mut out)
            }) else {
                failed.push((i, SendError::TooLarge));
                continue;
            };
            if let Err(e) = res {
                failed.push((i, e));
                continue;
            }
            // The outbound bound holds frame by frame, as if each were sent alone.
            let waiting = before + mark;
            if waiting > 0 && waiting + (out.len() - mark) > self.inner.opts.max_buffer {
                out.truncate(mark);
                failed.push((i, SendError::BufferFull));
            }
        }
        if !out.is_empty() {
            if let Err(e) = self.enqueue(out) {
                // Every frame of the batch shares the fate of the one buffer.
                failed = (0..count).map(|i| (i, e)).collect();
            }
        }
        failed
    }

    /// Writes encoded frames (or queues them for the writer), within the outbound bound.
    fn enqueue(&self, frames: Vec<u8>) -> Result<(), SendError> {
        let inner = &self.inner;
        let guard = lock(&inner.out);
        let out = guard.as_ref().ok_or(SendError::NotReady)?;
        let before = out.queued();
        if before > 0 && before + frames.len() > inner.opts.max_buffer {
            return Err(SendError::BufferFull);
        }
        out.push(Bytes::from(frames))
            .map_err(|_| SendError::NotReady)?;
        if out.queued() >= inner.opts.high_water {
            inner.above.store(true, Ordering::Release);
            // The writer may have drained below the mark before the flag was set: then no
            // progress report will see it, so fire `drain` here.
            if out.queued() < inner.opts.high_water && inner.above.swap(false, Ordering::AcqRel) {
                inner.emit("drain", "null".into());
            }
        }
        Ok(())
    }

    /// Bytes accepted by `send_batch` and not yet written to the socket.
    pub fn buffered(&self) -> usize {
        lock(&self.inner.out).as_ref().map_or(0, |o| o.queued())
    }

    /// Stops reconnecting, closes the connection and waits for every task.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

fn err_payload(e: &std::io::Error) -> String {
    serde_json::json!({"message": e.to_string(), "code": io_code(e)}).to_string()
}

/// The headers of one `send_batch` record.
enum RecordHeaders<'a> {
    /// Header JSON built by JS.
    Json(&'a [u8]),
    /// A one-way message: `to` and `handle` as JSON; the id and the rest are made here.
    Message { to: &'a [u8], handle: &'a [u8] },
}

/// One `send_batch` record: (encrypt, id, headers, body JSON).
type Record<'a> = (bool, RecordId<'a>, RecordHeaders<'a>, &'a [u8]);

/// A record's id: from its headers JSON, or made for a one-way message.
enum RecordId<'a> {
    Given(Cow<'a, [u8]>),
    Fresh([u8; 32]),
}

impl RecordId<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            RecordId::Given(id) => id,
            RecordId::Fresh(id) => id,
        }
    }
}

/// Splits one `send_batch` record; a message record gets a fresh id.
fn parse_record(record: &[u8]) -> Option<Record<'_>> {
    let (flag, rest) = record.split_first()?;
    let mut parts = rest.splitn(3, |b| *b == 0);
    let first = parts.next()?;
    let second = parts.next()?;
    let body = parts.next()?;
    match flag {
        b'E' | b'P' => {
            let id: Cow<'_, str> = serde_json::from_slice(first).ok()?;
            let id = match id {
                Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
                Cow::Owned(o) => Cow::Owned(o.into_bytes()),
            };
            Some((
                *flag == b'E',
                RecordId::Given(id),
                RecordHeaders::Json(second),
                body,
            ))
        }
        b'e' | b'p' => Some((
            *flag == b'e',
            RecordId::Fresh(crate::net::fresh_id()),
            RecordHeaders::Message {
                to: first,
                handle: second,
            },
            body,
        )),
        _ => None,
    }
}

/// Writes a record's header JSON; a message's is
/// `{"id":…,"to":…,"type":"message","handle":…,"encrypted":…}` (JSON.stringify's order).
fn push_headers(out: &mut Vec<u8>, headers: &RecordHeaders<'_>, id: &[u8], encrypt: bool) {
    match headers {
        RecordHeaders::Json(json) => out.extend_from_slice(json),
        RecordHeaders::Message { to, handle } => {
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\",\"to\":");
            out.extend_from_slice(to);
            out.extend_from_slice(b",\"type\":\"message\",\"handle\":");
            out.extend_from_slice(handle);
            out.extend_from_slice(if encrypt {
                b",\"encrypted\":true}"
            } else {
                b",\"encrypted\":false}"
            });
        }
    }
}

/// The auth frame of §3.1: `{"publicKey":…,"authKey":<hex>,"authStamp":<hex>}`.
pub fn auth_frame(
    public_key_json: &str,
    cipher: &Seal,
    auth_key: &str,
    stamp_ms: i64,
) -> Option<Vec<u8>> {
    let stamp = cipher
        .encrypt_hex(stamp_ms.to_string().as_bytes(), b"")
        .ok()?;
    let key = cipher
        .encrypt_hex(auth_key.as_bytes(), stamp.as_bytes())
        .ok()?;
    Some(
        format!(
            "{{\"publicKey\":{public_key_json},\"authKey\":\"{key}\",\"authStamp\":\"{stamp}\"}}\n"
        )
        .into_bytes(),
    )
}

async fn connect(opts: &ClientOptions, inner: &Inner) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = tokio::net::lookup_host((opts.host.as_str(), opts.port))
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("getaddrinfo ENOTFOUND {}", opts.host),
            )
        })?;
    inner.emit(
        "lookup",
        serde_json::json!({"address": addr.ip().to_string(), "family": if addr.is_ipv4() { 4 } else { 6 }, "host": opts.host}).to_string(),
    );
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = &opts.local_address {
        let ip: std::net::IpAddr = local.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid localAddress {local}"),
            )
        })?;
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    if let Some(ka) = opts.keepalive {
        crate::net::set_keepalive(&stream, ka)?;
    }
    Ok(stream)
}

/// How a session ended.
struct SessionEnd {
    was_ready: bool,
    had_error: bool,
}

async fn actor(inner: Arc<Inner>) {
    let mut attempt: u32 = 0;
    let mut ever_connected = false;
    loop {
        let connected = tokio::select! {
            _ = inner.stop.cancelled() => break,
            c = connect(&inner.opts, &inner) => c,
        };
        match connected {
            Err(e) => inner.emit("connectionFail", format!("{{\"err\":{}}}", err_payload(&e))),
            Ok(stream) => {
                inner.emit(
                    if ever_connected {
                        "reconnected"
                    } else {
                        "connected"
                    },
                    "null".into(),
                );
                ever_connected = true;
                let end = session(&inner, stream).await;
                if end.was_ready {
                    attempt = 0;
                }
                if inner.stop.is_cancelled() {
                    break;
                }
                inner.emit(
                    "disconnected",
                    format!("{{\"hadError\":{}}}", end.had_error),
                );
            }
        }
        let wait = backoff::delay(
            attempt,
            inner.opts.reconnect,
            inner.opts.reconnect_cap,
            rand::random::<f64>(),
        );
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn session(inner: &Arc<Inner>, stream: TcpStream) -> SessionEnd {
    let (rd, mut wr) = stream.into_split();
    let mut end = SessionEnd {
        was_ready: false,
        had_error: false,
    };
    let Some(auth) = auth_frame(
        &inner.opts.public_key_json,
        &inner.cipher,
        &inner.opts.auth_key,
        now_ms(),
    ) else {
        return end;
    };
    if let Err(e) = wr.write_all(&auth).await {
        inner.emit("error", err_payload(&e));
        end.had_error = true;
        return end;
    }
    let mut idle_wr = Some(wr);
    let mut framed =
        FramedRead::with_capacity(rd, LineCodec::new(inner.opts.max_message_size), READ_BUFFER);
    let kill = inner.stop.child_token();
    let mut writer = None;
    let mut me: Option<(Value, Value)> = None; // (channel, groups)
    loop {
        wait_for_js(inner, &kill).await;
        let next = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            _ = crate::server::sleep_or_never(inner.opts.idle_timeout) => {
                inner.emit("timeout", "null".into());
                end.had_error = true;
                break;
            }
            n = crate::wire::frame::next_line(&mut framed, READ_BUFFER) => n,
        };
        let line = match next {
            None => {
                inner.emit("end", "null".into());
                break;
            }
            Some(Err(FrameError::Io(e))) => {
                inner.emit("error", err_payload(&e));
                end.had_error = true;
                break;
            }
            Some(Err(FrameError::TooLarge { .. })) => {
                receive_error(inner, codes::MESSAGE_TOOLARGE, "null");
                end.had_error = true;
                break;
            }
            Some(Ok(line)) => line,
        };
        let trimmed = crate::wire::frame::trim_line(&line);
        let text = lossy(trimmed);
        let Parsed::Object(obj) = parse_line(trimmed) else {
            not_an_object(inner, trimmed);
            continue;
        };
        let auth = obj.get("auth").map(|v| v.get());
        match auth {
            Some("true") | Some("false") => {}
            _ => {
                receive_error(inner, codes::MESSAGE_AUTH, &text);
                continue;
            }
        }
        let channel = obj
            .get("channel")
            .and_then(|v| serde_json::from_str::<Value>(v.get()).ok());
        let groups = obj
            .get("groups")
            .and_then(|v| serde_json::from_str::<Value>(v.get()).ok());
        match (auth, channel, groups) {
            (Some("true"), Some(c), Some(g)) => {
                me = Some((c, g));
                break;
            }
            _ => {
                inner.emit("authFail", format!("{{\"message\":{text}}}"));
                break;
            }
        }
    }
    if let Some((c, g)) = me {
        let Some(wr) = idle_wr.take() else {
            return end;
        };
        let parts = framed.into_parts();
        // From here tokio watches the socket for writability only (see WriteSide); reading
        // registers on demand (SocketReader::wait).
        let sock = match parts
            .io
            .reunite(wr)
            .map_err(|_| std::io::Error::other("socket halves do not match"))
            .and_then(TcpStream::into_std)
            .map(Arc::new)
        {
            Ok(sock) => sock,
            Err(e) => {
                inner.emit("error", err_payload(&e));
                end.had_error = true;
                return end;
            }
        };
        match WriteSide::write_only(sock.clone()) {
            Ok(w) => {
                let out = Outbound::new(w);
                let drained = inner.clone();
                writer = Some(
                    inner
                        .tracker
                        .spawn(out.clone().run(kill.clone(), move |left| {
                            if left < drained.opts.high_water
                                && drained.above.swap(false, Ordering::AcqRel)
                            {
                                drained.emit("drain", "null".into());
                            }
                        })),
                );
                *lock(&inner.out) = Some(out);
            }
            Err(e) => {
                inner.emit("error", err_payload(&e));
                end.had_error = true;
                let _ = sock.shutdown(std::net::Shutdown::Both);
                return end;
            }
        }
        // Ready only once the socket is set up: a failure before this is retried with backoff.
        end.was_ready = true;
        inner.emit(
            "ready",
            serde_json::json!({"channel": c, "groups": g}).to_string(),
        );
        let reader = Arc::new(SocketReader::new(
            inner.clone(),
            sock,
            parts.read_buf,
            parts.codec,
            (c, g),
            READ_BUFFER,
        ));
        // After `ready`, so no other thread can route a frame ahead of it.
        if let Some(h) = &inner.handoff {
            h.attach(reader.clone());
        }
        read_authed(inner, &reader, &kill, &mut end).await;
        reader.stop();
    }
    *lock(&inner.out) = None;
    kill.cancel();
    if let Some(w) = writer {
        let _ = w.await;
    }
    if let Some(mut w) = idle_wr {
        let _ = w.shutdown().await;
    }
    end
}

/// Waits while the JS thread is more than [`MAX_BACKLOG`] of events behind. A JS thread that
/// falls behind makes this client stop reading: TCP pushes back to the server, which drops us
/// as a slow consumer, instead of frames piling up in memory.
async fn wait_for_js(inner: &Inner, kill: &CancellationToken) {
    while inner.events.backlog() > MAX_BACKLOG && !kill.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The tokio side of reading an authenticated connection: wait for bytes (or the end another
/// reader saw), pump, and keep the idle timeout.
async fn read_authed(
    inner: &Arc<Inner>,
    reader: &SocketReader,
    kill: &CancellationToken,
    end: &mut SessionEnd,
) {
    loop {
        wait_for_js(inner, kill).await;
        // Pump before waiting (frames that came with the auth reply are already buffered) and
        // before judging silence (bytes nobody has read yet are not silence).
        if !reader.pump() {
            end.had_error = matches!(reader.end(), Some(ReadEnd::Failed | ReadEnd::TooLarge));
            return;
        }
        let idle_left = inner
            .opts
            .idle_timeout
            .map(|t| (reader.last_read() + t).saturating_duration_since(std::time::Instant::now()));
        if idle_left == Some(Duration::ZERO) {
            // Stopped first, so no frame is routed after `timeout`.
            reader.stop();
            inner.emit("timeout", "null".into());
            end.had_error = true;
            return;
        }
        tokio::select! {
            biased;
            _ = kill.cancelled() => return,
            _ = crate::server::sleep_or_never(idle_left) => {}
            _ = reader.wait() => {}
        }
    }
}

fn receive_error(inner: &Inner, code: Code, message_json: &str) {
    let full = code.full();
    inner.emit(
        "receiveError",
        format!(
            "{{\"Error\":{},\"code\":\"{full}\",\"message\":{message_json}}}",
            Value::String(code.text.into())
        ),
    );
}

/// The text of a line for error reports (invalid UTF-8 replaced).
fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Reports a line that is not a JSON object: falsy JSON is dropped silently (as the original
/// does), other JSON is `message_malformed`, anything else `message_badjson`.
fn not_an_object(inner: &Inner, line: &[u8]) {
    match parse_line(line) {
        Parsed::Falsy => {}
        Parsed::Object(_) | Parsed::NotObject => {
            receive_error(inner, codes::MESSAGE_MALFORMED, &lossy(line))
        }
        Parsed::Invalid(_) => receive_error(
            inner,
            codes::MESSAGE_BADJSON,
            &Value::String(lossy(line)).to_string(),
        ),
    }
}

/// Whether a raw JSON value equals `want` (compared as JSON values, like `===` on the parsed
/// channel name); strings are compared without building a value tree.
fn raw_equals(raw: Raw<'_>, want: &Value) -> bool {
    match want {
        Value::String(w) if raw.get().starts_with('"') => {
            json::as_str(raw.get()).is_some_and(|s| s == *w)
        }
        _ => serde_json::from_str::<Value>(raw.get()).is_ok_and(|v| v == *want),
    }
}

/// The group rule of §5 (a `true` on either side allows; D5): some scalar group in common.
/// Read in place, element by element, as `JSON.parse` would see them: a string holding a lone
/// surrogate escape (which a Rust string cannot hold) matches nothing but spoils nothing.
fn groups_allow(mine: &Value, theirs: Option<Raw<'_>>) -> bool {
    if *mine == Value::Bool(true) {
        return true;
    }
    let Some(theirs) = theirs else { return false };
    if theirs.get() == "true" {
        return true;
    }
    let (Value::Array(mine), Some(mut items)) = (mine, theirs.items()) else {
        return false;
    };
    items.any(|item| scalar_in(item, mine))
}

/// Whether a scalar element of a peer's groups equals one of `mine`'s scalars.
fn scalar_in(item: Raw<'_>, mine: &[Value]) -> bool {
    match item.get().as_bytes().first() {
        Some(b'"') => json::as_str(item.get())
            .is_some_and(|name| mine.iter().any(|a| a.as_str() == Some(&*name))),
        Some(b'{') | Some(b'[') | None => false,
        Some(_) => serde_json::from_str::<Value>(item.get()).is_ok_and(|v| {
            mine.iter()
                .any(|a| !a.is_object() && !a.is_array() && *a == v)
        }),
    }
}

/// §5 steps 1–4 on an authenticated connection: shape, addressee, groups (a `true` sender is
/// accepted, D5) and decryption. Returns the decrypted body JSON of an encrypted frame.
fn check_incoming<'b>(
    inner: &Inner,
    frame: &Frame<'_>,
    channel: &Value,
    groups: &Value,
    plain_buf: &'b mut Vec<u8>,
) -> Result<Option<Cow<'b, str>>, Code> {
    let Headers::Object(headers) = &frame.headers else {
        return Err(codes::MESSAGE_MALFORMED);
    };
    let body = frame.top.get("body").ok_or(codes::MESSAGE_MALFORMED)?;
    if !["to", "from", "id", "type"]
        .iter()
        .all(|k| headers.contains(k))
    {
        return Err(codes::MESSAGE_MALFORMED);
    }
    if !headers.get("to").is_some_and(|to| raw_equals(to, channel)) {
        return Err(codes::MESSAGE_CHANNEL);
    }
    if !groups_allow(groups, headers.get("groups")) {
        return Err(codes::MESSAGE_GROUP);
    }
    let encrypted = headers
        .get("encrypted")
        .is_some_and(|v| json::truthy(v.get()));
    if !encrypted {
        return Ok(None);
    }
    json::as_str(body.get())
        .and_then(|hex| {
            inner
                .cipher
                .decrypt_piece_in(hex.as_bytes(), plain_buf)
                .ok()
                .flatten()
        })
        .filter(|p| json::is_truthy_json(p))
        .map(Some)
        .ok_or(codes::MESSAGE_DECRYPT)
}

/// The frame as JSON for a `frame` event: the received line itself, or with the decrypted
/// body `plain` spliced in place of the ciphertext.
fn whole_frame(frame: &Frame<'_>, plain: Option<&str>) -> Result<String, Code> {
    let text = frame.text;
    let Some(plain) = plain else {
        return Ok(text.to_owned());
    };
    let body = frame.top.get("body").ok_or(codes::MESSAGE_MALFORMED)?;
    // The body value is a slice of the line.
    let start = (body.get().as_ptr() as usize)
        .checked_sub(text.as_ptr() as usize)
        .filter(|s| s + body.get().len() <= text.len())
        .ok_or(codes::MESSAGE_MALFORMED)?;
    let end = start + body.get().len();
    let (Some(head), Some(tail)) = (text.get(..start), text.get(end..)) else {
        return Err(codes::MESSAGE_MALFORMED);
    };
    let mut out = String::with_capacity(head.len() + plain.len() + tail.len());
    out.push_str(head);
    out.push_str(plain);
    out.push_str(tail);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(mine: &str, theirs: &str) -> bool {
        let mine: Value = serde_json::from_str(mine).expect("json");
        groups_allow(&mine, Some(Raw::parse(theirs).expect("json")))
    }

    #[test]
    fn groups_meet_on_any_common_scalar_as_in_the_original() {
        assert!(allow(r#"["a","b"]"#, r#"["c","b"]"#));
        assert!(!allow(r#"["a"]"#, r#"["b"]"#));
        assert!(allow(r#"["a"]"#, "true"));
        assert!(allow("true", r#"["x"]"#));
        assert!(!allow(r#"["a"]"#, "false"));
        assert!(!allow(r#"["a"]"#, r#""a""#));
        assert!(allow(r#"[1,"a"]"#, "[2,1]"));
        assert!(allow(r#"[null]"#, r#"["x",null]"#));
        assert!(allow(r#"["é"]"#, r#"["\u00e9"]"#));
        assert!(!allow(r#"[{"a":1},[1]]"#, r#"[{"a":1},[1]]"#));
        assert!(!allow(r#"["a"]"#, "[]"));
        assert!(!groups_allow(&serde_json::json!(["a"]), None));
    }

    #[test]
    fn a_lone_surrogate_group_matches_nothing_and_spoils_nothing() {
        assert!(allow(r#"["a"]"#, r#"["\ud800","a"]"#));
        assert!(allow(r#"["a"]"#, r#"["\ud800",1,"a"]"#));
        assert!(!allow(r#"["a"]"#, r#"["\ud800"]"#));
    }
}
