//! One connection's outgoing bytes: written straight to the socket from the sending thread when
//! nothing is waiting (no hand-off to another task, so no wake-up latency), otherwise queued
//! and drained by a writer task with coalesced writes. Order is kept because a direct write is
//! only attempted, under the queue's lock, when the queue is empty and the writer idle.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Largest chunk handed to one write when coalescing queued frames.
const COALESCE_BYTES: usize = 256 * 1024;

/// The socket an [`Outbound`] writes to.
pub enum WriteSide {
    /// A tokio stream's write half (the server's connections).
    Half(OwnedWriteHalf),
    /// A socket registered with tokio for writability alone. Bytes arriving on it never wake
    /// tokio's I/O driver, which matters when another thread's event loop reads it (the Node
    /// client: every wake-up of a second thread per arrival costs the sender as well).
    WriteOnly(AsyncFd<Arc<std::net::TcpStream>>),
}

impl WriteSide {
    /// Registers `sock` (non-blocking) with the current tokio runtime for writability only.
    pub fn write_only(sock: Arc<std::net::TcpStream>) -> std::io::Result<WriteSide> {
        // SAFETY: the descriptor belongs to `sock`, which the registration owns (an Arc of
        // it), so it stays open and the same for as long as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::WRITABLE) }?;
        Ok(WriteSide::WriteOnly(fd))
    }

    fn try_write(&self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            WriteSide::Half(w) => w.try_write(data),
            WriteSide::WriteOnly(fd) => fd.try_io(Interest::WRITABLE, |s| (&**s).write(data)),
        }
    }

    async fn writable(&self) -> std::io::Result<()> {
        match self {
            WriteSide::Half(w) => w.writable().await,
            // The guard is dropped uncleared: the next try_write clears it on WouldBlock.
            WriteSide::WriteOnly(fd) => fd.writable().await.map(|_| ()),
        }
    }

    fn shutdown_write(&self) {
        let sock = match self {
            WriteSide::Half(w) => socket2::SockRef::from(w.as_ref()),
            WriteSide::WriteOnly(fd) => socket2::SockRef::from(&**fd.get_ref()),
        };
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }
}

impl From<OwnedWriteHalf> for WriteSide {
    fn from(wr: OwnedWriteHalf) -> WriteSide {
        WriteSide::Half(wr)
    }
}

/// The socket is closed for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// The writer task owns the socket right now (it has queued bytes to write).
    busy: bool,
    /// No more bytes are accepted; the writer flushes and shuts the socket down.
    closing: bool,
    failed: bool,
}

/// The outgoing side of one TCP connection.
pub struct Outbound {
    wr: WriteSide,
    state: Mutex<State>,
    notify: Notify,
    queued: AtomicUsize,
    /// Woken after every write of the writer task.
    wrote: Notify,
    /// When the writer task last finished a write, or bytes started waiting ([`mono_ms`]).
    last_write_ms: AtomicU64,
    /// Bytes the writer task has written so far.
    written: AtomicU64,
    /// When the current pacing episode began ([`mono_ms`]); 0 outside one.
    paced_since_ms: AtomicU64,
    /// `written` when the current pacing episode began.
    paced_written: AtomicU64,
}

/// A peer whose queue has not moved for this long is stalled, not slow: senders are no longer
/// paced for it, so its queue fills and the slow-consumer rule drops it as before. Long enough
/// that a GC pause or a busy machine does not make a reading peer look stalled.
const STALLED_MS: u64 = 500;

/// After this long in one pacing episode, a peer must be taking at least [`MIN_PACED_RATE`].
const PACE_LIMIT_MS: u64 = 2000;

/// Bytes a second a paced peer must take, averaged over the episode, to go on being waited for.
const MIN_PACED_RATE: u64 = 1024 * 1024;

/// Milliseconds on a monotonic clock (from the first call), immune to wall-clock jumps.
fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Outbound {
    /// Wraps the socket's write side; run [`Outbound::run`] as the writer task.
    pub fn new(wr: impl Into<WriteSide>) -> Arc<Outbound> {
        Arc::new(Outbound {
            wr: wr.into(),
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            queued: AtomicUsize::new(0),
            wrote: Notify::new(),
            last_write_ms: AtomicU64::new(0),
            written: AtomicU64::new(0),
            paced_since_ms: AtomicU64::new(0),
            paced_written: AtomicU64::new(0),
        })
    }

    /// Bytes accepted and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits while more than `mark` bytes are queued and the peer is taking them (a write
    /// moved within the last 500 ms). Returns at once for a stalled peer, and for one that has
    /// been paced for over [`PACE_LIMIT_MS`] while taking less than [`MIN_PACED_RATE`] bytes a
    /// second: a peer that only trickles must not hold its senders back for ever, so its queue
    /// is let grow to the slow-consumer limit. An episode lasts until the queue drains.
    pub async fn wait_below(&self, mark: usize) {
        while self.queued() > mark {
            let now = mono_ms();
            let written = self.written.load(Ordering::Acquire);
            let since = match self.paced_since_ms.load(Ordering::Acquire) {
                0 => {
                    self.paced_written.store(written, Ordering::Release);
                    self.paced_since_ms.store(now, Ordering::Release);
                    now
                }
                t => t,
            };
            let last = self.last_write_ms.load(Ordering::Acquire);
            if now.saturating_sub(last) > STALLED_MS {
                return;
            }
            let elapsed = now.saturating_sub(since);
            if elapsed > PACE_LIMIT_MS {
                let taken = written.saturating_sub(self.paced_written.load(Ordering::Acquire));
                if taken.saturating_mul(1000) / elapsed < MIN_PACED_RATE {
                    return;
                }
            }
            let wrote = self.wrote.notified();
            if self.queued() <= mark {
                return;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), wrote).await;
        }
    }

    /// Writes `bytes` now if the socket takes them, else queues the rest for the writer.
    pub fn push(&self, bytes: Bytes) -> Result<(), Closed> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut st = lock(&self.state);
        if st.closing || st.failed {
            return Err(Closed);
        }
        let mut rest = bytes;
        if !st.busy && st.queue.is_empty() {
            match self.wr.try_write(&rest) {
                Ok(n) if n == rest.len() => return Ok(()),
                Ok(n) => rest = rest.slice(n..),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    st.failed = true;
                    drop(st);
                    self.notify.notify_one();
                    return Err(Closed);
                }
            }
        }
        self.queued.fetch_add(rest.len(), Ordering::AcqRel);
        st.queue.push_back(rest);
        if !st.busy {
            // The peer's progress clock starts when bytes start waiting for it.
            self.last_write_ms.store(mono_ms(), Ordering::Release);
            st.busy = true;
            drop(st);
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Stops accepting bytes; the writer flushes what is queued, sends FIN and ends.
    pub fn close(&self) {
        let mut st = lock(&self.state);
        st.closing = true;
        drop(st);
        self.notify.notify_one();
    }

    /// The writer task: drains the queue until closed, failed or killed. `progress` is told
    /// how many bytes still wait after every write.
    pub async fn run(self: Arc<Self>, kill: CancellationToken, progress: impl Fn(usize)) {
        let mut buf: Vec<u8> = Vec::new();
        'outer: loop {
            tokio::select! {
                biased;
                _ = kill.cancelled() => break,
                _ = self.notify.notified() => {}
            }
            loop {
                let chunk = {
                    let mut st = lock(&self.state);
                    if st.failed {
                        break 'outer;
                    }
                    match st.queue.pop_front() {
                        None => {
                            st.busy = false;
                            // Drained: the next pacing episode starts afresh.
                            self.paced_since_ms.store(0, Ordering::Release);
                            if st.closing {
                                break 'outer;
                            }
                            break;
                        }
                        Some(first) if st.queue.is_empty() || first.len() >= COALESCE_BYTES => {
                            first
                        }
                        Some(first) => {
                            buf.clear();
                            buf.extend_from_slice(&first);
                            while buf.len() < COALESCE_BYTES {
                                match st.queue.pop_front() {
                                    Some(next) => buf.extend_from_slice(&next),
                                    None => break,
                                }
                            }
                            Bytes::from(std::mem::take(&mut buf))
                        }
                    }
                };
                let ok = tokio::select! {
                    biased;
                    _ = kill.cancelled() => false,
                    r = self.write_all(&chunk) => r,
                };
                let left = self.queued.fetch_sub(chunk.len(), Ordering::AcqRel) - chunk.len();
                self.last_write_ms.store(mono_ms(), Ordering::Release);
                self.wrote.notify_waiters();
                progress(left);
                if !ok {
                    lock(&self.state).failed = true;
                    break 'outer;
                }
            }
        }
        let mut st = lock(&self.state);
        st.closing = true;
        st.queue.clear();
        self.queued.store(0, Ordering::Release);
        drop(st);
        self.wr.shutdown_write();
    }

    async fn write_all(&self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.wr.writable().await.is_err() {
                return false;
            }
            match self.wr.try_write(data) {
                Ok(n) => {
                    data = &data[n..];
                    // Any progress counts: a peer reading a big chunk slowly is not stalled.
                    self.last_write_ms.store(mono_ms(), Ordering::Release);
                    self.written.fetch_add(n as u64, Ordering::AcqRel);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        true
    }
}
