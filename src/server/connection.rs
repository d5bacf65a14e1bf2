//! The accept loop and the life of one connection: a reader task that authenticates and then
//! routes frames in order, and a writer task that drains the connection's outbound queue with
//! coalesced writes.

use super::auth::{self, Failure};
use super::events::{raw_ref, Payload};
use super::registry::{Authed, Conn};
use super::{router, Shared};
use crate::codes::{self, Code};
use crate::net::new_id;
use crate::net::{io_code, now_ms};
use crate::wire::frame::trim_line;
use crate::wire::frame::{FrameError, LineCodec};
use crate::wire::message::{parse_line, Envelope, EnvelopeError, Layout, Parsed, RawObject};
use crate::wire::outbound::Outbound;
use bytes::Bytes;
use futures_util::FutureExt;
use md5::{Digest, Md5};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

/// Initial read buffer per connection; it grows for longer lines. Small, because ten thousand
/// mostly idle connections each hold one.
const READ_BUFFER: usize = 2 * 1024;

/// Frames a client may send ahead of its auth reply; beyond this the server stops reading
/// until the auth callback answers.
const MAX_EARLY_FRAMES: usize = 64;

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let full = super::lock(&shared.registry).len() >= shared.config.max_connections;
                if full {
                    refuse(&shared, stream, addr, codes::SERVER_MAXCONNECTIONS);
                    continue;
                }
                if shared.auth_blocked(canonical(addr.ip())) {
                    refuse(&shared, stream, addr, codes::AUTH_RATELIMIT);
                    continue;
                }
                let s = shared.clone();
                shared.tracker.spawn(run(s, stream, addr));
            }
            Err(e) => {
                // Typically EMFILE: report it and back off instead of spinning.
                shared.emit(
                    "error",
                    Payload::new()
                        .str("message", &e.to_string())
                        .str("code", io_code(&e))
                        .done(),
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// An address with IPv4-mapped IPv6 reduced to IPv4, so both forms count as one peer.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(std::net::IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Turns away a connection (over `maxConnections`, or an address over `maxAuthFailures`) with a
/// reason it can read.
fn refuse(shared: &Arc<Shared>, stream: TcpStream, addr: SocketAddr, code: Code) {
    shared.emit(
        "clientRejected",
        Payload::new()
            .str("ip", &addr.ip().to_string())
            .error(code)
            .done(),
    );
    let reply = auth_false(code);
    shared.tracker.spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

/// `{"auth":false}` plus the reason, which stock clients ignore (D19).
fn auth_false(code: Code) -> String {
    format!(
        "{{\"auth\":false,\"code\":\"{}\",\"error\":{}}}\n",
        code.full(),
        serde_json::Value::String(code.text.into())
    )
}

/// How a connection ended.
enum End {
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Io(std::io::Error),
    /// Closed by the server: shutdown, slow consumer.
    Killed,
    /// Auth failed or timed out (already reported).
    AuthFailed,
    /// A line exceeded `maxMessageSize` (already reported).
    TooLarge,
    /// Nothing arrived for `timeouts.idle`.
    Idle,
}

/// Sleeps for `d`, or forever when there is no limit.
pub(crate) async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn run(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    shared
        .counters
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    if let Some(ka) = shared.config.keepalive {
        let _ = crate::net::set_keepalive(&stream, ka);
    }
    let (rd, wr) = stream.into_split();
    let out = Outbound::new(wr);
    let conn = Arc::new(Conn::new(
        new_id(),
        addr.ip().to_string(),
        out.clone(),
        shared.shutdown.child_token(),
    ));
    super::lock(&shared.registry).insert(conn.clone());
    crate::trace!("connection {} from {}", conn.id, conn.ip);
    shared.emit(
        "clientConnected",
        Payload::new()
            .str("id", &conn.id)
            .str("ip", &conn.ip)
            .done(),
    );
    let writer = shared.tracker.spawn(out.run(conn.kill.clone(), |_| {}));

    let mut framed = FramedRead::with_capacity(
        rd,
        LineCodec::new(shared.config.max_message_size),
        READ_BUFFER,
    );
    let mut early = Vec::new();
    let end = match authenticate(&shared, &conn, &mut framed, addr, &mut early).await {
        Ok(()) => serve(&shared, &conn, &mut framed, early).await,
        Err(end) => end,
    };

    super::lock(&shared.registry).remove(&conn);
    router::answer_owed(&shared, &conn);
    match &end {
        End::Eof => shared.emit(
            "clientEnd",
            Payload::new()
                .str("id", &conn.id)
                .raw("data", "null")
                .done(),
        ),
        End::Io(e) => shared.emit(
            "clientError",
            Payload::new()
                .str("id", &conn.id)
                .str("Error", &e.to_string())
                .str("code", io_code(e))
                .done(),
        ),
        End::Idle => shared.emit("clientTimeout", Payload::new().str("id", &conn.id).done()),
        End::Killed if conn.slow.load(Ordering::Relaxed) => shared.emit(
            "clientError",
            Payload::new()
                .str("id", &conn.id)
                .error(codes::CLIENT_SLOW)
                .done(),
        ),
        _ => {}
    }
    // The writer flushes what is queued, sends FIN and ends.
    conn.out.close();
    let _ = writer.await;
    // Ends what lives as long as the connection (its cluster subscription).
    conn.kill.cancel();
    crate::trace!("disconnected {}", conn.id);
    shared.emit(
        "clientDisconnected",
        Payload::new().str("id", &conn.id).done(),
    );
}

type Framed = FramedRead<OwnedReadHalf, LineCodec>;

/// Reads the next line, or how the connection ended.
async fn next_line(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    framed: &mut Framed,
) -> Result<Bytes, End> {
    let idle = shared.config.idle_timeout;
    let next = tokio::select! {
        biased;
        _ = conn.kill.cancelled() => return Err(End::Killed),
        _ = sleep_or_never(idle) => return Err(End::Idle),
        n = crate::wire::frame::next_line(framed, READ_BUFFER) => n,
    };
    took_line(shared, conn, next)
}

/// Frames in a row that [`buffered_line`] may take before one goes through [`next_line`]'s
/// check of the kill token again.
const UNCHECKED_RUN: u32 = 64;

/// The next line if it can be had without waiting, taken without [`next_line`]'s select: that
/// polls the kill token first, which locks its mutex twice and registers and removes a waiter
/// for every frame (~5 % of a streaming server's CPU). A caller takes at most
/// [`UNCHECKED_RUN`] in a row this way, so a killed connection still stops within as many
/// frames, all of them already received.
fn buffered_line(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    framed: &mut Framed,
) -> Option<Result<Bytes, End>> {
    crate::wire::frame::next_line(framed, READ_BUFFER)
        .now_or_never()
        .map(|next| took_line(shared, conn, next))
}

/// Counts a line read from the connection, or says how it ended.
fn took_line(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    next: Option<Result<Bytes, FrameError>>,
) -> Result<Bytes, End> {
    match next {
        None => Err(End::Eof),
        Some(Ok(line)) => {
            let c = &shared.counters;
            c.frames_in.fetch_add(1, Ordering::Relaxed);
            c.bytes_in
                .fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
            if shared.want_input.load(Ordering::Relaxed) && parses(&line) {
                shared.emit("clientInput", raw_ref(&conn.id, &line));
            }
            Ok(line)
        }
        Some(Err(FrameError::Io(e))) => Err(End::Io(e)),
        Some(Err(FrameError::TooLarge { .. })) => {
            let code = codes::MESSAGE_TOOLARGE;
            shared.counters.failed(code);
            shared.wants("messageError").then(|| {
                shared.emit(
                    "messageError",
                    Payload::new()
                        .error(code)
                        .raw("raw", &Payload::new().str("id", &conn.id).done())
                        .done(),
                )
            });
            let reply = if conn.authed.get().is_some() {
                format!(
                    "{{\"error\":{},\"code\":\"{}\"}}\n",
                    serde_json::Value::String(code.text.into()),
                    code.full()
                )
            } else {
                auth_false(code)
            };
            let _ = conn.send(Bytes::from(reply), usize::MAX);
            Err(End::TooLarge)
        }
    }
}

fn parses(line: &[u8]) -> bool {
    !matches!(parse_line(line), Parsed::Invalid(_) | Parsed::Falsy)
}

fn invalid(shared: &Arc<Shared>, conn: &Arc<Conn>, line: &[u8]) {
    shared.counters.failed(codes::MESSAGE_BADJSON);
    if !shared.wants("invalidMessage") {
        return;
    }
    shared.emit(
        "invalidMessage",
        Payload::new()
            .str("id", &conn.id)
            .str("msg", &String::from_utf8_lossy(trim_line(line)))
            .error(codes::MESSAGE_BADJSON)
            .done(),
    );
}

/// Runs the auth phase; `Ok` once the connection holds its channel.
async fn authenticate(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    framed: &mut Framed,
    addr: SocketAddr,
    early: &mut Vec<Bytes>,
) -> Result<(), End> {
    let deadline = tokio::time::sleep(shared.config.auth_timeout);
    tokio::pin!(deadline);
    let timed_out = |shared: &Arc<Shared>| {
        shared
            .counters
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        crate::trace!("auth timeout {}", conn.id);
        shared.emit(
            "clientAuthFail",
            Payload::new()
                .str("id", &conn.id)
                .str("ip", &conn.ip)
                .error(codes::AUTH_TIMEOUT)
                .done(),
        );
        End::AuthFailed
    };
    loop {
        let line = tokio::select! {
            _ = &mut deadline => return Err(timed_out(shared)),
            l = next_line(shared, conn, framed) => l?,
        };
        let frame = match parse_line(&line) {
            Parsed::Invalid(_) => {
                invalid(shared, conn, &line);
                continue;
            }
            Parsed::Falsy => continue,
            Parsed::NotObject => {
                fail(
                    shared,
                    conn,
                    &line,
                    Failure::from(codes::AUTH_MALFORMED),
                    None,
                );
                return Err(End::AuthFailed);
            }
            Parsed::Object(o) => o,
        };
        if !auth::frame_is_well_formed(&frame) {
            fail(
                shared,
                conn,
                &line,
                Failure::from(codes::AUTH_MALFORMED),
                None,
            );
            return Err(End::AuthFailed);
        }
        let data = callback_input(&frame, &addr);
        // Keep reading while the callback runs, so a peer that leaves is noticed at once (its
        // late result is then ignored, D17). Frames sent ahead of the auth reply are kept, up to
        // a bound, and routed in order once logged in.
        let ask = shared.ask_auth(data);
        tokio::pin!(ask);
        let answer = loop {
            let reading = early.len() < MAX_EARLY_FRAMES;
            tokio::select! {
                _ = &mut deadline => return Err(timed_out(shared)),
                _ = conn.kill.cancelled() => return Err(End::Killed),
                a = &mut ask => break a,
                l = next_line(shared, conn, framed), if reading => early.push(l?),
            }
        };
        let result = match answer {
            None => return Err(End::Killed),
            Some(super::AuthAnswer::Err(err)) => {
                let error = err.to_string();
                fail(
                    shared,
                    conn,
                    &line,
                    Failure::from(codes::AUTH_FAILURE),
                    Some(&error),
                );
                return Err(End::AuthFailed);
            }
            Some(super::AuthAnswer::Ok(v)) => v,
        };
        let window = shared.config.auth_key_window.as_millis() as i64;
        let accepted = match auth::check_result(
            &result,
            &frame,
            &addr,
            now_ms(),
            window,
            shared.config.encryption,
        ) {
            Ok(a) => a,
            Err(f) => {
                fail(shared, conn, &line, f, None);
                return Err(End::AuthFailed);
            }
        };
        let channel_json = serde_json::Value::String(accepted.channel.clone()).to_string();
        let cluster = shared.cluster.get().cloned();
        let elsewhere = match &cluster {
            Some(c) => c.held_elsewhere(&accepted.channel).await,
            None => false,
        };
        let claimed = !elsewhere && super::lock(&shared.registry).claim(conn, &accepted.channel);
        if !claimed {
            let f = Failure::from(codes::AUTH_CHANNEL).with("provided", channel_json.to_string());
            fail(shared, conn, &line, f, None);
            return Err(End::AuthFailed);
        }
        let reply = format!(
            "{{\"auth\":true,\"channel\":{channel_json},\"groups\":{}}}\n",
            accepted.groups.json
        );
        if let Some(c) = cluster {
            // Serves the channel to the cluster until the connection ends; subscribed before the
            // login reply, so the client is reachable cluster-wide once it is ready.
            if let Some(sub) = c.subscribe(&accepted.channel).await {
                let (s2, c2) = (shared.clone(), conn.clone());
                shared
                    .tracker
                    .spawn(async move { c.serve(s2, c2, sub).await });
            }
        }
        let _ = conn.authed.set(Authed {
            channel: accepted.channel,
            channel_json: channel_json.into(),
            groups: accepted.groups,
            cipher: accepted.cipher,
        });
        let _ = conn.send(Bytes::from(reply), usize::MAX);
        shared.counters.auth_success.fetch_add(1, Ordering::Relaxed);
        if let Some(a) = conn.authed.get() {
            crate::trace!(
                "auth ok {} as channel {} groups {}",
                conn.id,
                a.channel,
                a.groups.json
            );
        }
        shared.emit("clientReady", Payload::new().str("id", &conn.id).done());
        return Ok(());
    }
}

/// The auth frame's fields plus the peer's `ip` and `iphash` (upper-case MD5 hex of the ip),
/// which the server sets so a client cannot spoof them.
fn callback_input(frame: &RawObject, addr: &SocketAddr) -> String {
    let ip = auth::normalized_ip(addr);
    let iphash: String = Md5::digest(ip.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let mut p = Payload::new();
    for (k, v) in frame {
        if k != "ip" && k != "iphash" {
            p = p.raw(k, v.get());
        }
    }
    p.str("ip", &ip).str("iphash", &iphash).done()
}

/// Rejects a login: `{"auth":false,…}` to the client, `clientAuthFail` to the application.
fn fail(shared: &Arc<Shared>, conn: &Arc<Conn>, line: &[u8], f: Failure, error_json: Option<&str>) {
    shared
        .counters
        .auth_failures
        .fetch_add(1, Ordering::Relaxed);
    crate::trace!("auth refused {}: {}", conn.id, f.code.full());
    if let Ok(ip) = conn.ip.parse() {
        shared.auth_failed(canonical(ip));
    }
    let _ = conn.send(Bytes::from(auth_false(f.code)), usize::MAX);
    let full = f.code.full();
    let mut p = match error_json {
        Some(e) => Payload::new().raw("Error", e).str("code", &full),
        None => Payload::new().error(f.code),
    };
    for (k, v) in &f.extra {
        p = p.raw(k, v);
    }
    p = p.raw("raw", &raw_ref(&conn.id, line));
    shared.emit("clientAuthFail", p.done());
}

/// Routes frames until the connection ends.
async fn serve(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    framed: &mut Framed,
    early: Vec<Bytes>,
) -> End {
    let Some(me) = conn.authed.get() else {
        return End::AuthFailed;
    };
    let mut early = early.into_iter();
    let mut scratch = router::Scratch::default();
    let pace_mark = (shared.config.max_queue_bytes / 4).clamp(16 * 1024, PACE_MARK);
    let flush_every = FLUSH_EVERY.min(pace_mark);
    // Bytes of frames routed since the last flush: a sender that never pauses must not make
    // its recipients' staged buffers grow until the slow-consumer limit.
    let mut since_flush = 0usize;
    let mut layout = Layout::default();
    // Frames taken by `buffered_line` since the kill token was last checked.
    let mut unchecked = 0u32;
    loop {
        let line = match early.next() {
            Some(l) => l,
            None => {
                // Frames routed from what was already read go out together: flush only when
                // the next frame is not available without waiting. A streaming sender (its
                // read buffer grown) may have more on the socket: try it first, so writes stay
                // coalesced. A quiet one has sent one frame: flush it now rather than pay a
                // failed recv before forwarding it.
                let buf = framed.read_buffer();
                let quiet = buf.is_empty() && buf.capacity() <= 2 * READ_BUFFER;
                let ready = if scratch.dirty.is_empty() || quiet || since_flush >= flush_every {
                    None
                } else if unchecked < UNCHECKED_RUN && !buf.is_empty() {
                    unchecked += 1;
                    buffered_line(shared, conn, framed)
                } else {
                    unchecked = 0;
                    next_line(shared, conn, framed).now_or_never()
                };
                let next = match ready {
                    Some(r) => r,
                    None => {
                        pace(&mut scratch.dirty, pace_mark, &conn.kill).await;
                        since_flush = 0;
                        unchecked = 0;
                        next_line(shared, conn, framed).await
                    }
                };
                match next {
                    Ok(l) => l,
                    Err(end) => {
                        flush(&mut scratch.dirty);
                        return end;
                    }
                }
            }
        };
        since_flush += line.len();
        // Frames waiting for other servers' answers hold this sender back (cluster only).
        while conn.forward_backlog.load(Ordering::Relaxed) > super::cluster::MAX_FORWARD_BACKLOG
            && !conn.kill.is_cancelled()
        {
            flush(&mut scratch.dirty);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match Envelope::parse_with(&line, &mut layout) {
            Ok(env) => router::route(shared, conn, me, env, &line, &mut scratch),
            Err(EnvelopeError::Malformed(_)) => malformed(shared, conn, &line),
            // Only failures pay for the second parse that tells bad JSON from other values.
            Err(EnvelopeError::NotAnObject) => match parse_line(&line) {
                Parsed::Invalid(_) => invalid(shared, conn, &line),
                Parsed::Falsy => {}
                Parsed::NotObject | Parsed::Object(_) => malformed(shared, conn, &line),
            },
        }
    }
}

/// Bytes queued to a recipient beyond which the connections sending to it stop reading until
/// it catches up (see [`pace`]).
const PACE_MARK: usize = 1024 * 1024;

/// Routed bytes after which staged frames are written even if more input is ready.
const FLUSH_EVERY: usize = 256 * 1024;

/// Flushes what was staged, then waits while a recipient of these frames has more than `mark`
/// bytes queued and is reading them: a sender faster than its receivers is held back through
/// TCP instead of the server buffering the difference (so memory stays near `mark` per
/// recipient, not `maxQueueSize`). A recipient that stopped reading, or that takes less than
/// 1 MiB/s over two seconds of pacing, is not waited for: its queue fills and the
/// slow-consumer rule drops it, as before.
async fn pace(dirty: &mut Vec<Arc<Conn>>, mark: usize, kill: &tokio_util::sync::CancellationToken) {
    let mut heavy: Vec<Arc<Conn>> = Vec::new();
    for c in dirty.drain(..) {
        c.flush_stage();
        if c.out.queued() > mark {
            heavy.push(c);
        }
    }
    for c in heavy {
        tokio::select! {
            biased;
            _ = kill.cancelled() => return,
            _ = c.kill.cancelled() => {}
            _ = c.out.wait_below(mark) => {}
        }
    }
}

/// Writes every staged buffer.
fn flush(dirty: &mut Vec<Arc<Conn>>) {
    for c in dirty.drain(..) {
        c.flush_stage();
    }
}

fn malformed(shared: &Arc<Shared>, conn: &Arc<Conn>, line: &[u8]) {
    shared.counters.failed(codes::MESSAGE_MALFORMED);
    if !shared.wants("messageError") {
        return;
    }
    shared.emit(
        "messageError",
        Payload::new()
            .error(codes::MESSAGE_MALFORMED)
            .raw("raw", &raw_ref(&conn.id, line))
            .done(),
    );
}

impl From<Code> for Failure {
    fn from(code: Code) -> Self {
        Failure {
            code,
            extra: Vec::new(),
        }
    }
}
