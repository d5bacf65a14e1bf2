//! Server events: a name and a JSON payload, in the original's shapes (PROTOCOL.md §9 with the
//! D22 fixes). The embedder receives them in order through an unbounded channel; names starting
//! with `_` are requests to the embedder (auth and unrouted callbacks, close completion).

use crate::codes::Code;
use crate::wire::json::push_str;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Event name, e.g. `clientReady`.
    pub name: &'static str,
    /// JSON payload.
    pub payload: String,
}

/// Where a server or client sends its events: any function taking them in order (a channel in
/// tests, a direct path into JS in the binding).
#[derive(Clone)]
pub struct EventSink(
    Arc<dyn Fn(Event) + Send + Sync>,
    Option<Arc<dyn Fn() -> usize + Send + Sync>>,
);

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

impl EventSink {
    /// A sink and the receiver the embedder drains.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            EventSink(
                Arc::new(move |ev| {
                    // A gone embedder is not an error for the server.
                    let _ = tx.send(ev);
                }),
                None,
            ),
            rx,
        )
    }

    /// A sink calling `f` for every event, on the emitting thread.
    pub fn from_fn(f: impl Fn(Event) + Send + Sync + 'static) -> EventSink {
        EventSink(Arc::new(f), None)
    }

    /// Adds a gauge of the bytes waiting for the embedder, so producers can hold back.
    pub fn with_backlog(mut self, backlog: impl Fn() -> usize + Send + Sync + 'static) -> Self {
        self.1 = Some(Arc::new(backlog));
        self
    }

    /// Bytes of events not yet taken by the embedder (0 when unknown).
    pub fn backlog(&self) -> usize {
        self.1.as_ref().map_or(0, |f| f())
    }

    /// Sends an event.
    pub fn send(&self, ev: Event) {
        (self.0)(ev)
    }
}

/// Builds a JSON object payload field by field.
pub(crate) struct Payload(Vec<u8>);

impl Payload {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.push(b'{');
        Payload(buf)
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        push_str(&mut self.0, k);
        self.0.push(b':');
    }

    /// Adds a string field.
    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        push_str(&mut self.0, v);
        self
    }

    /// Adds a field whose value is already JSON.
    pub fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k);
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    /// Adds `Error` and `code` for an error code.
    pub fn error(self, code: Code) -> Self {
        let full = code.full();
        self.str("Error", code.text).str("code", &full)
    }

    /// Finishes the object.
    pub fn done(mut self) -> String {
        self.0.push(b'}');
        String::from_utf8(self.0)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// `{id, message}` where `message` is a raw frame (trailing LF tolerated).
pub(crate) fn raw_ref(conn_id: &str, frame: &[u8]) -> String {
    let frame = crate::wire::frame::trim_line(frame);
    Payload::new()
        .str("id", conn_id)
        .raw("message", &String::from_utf8_lossy(frame))
        .done()
}
