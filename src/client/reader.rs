//! The read side of an authenticated connection, shared between the connection's tokio task and,
//! when the embedder offers one, a second reader on the embedder's own thread.
//!
//! A frame that reaches JS through the tokio reader costs two thread wake-ups (the tokio worker,
//! then the JS thread through a threadsafe function); on the 2-vCPU bench machine each one is
//! tens of microseconds, which is most of a request/reply round trip. The Node binding therefore
//! also watches the socket from the JS thread's own event loop and, when that thread is idle,
//! reads and dispatches there directly. Whoever reads holds the lock for the whole
//! read-and-route step, so frames keep their order whichever thread takes them; the tokio task
//! stays the reader of last resort (JS busy, no event loop, other embedders).

use super::templates::{Encoded, Templates};
use super::{check_incoming, not_an_object, receive_error, whole_frame, Inner};
use crate::codes;
use crate::net::lock;
use crate::wire::frame::{self, FrameError, LineCodec, STREAM_READ_BUFFER};
use crate::wire::message::{Frame, Headers, Layout};
use bytes::BytesMut;
use serde_json::Value;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::codec::Decoder;

/// Bytes one pump reads at most before returning.
const PUMP_BUDGET: usize = 256 * 1024;

/// A decrypt buffer grown past this by one large body is given back rather than kept.
const PLAIN_KEEP: usize = 64 * 1024;

/// How long bytes may wait for an idle watching thread before the tokio task reads them.
/// Reading sooner gains nothing while that thread is busy (it could not handle the frames
/// yet), and on a loaded machine a runnable JS thread can wait several ms for a CPU: 2 ms
/// made the tokio task take over reading whenever the scheduler was slow.
const WATCHER_GRACE: Duration = Duration::from_millis(10);

/// How long the tokio task stops listening for arrivals once it has seen the watching thread
/// take them itself. While it listens, every arrival wakes a tokio thread too, and the peer's
/// send pays for waking both: on a 2-vCPU VM that was as much CPU as routing the frame. A
/// watching thread that stalls in this window is noticed at its end (the stall's frames could
/// not have been handled sooner anyway; the kernel buffers them meanwhile).
const QUIET: Duration = Duration::from_millis(20);

/// Where a client can hand its authenticated connections to a second reader.
pub trait ReadHandoff: Send + Sync {
    /// A connection became ready: `reader` may now be pumped from another thread until
    /// [`SocketReader::pump`] returns false. Called on a tokio thread.
    fn attach(&self, reader: Arc<SocketReader>);
}

/// What one pump left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// The socket had nothing more.
    Idle,
    /// A budget ran out: more frames may be buffered or waiting on the socket.
    More,
    /// Reading this connection is over.
    Ended,
}

/// How reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// The session stopped reading (closed, timed out, replaced).
    Stopped,
    /// The server closed the connection.
    Eof,
    /// A socket error (reported as `error`).
    Failed,
    /// A line over the size limit (reported as `receiveError`).
    TooLarge,
}

struct ReadState {
    buf: BytesMut,
    codec: LineCodec,
    /// `None` while reading; set once by whoever saw the end.
    end: Option<ReadEnd>,
    /// Header templates of this connection (routing happens under this lock, in order).
    templates: Templates,
    /// The layout of this connection's frames, so most are parsed by comparison.
    layout: Layout,
    /// Decrypted bodies are written here, reused from frame to frame.
    plain: Vec<u8>,
}

/// One authenticated connection's read half with its framing state.
pub struct SocketReader {
    /// Registered with tokio for writability only (the writer's [`crate::wire::outbound::WriteSide`]).
    sock: Arc<std::net::TcpStream>,
    /// A duplicate of the socket registered with tokio for readability, while the tokio task
    /// wants to hear of arrivals; dropped (deregistered) while another thread reads.
    reg: Mutex<Option<Arc<AsyncFd<std::net::TcpStream>>>>,
    state: Mutex<ReadState>,
    inner: Arc<Inner>,
    channel: Value,
    groups: Value,
    /// Wakes the tokio task when another thread saw the end.
    ended: tokio::sync::Notify,
    idle: usize,
    /// Another thread watches the socket ...
    watched: AtomicBool,
    /// ... and is idle, so it will read itself: the tokio task waits instead of waking for
    /// every read (two threads woken per read would cost what this saves).
    other_idle: AtomicBool,
    /// Wakes the tokio task when the watcher goes away or gets busy.
    gate: tokio::sync::Notify,
    /// `end` is still `None` (readable without the lock).
    open: AtomicBool,
    /// When bytes last arrived, in µs since `born` (an atomic, so the idle timer never holds
    /// the lock the JS thread's reader needs).
    last_read_us: AtomicU64,
    born: Instant,
    /// Bumped by every pump of the other thread, so the watchdog can tell a stalled thread
    /// from one that keeps up.
    other_progress: AtomicU64,
}

impl std::fmt::Debug for SocketReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketReader").finish_non_exhaustive()
    }
}

impl SocketReader {
    pub(super) fn new(
        inner: Arc<Inner>,
        sock: Arc<std::net::TcpStream>,
        buf: BytesMut,
        codec: LineCodec,
        me: (Value, Value),
        idle: usize,
    ) -> SocketReader {
        SocketReader {
            sock,
            reg: Mutex::new(None),
            state: Mutex::new(ReadState {
                buf,
                codec,
                end: None,
                templates: Templates::default(),
                layout: Layout::default(),
                plain: Vec::new(),
            }),
            inner,
            channel: me.0,
            groups: me.1,
            ended: tokio::sync::Notify::new(),
            idle,
            watched: AtomicBool::new(false),
            other_idle: AtomicBool::new(false),
            gate: tokio::sync::Notify::new(),
            open: AtomicBool::new(true),
            last_read_us: AtomicU64::new(0),
            born: Instant::now(),
            other_progress: AtomicU64::new(0),
        }
    }

    /// The socket's file descriptor, for an event loop to watch.
    #[cfg(unix)]
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Reads whatever the socket holds and routes the frames into the client's events without
    /// blocking; false once this connection's reading is over (then stop calling).
    pub fn pump(&self) -> bool {
        self.drain(&mut lock(&self.state), usize::MAX, false).0 != Pumped::Ended
    }

    /// False once reading this connection is over.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// For a thread other than tokio's: like [`SocketReader::pump`], routing at most
    /// `max_frames` frames and never waiting for the lock (`None` when another thread is
    /// reading right now: it routes what is there). Also returns the frames routed.
    ///
    /// Reads the socket directly: tokio's own read would answer "would block" until tokio's
    /// driver has seen the readiness, which this thread may see first.
    pub fn try_pump(&self, max_frames: usize) -> Option<(Pumped, usize)> {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        self.other_progress.fetch_add(1, Ordering::Release);
        Some(self.drain(&mut st, max_frames, true))
    }

    /// When bytes last arrived.
    pub(super) fn last_read(&self) -> Instant {
        self.born + std::time::Duration::from_micros(self.last_read_us.load(Ordering::Acquire))
    }

    pub(super) fn end(&self) -> Option<ReadEnd> {
        lock(&self.state).end
    }

    /// Another thread starts (true) or stops (false) watching the socket. Whoever stops must
    /// say so, or nobody reads while that thread is idle.
    pub fn set_watched(&self, on: bool) {
        self.watched.store(on, Ordering::Release);
        if !on {
            self.gate.notify_one();
        }
    }

    /// The watching thread is busy with earlier frames (false) or idle (true).
    pub fn set_watcher_idle(&self, idle: bool) {
        self.other_idle.store(idle, Ordering::Release);
        if !idle {
            self.gate.notify_one();
        }
    }

    /// Waits until there may be bytes for this task to read, or another thread saw the end.
    ///
    /// While another thread watches and is idle, this task leaves the reading to it, but still
    /// watches: bytes that thread has not taken within [`WATCHER_GRACE`] (busy in a handler,
    /// a GC pause) are read here, so a stalled JS thread neither stops reading (the server
    /// would drop a slow consumer) nor makes the idle timeout fire while the server sends.
    /// Once it has seen that thread keep up, it stops listening for [`QUIET`].
    pub(super) async fn wait(&self) {
        loop {
            let reg = match self.registration() {
                Ok(reg) => reg,
                Err(_) => {
                    // No registration (out of descriptors?): look again later; the caller's
                    // pump reads without one.
                    self.pause(QUIET).await;
                    return;
                }
            };
            let mut arrived = tokio::select! {
                r = reg.readable() => match r {
                    Ok(guard) => guard,
                    Err(_) => {
                        // The I/O driver is going away: do not spin on an instant error.
                        self.pause(QUIET).await;
                        return;
                    }
                },
                _ = self.ended.notified() => return,
                _ = self.gate.notified() => return,
            };
            // Judged when bytes come, not when the wait began: the watching thread may have
            // gone idle meanwhile (it says so without waking this task), and reading here then
            // would race it for every frame and keep it busy with threadsafe calls.
            let parked =
                self.watched.load(Ordering::Acquire) && self.other_idle.load(Ordering::Acquire);
            if !parked {
                return;
            }
            let progress = self.other_progress.load(Ordering::Acquire);
            // "Nothing" clears tokio's readiness (for this arrival only), so the next wait
            // sleeps until new bytes come.
            let waiting = arrived
                .try_io(|fd| match input_pending(fd.get_ref()) {
                    Ok(false) => Err(ErrorKind::WouldBlock.into()),
                    other => other,
                })
                .is_ok();
            drop(arrived);
            if waiting {
                if !self.pause(WATCHER_GRACE).await {
                    return;
                }
                // Read here only if the watching thread has not pumped at all meanwhile:
                // bytes present now may be newer ones it will take in its stride.
                if self.other_progress.load(Ordering::Acquire) == progress
                    && input_pending(&self.sock).unwrap_or(true)
                {
                    return;
                }
            }
            // The watching thread keeps up: stop being woken by every arrival for a while.
            drop(reg);
            self.unregister();
            if !self.pause(QUIET).await {
                return;
            }
        }
    }

    /// Sleeps for `d`; false when woken early by the end or the gate.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.ended.notified() => false,
            _ = self.gate.notified() => false,
        }
    }

    /// The read registration, made if there is none. Must run inside the tokio runtime.
    fn registration(&self) -> std::io::Result<Arc<AsyncFd<std::net::TcpStream>>> {
        let mut slot = lock(&self.reg);
        if let Some(reg) = &*slot {
            return Ok(reg.clone());
        }
        // A duplicate descriptor: tokio's epoll already holds the socket's own one (for
        // writability), and one descriptor can be registered there only once.
        let dup = self.sock.try_clone()?;
        // SAFETY: the registration owns `dup`, which stays open and the same until it drops.
        let reg = Arc::new(unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }?);
        *slot = Some(reg.clone());
        Ok(reg)
    }

    fn unregister(&self) {
        let old = lock(&self.reg).take();
        drop(old);
    }

    /// Stops every reader: nothing is routed after this returns. The socket is shut down so a
    /// watching event loop sees it end and lets go of it.
    pub(super) fn stop(&self) {
        let mut st = lock(&self.state);
        if st.end.is_none() {
            st.end = Some(ReadEnd::Stopped);
            self.open.store(false, Ordering::Release);
        }
        drop(st);
        self.unregister();
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    fn drain(&self, st: &mut ReadState, max_frames: usize, raw: bool) -> (Pumped, usize) {
        if st.end.is_some() {
            return (Pumped::Ended, 0);
        }
        // A peer that sends faster than this thread routes would keep it here for ever: read
        // a bounded amount per call, then let the caller see to its other work.
        let mut budget = PUMP_BUDGET;
        let mut frames = 0;
        // A short read on the JS thread: the socket is empty for now, and libuv's watcher is
        // level-triggered, so it says when more comes; asking again would be a wasted recv per
        // wake-up. (tokio's readiness is edge-triggered: its reads go on to "would block".)
        let mut drained = false;
        loop {
            while frames < max_frames {
                match st.codec.decode(&mut st.buf) {
                    Ok(Some(line)) => {
                        frames += 1;
                        self.route(&mut st.templates, &mut st.layout, &mut st.plain, &line);
                    }
                    Ok(None) => break,
                    Err(FrameError::TooLarge { .. }) => {
                        return (self.finish(st, ReadEnd::TooLarge), frames)
                    }
                    Err(FrameError::Io(e)) => {
                        self.inner.emit("error", super::err_payload(&e));
                        return (self.finish(st, ReadEnd::Failed), frames);
                    }
                }
            }
            if frames >= max_frames || budget == 0 {
                return (Pumped::More, frames);
            }
            if drained {
                return (Pumped::Idle, frames);
            }
            if st.buf.is_empty() && st.buf.capacity() > 2 * self.idle {
                // The stream paused: give the big buffer back (see frame::next_line).
                st.buf = BytesMut::with_capacity(self.idle);
            }
            if st.buf.capacity() - st.buf.len() < 512 {
                let grow = if st.buf.capacity() < 2 * self.idle {
                    self.idle
                } else {
                    STREAM_READ_BUFFER
                };
                st.buf.reserve(grow);
            }
            let room = st.buf.capacity() - st.buf.len();
            let reg = if raw { None } else { lock(&self.reg).clone() };
            let read = match reg {
                Some(reg) => {
                    // Through the registration, so "would block" clears tokio's readiness.
                    // A registration that has not seen readiness yet (just made) does not
                    // try at all: then read anyway, since unread bytes are not silence.
                    let mut tried = false;
                    match reg.try_io(Interest::READABLE, |_| {
                        tried = true;
                        self.read_raw(&mut st.buf)
                    }) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock && !tried => {
                            self.read_raw(&mut st.buf)
                        }
                        r => r,
                    }
                }
                None => self.read_raw(&mut st.buf),
            };
            match read {
                Ok(0) => {
                    while let Ok(Some(line)) = st.codec.decode_eof(&mut st.buf) {
                        frames += 1;
                        self.route(&mut st.templates, &mut st.layout, &mut st.plain, &line);
                    }
                    self.inner.emit("end", "null".into());
                    return (self.finish(st, ReadEnd::Eof), frames);
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    drained = raw && n < room;
                    let us = u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.last_read_us.store(us, Ordering::Release);
                    if n == room && st.buf.capacity() < 2 * self.idle {
                        // More was waiting than the idle buffer holds: the peer is streaming.
                        st.buf.reserve(STREAM_READ_BUFFER);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (Pumped::Idle, frames),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.inner.emit("error", super::err_payload(&e));
                    return (self.finish(st, ReadEnd::Failed), frames);
                }
            }
        }
    }

    /// `recv` into the buffer's spare room, bypassing tokio's readiness bookkeeping.
    fn read_raw(&self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let n = socket2::SockRef::from(&*self.sock).recv(buf.spare_capacity_mut())?;
        // SAFETY: recv initialised the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    fn finish(&self, st: &mut ReadState, end: ReadEnd) -> Pumped {
        if end == ReadEnd::TooLarge {
            receive_error(&self.inner, codes::MESSAGE_TOOLARGE, "null");
        }
        st.end = Some(end);
        self.open.store(false, Ordering::Release);
        self.ended.notify_one();
        Pumped::Ended
    }

    /// §5 on borrowed fields; the frame goes to JS as it came (or with the decrypted body
    /// spliced in), or as its body against a header template; nothing is re-encoded.
    fn route(
        &self,
        templates: &mut Templates,
        layout: &mut Layout,
        plain_buf: &mut Vec<u8>,
        line: &[u8],
    ) {
        self.route_with(templates, layout, plain_buf, line);
        if plain_buf.capacity() > PLAIN_KEEP {
            *plain_buf = Vec::new();
        }
    }

    fn route_with(
        &self,
        templates: &mut Templates,
        layout: &mut Layout,
        plain_buf: &mut Vec<u8>,
        line: &[u8],
    ) {
        let trimmed = frame::trim_line(line);
        let Some(frame) = Frame::parse_with(trimmed, layout) else {
            return not_an_object(&self.inner, trimmed);
        };
        let plain =
            match check_incoming(&self.inner, &frame, &self.channel, &self.groups, plain_buf) {
                Ok(plain) => plain,
                Err(code) => return receive_error(&self.inner, code, &super::lossy(trimmed)),
            };
        if self.inner.opts.header_templates {
            // Only the usual shape, `{"headers":{…},"body":…}`, is rebuilt from a template.
            let top = frame.top.entries();
            if let (Headers::Object(headers), [(h, _), (b, body)]) = (&frame.headers, top) {
                if h == "headers" && b == "body" {
                    let body = plain.as_deref().unwrap_or(body.get());
                    if let Encoded::Templated(def, f) = templates.encode(headers, body) {
                        if let Some(def) = def {
                            self.inner.emit("tpl", def);
                        }
                        return self.inner.emit("f", f);
                    }
                }
            }
        }
        match whole_frame(&frame, plain.as_deref()) {
            Ok(text) => self.inner.emit("frame", text),
            Err(code) => receive_error(&self.inner, code, &super::lossy(trimmed)),
        }
    }
}

/// Whether the socket holds unread bytes, an end or an error, without taking anything: poll(2),
/// where a peek would consume a pending error (a reset then reads as a clean end).
fn input_pending(sock: &std::net::TcpStream) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n > 0 && pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
}
