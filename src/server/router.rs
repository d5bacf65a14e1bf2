//! Routing of an authenticated connection's message frame (PROTOCOL.md §4.3, in order), with the
//! server-side fixes: `encrypted: false` honoured (D2), decrypt failures answered instead of
//! crashing (D3), `groups: true` senders reach everyone (D5), re-encryption always padded with
//! PAD16 (D11), self-addressed frames answered with `message_self` (D24), unknown unrouted codes
//! mapped to `message_norecipient` (D18).

use super::cluster;
use super::events::{raw_ref, Payload};
use super::registry::{Authed, Conn, Groups, SendFail};
use super::Shared;
use crate::codes::{self, Code};
use crate::wire::crypto;
use crate::wire::json;
use crate::wire::message::Envelope;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long an unrouted callback may take before its frame counts as taken over; its pending
/// entry is dropped then, so a callback that never answers leaks nothing.
const UNROUTED_DEADLINE: Duration = Duration::from_secs(60);
/// Timeout assumed for a request without a `timeout` header (the stock default).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(5000);
/// How long past its timeout a request is still answered on its recipient's disconnect.
const REQUEST_GRACE: Duration = Duration::from_millis(1000);

/// Buffers a connection's routing keeps between frames, so an encrypted frame allocates
/// nothing for its plaintext or its re-encrypted body.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Recipients with staged frames, written by the connection's task.
    pub dirty: Vec<Arc<Conn>>,
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

/// A scratch buffer grown past this by one large body is given back rather than kept for the
/// connection's lifetime.
const SCRATCH_KEEP: usize = 64 * 1024;

impl Scratch {
    fn trim(&mut self) {
        for b in [&mut self.plain, &mut self.sealed] {
            if b.capacity() > SCRATCH_KEEP {
                *b = Vec::new();
            }
        }
    }
}

/// Routes one frame from `sender` (which is authenticated).
pub(crate) fn route(
    shared: &Arc<Shared>,
    sender: &Arc<Conn>,
    me: &Authed,
    env: Envelope<'_>,
    line: &Bytes,
    scratch: &mut Scratch,
) {
    route_with(shared, sender, me, env, line, scratch);
    scratch.trim();
}

fn route_with(
    shared: &Arc<Shared>,
    sender: &Arc<Conn>,
    me: &Authed,
    mut env: Envelope<'_>,
    line: &Bytes,
    scratch: &mut Scratch,
) {
    let Scratch {
        dirty,
        plain: plain_buf,
        sealed,
    } = scratch;
    env.set_header("from", me.channel_json.clone());
    env.set_header("groups", me.groups.json.clone());

    // Step 4: the plaintext JSON of an encrypted body.
    let plain: Option<Cow<'_, str>> = if env.encrypted() {
        let piece = env
            .body()
            .and_then(|b| json::as_str(b.get()))
            .and_then(|hex| {
                me.cipher
                    .decrypt_piece_in(hex.as_bytes(), plain_buf)
                    .ok()
                    .flatten()
            })
            .filter(|p| json::is_truthy_json(p));
        match piece {
            Some(p) => Some(p),
            None => return reject(shared, sender, me, &env, codes::MESSAGE_DECRYPT),
        }
    } else {
        None
    };

    let Some(to) = env.to().map(|c| c.into_owned()) else {
        return reject(shared, sender, me, &env, codes::MESSAGE_NORECIPIENT);
    };
    if to == me.channel {
        return reject(shared, sender, me, &env, codes::MESSAGE_SELF);
    }

    let recipient = super::lock(&shared.registry).lookup(&to);
    let Some(recipient) = recipient else {
        // Answered later (by another server or the unrouted callback): keep a copy of the
        // received line and rebuild what a failure report needs only if one is made. A copy,
        // not a reference: the line is a slice of the read buffer (64 KiB while streaming),
        // which a reference would keep alive for as long as the answer takes.
        let later = Deferred {
            line: Bytes::copy_from_slice(line),
            plain: plain.map(Cow::into_owned),
        };
        if let Some(cluster) = shared.cluster.get() {
            // Another server may hold the channel. Frames of one sender cross in order.
            let tx = sender
                .forwarder
                .get_or_init(|| cluster.forwarder(shared.clone(), sender.clone()));
            let out = cluster::Outgoing {
                payload: cluster::payload(&me.groups, &env, later.plain.as_deref()),
                to,
                later,
            };
            sender
                .forward_backlog
                .fetch_add(out.payload.len(), Ordering::Relaxed);
            if let Err(e) = tx.send(out) {
                e.0.later.answer(shared, sender, me, codes::CLIENT_SEND);
            }
            return;
        }
        if shared.has_unrouted.load(Ordering::Relaxed) {
            // The callback runs beside the connection, so a slow or silent callback cannot
            // stall the sender's other traffic.
            let (shared2, sender2) = (shared.clone(), sender.clone());
            shared.tracker.spawn(async move {
                if let Some(me) = sender2.authed.get() {
                    unrouted_or_norecipient(&shared2, &sender2, me, later).await;
                }
            });
            return;
        }
        return reject(shared, sender, me, &env, codes::MESSAGE_NORECIPIENT);
    };
    let Some(them) = recipient.authed.get() else {
        return reject(shared, sender, me, &env, codes::MESSAGE_NORECIPIENT);
    };

    // Step 7. A wildcard sender passes (D5); the recipient then sees its own groups in the
    // header so that stock clients' receive check (§5 step 3) accepts the frame.
    if !(them.groups.all || me.groups.all || me.groups.intersects(&them.groups)) {
        return reject(shared, sender, me, &env, codes::MESSAGE_GROUP);
    }
    if me.groups.all && !them.groups.all {
        env.set_header("groups", them.groups.json.clone());
    }

    // Step 8.
    let body = match &plain {
        Some(p) => match reencrypt(them, p, sealed) {
            Some(b) => Some(b),
            None => return reject(shared, sender, me, &env, codes::MESSAGE_DECRYPT),
        },
        None => None,
    };
    let frame = Bytes::from(env.encode(body));
    deliver(shared, sender, me, &env, &recipient, frame, dirty);
}

/// Stages a routed frame for its recipient (flushed by the sender's task once it has no more
/// complete lines to read) and accounts for it.
fn deliver(
    shared: &Arc<Shared>,
    sender: &Arc<Conn>,
    me: &Authed,
    env: &Envelope<'_>,
    recipient: &Arc<Conn>,
    frame: Bytes,
    dirty: &mut Vec<Arc<Conn>>,
) {
    match recipient.stage(&frame, shared.config.max_queue_bytes) {
        Ok(first) => {
            if first && !dirty.iter().any(|c| Arc::ptr_eq(c, recipient)) {
                dirty.push(recipient.clone());
            }
            track(sender, env, recipient);
            shared.routed.fetch_add(1, Ordering::Relaxed);
            shared
                .counters
                .bytes_out
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            sender.sent.fetch_add(1, Ordering::Relaxed);
            recipient.received.fetch_add(1, Ordering::Relaxed);
            if shared.want_message.load(Ordering::Relaxed) {
                shared.emit("message", raw_ref(&recipient.id, &frame));
            }
        }
        Err(SendFail::Slow) => reject(shared, sender, me, env, codes::CLIENT_SLOW),
        Err(SendFail::Closed) => reject(shared, sender, me, env, codes::CLIENT_SEND),
    }
}

/// Keeps track of requests a connection still owes an answer to, so they can be answered at
/// once if it disconnects: a request is recorded on its recipient, a terminal reply (`response`
/// or `error`) from that recipient clears it, an `update` extends it.
fn track(sender: &Arc<Conn>, env: &Envelope<'_>, recipient: &Arc<Conn>) {
    let Some(id) = env.header("id").map(|v| v.get()) else {
        return;
    };
    match env.header("type").map(|v| v.get()) {
        Some("\"request\"") => {
            let timeout = env
                .header("timeout")
                .and_then(|v| v.get().parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(|t| Duration::from_millis(t.min(86_400_000.0) as u64))
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
            recipient.owe(id, sender, encrypted_flag(env), timeout + REQUEST_GRACE);
        }
        Some("\"reply\"") => match env.header("status").map(|v| v.get()) {
            Some("\"update\"") => sender.extend(id, DEFAULT_REQUEST_TIMEOUT + REQUEST_GRACE),
            Some("\"response\"") | Some("\"error\"") => sender.settle(id),
            _ => {}
        },
        _ => {}
    }
}

/// Answers every request `gone` still owed: its requesters get an error reply at once instead
/// of waiting for their timers (`client_slow` when it was dropped as slow).
pub(crate) fn answer_owed(shared: &Arc<Shared>, gone: &Conn) {
    let Some(gone_authed) = gone.authed.get() else {
        return;
    };
    let code = if gone.slow.load(Ordering::Relaxed) {
        codes::CLIENT_SLOW
    } else {
        codes::MESSAGE_NORECIPIENT
    };
    for owed in gone.take_owed() {
        if let Some(requester) = owed.requester.upgrade() {
            if let Some(r) = requester.authed.get() {
                error_reply(
                    shared,
                    &requester,
                    r,
                    &owed.id_json,
                    &gone_authed.channel_json,
                    &owed.encrypted,
                    code,
                );
            }
        }
    }
}

/// The JSON text of a body encrypted for `them`: delimiter escaped (D6), PAD16 (D11), as a JSON
/// string of lowercase hex. `None` when the plaintext exceeds the cipher's 16 MiB limit.
fn reencrypt<'s>(them: &Authed, plain: &str, out: &'s mut Vec<u8>) -> Option<&'s [u8]> {
    let escaped = crypto::escape_delimiter(plain.as_bytes());
    out.clear();
    out.push(b'"');
    them.cipher
        .encrypt_hex_into(&escaped, crypto::PAD16, out)
        .ok()?;
    out.push(b'"');
    Some(out)
}

/// Reports a routing failure (`messageError`) and answers the sender with the synthesized error
/// reply of §4.5, byte-compatible with the original.
pub(crate) fn reject(
    shared: &Arc<Shared>,
    sender: &Arc<Conn>,
    me: &Authed,
    env: &Envelope<'_>,
    code: Code,
) {
    shared.counters.failed(code);
    let to = env.header("to").map_or("null", |v| v.get());
    crate::trace!(
        "route failed from {} ({}) to {}: {}",
        sender.id,
        me.channel,
        to,
        code.full()
    );
    if shared.wants("messageError") {
        shared.emit(
            "messageError",
            Payload::new()
                .error(code)
                .raw("raw", &raw_ref(&sender.id, &env.encode(None)))
                .done(),
        );
    }
    let id = env.header("id").map_or("null", |v| v.get());
    error_reply(shared, sender, me, id, to, encrypted_flag(env), code);
}

/// No server holds the recipient: asks the unrouted callback when there is one (`cb()` takes
/// the frame over, a code answers the sender), else answers `message_norecipient`.
pub(crate) async fn unrouted_or_norecipient(
    shared: &Arc<Shared>,
    sender: &Arc<Conn>,
    me: &Authed,
    later: Deferred,
) {
    if !shared.has_unrouted.load(Ordering::Relaxed) {
        return later.answer(shared, sender, me, codes::MESSAGE_NORECIPIENT);
    }
    let Some(data) = later.unrouted_data(&sender.id, me) else {
        return;
    };
    let answer = tokio::time::timeout(UNROUTED_DEADLINE, shared.ask_unrouted(data)).await;
    if let Ok(Some(Some(code))) = answer {
        let code = codes::lookup(&code).unwrap_or(codes::MESSAGE_NORECIPIENT);
        later.answer(shared, sender, me, code);
    }
}

/// Delivers a frame another server routed here to the local holder of its channel (the egress
/// half of [`cluster`]): groups checked against the sender's groups carried with it, the clear
/// body encrypted for the recipient. The error code goes back to the ingress server.
pub(crate) fn deliver_remote(
    shared: &Arc<Shared>,
    recipient: &Arc<Conn>,
    payload: &[u8],
) -> Result<(), Code> {
    let them = recipient.authed.get().ok_or(codes::MESSAGE_NORECIPIENT)?;
    let mut sealed = Vec::new();
    let split = payload
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(codes::MESSAGE_MALFORMED)?;
    let (groups_json, frame) = (&payload[..split], &payload[split + 1..]);
    let sender_groups = std::str::from_utf8(groups_json)
        .ok()
        .and_then(Groups::from_json)
        .ok_or(codes::MESSAGE_MALFORMED)?;
    let mut env = Envelope::parse(frame).map_err(|_| codes::MESSAGE_MALFORMED)?;
    if !(them.groups.all || sender_groups.all || sender_groups.intersects(&them.groups)) {
        return Err(codes::MESSAGE_GROUP);
    }
    if sender_groups.all && !them.groups.all {
        env.set_header("groups", them.groups.json.clone());
    }
    let body = if env.encrypted() {
        let plain = env
            .body()
            .map(|b| b.get())
            .ok_or(codes::MESSAGE_MALFORMED)?;
        Some(reencrypt(them, plain, &mut sealed).ok_or(codes::MESSAGE_DECRYPT)?)
    } else {
        None
    };
    let frame = Bytes::from(env.encode(body));
    let n = frame.len() as u64;
    let event = shared
        .wants("message")
        .then(|| raw_ref(&recipient.id, &frame));
    match recipient.send(frame, shared.config.max_queue_bytes) {
        Ok(()) => {
            shared.routed.fetch_add(1, Ordering::Relaxed);
            shared.counters.bytes_out.fetch_add(n, Ordering::Relaxed);
            recipient.received.fetch_add(1, Ordering::Relaxed);
            if let Some(payload) = event {
                shared.emit("message", payload);
            }
            Ok(())
        }
        Err(SendFail::Slow) => Err(codes::CLIENT_SLOW),
        Err(SendFail::Closed) => Err(codes::CLIENT_SEND),
    }
}

/// A frame whose fate is decided later (by another server or the unrouted callback): the
/// received line, a cheap reference, plus the decrypted body. What a report needs is rebuilt
/// from them only when a report is made.
pub(crate) struct Deferred {
    line: Bytes,
    plain: Option<String>,
}

impl Deferred {
    /// The frame as the router saw it, with the server's `from` and `groups`.
    fn envelope<'a>(&'a self, me: &Authed) -> Option<Envelope<'a>> {
        // It parsed when it was routed, so this cannot fail; a failure just skips the report.
        let mut env = Envelope::parse(crate::wire::frame::trim_line(&self.line)).ok()?;
        env.set_header("from", me.channel_json.clone());
        env.set_header("groups", me.groups.json.clone());
        Some(env)
    }

    /// Reports the failure and answers the sender, as [`reject`] does.
    pub(crate) fn answer(&self, shared: &Arc<Shared>, sender: &Arc<Conn>, me: &Authed, code: Code) {
        if let Some(env) = self.envelope(me) {
            reject(shared, sender, me, &env, code);
        }
    }

    /// `{id, message}` for the unrouted callback (body already decrypted).
    pub(crate) fn unrouted_data(&self, sender_id: &str, me: &Authed) -> Option<String> {
        let env = self.envelope(me)?;
        Some(raw_ref(
            sender_id,
            &env.encode(self.plain.as_deref().map(str::as_bytes)),
        ))
    }
}

/// `headers.encrypted` when truthy, else `false`, as the synthesized reply carries it.
fn encrypted_flag<'a>(env: &Envelope<'a>) -> &'a str {
    env.header("encrypted")
        .map(|v| v.get())
        .filter(|v| json::truthy(v))
        .unwrap_or("false")
}

/// Sends `to` the synthesized error reply of §4.5 for request/message `id_json` that was
/// addressed to `from_json`.
pub(crate) fn error_reply(
    shared: &Arc<Shared>,
    to: &Arc<Conn>,
    to_authed: &Authed,
    id_json: &str,
    from_json: &str,
    encrypted: &str,
    code: Code,
) {
    let full = code.full();
    let body_json = Payload::new()
        .str("error", code.text)
        .str("code", &full)
        .done();
    let mut sealed = Vec::new();
    let body = if encrypted != "false" {
        match reencrypt(to_authed, &body_json, &mut sealed) {
            // Only hex digits and quotes were written.
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => return,
        }
    } else {
        body_json
    };
    let reply = format!(
        "{{\"headers\":{{\"id\":{id_json},\"from\":{from_json},\"to\":{to_ch},\"type\":\"reply\",\"status\":\"error\",\"encrypted\":{encrypted},\"groups\":{groups}}},\"body\":{body}}}\n",
        to_ch = to_authed.channel_json,
        groups = to_authed.groups.json,
    );
    shared
        .counters
        .bytes_out
        .fetch_add(reply.len() as u64, Ordering::Relaxed);
    // A requester too slow to take its own error reply is being dropped already.
    let _ = to.send(Bytes::from(reply), shared.config.max_queue_bytes);
}
