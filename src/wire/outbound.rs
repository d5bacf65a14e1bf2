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

/// Largest buffer kept for reuse once written ([`Outbound::take_spare`]).
const SPARE_MAX: usize = 1024 * 1024;

/// Smallest buffer worth keeping: below this malloc reuses memory well on its own.
const SPARE_MIN: usize = 16 * 1024;

/// Bytes of spare buffers the whole process may hold, whatever its number of connections.
const SPARE_BUDGET: usize = 16 * 1024 * 1024;

/// Capacity of every connection's spare buffer together (bounded by [`SPARE_BUDGET`]).
static SPARE_BYTES: AtomicUsize = AtomicUsize::new(0);

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
    /// A written buffer for the next batch of frames. A sender streaming batches of a few
    /// hundred KiB got each one in freshly mapped pages from malloc (page faults were a tenth
    /// of a flooding client's CPU); handing the written buffer back reuses its pages.
    spare: Mutex<Option<Vec<u8>>>,
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

impl Drop for Outbound {
    fn drop(&mut self) {
        if let Some(v) = self
            .spare
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            SPARE_BYTES.fetch_sub(v.capacity(), Ordering::AcqRel);
        }
    }
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
            spare: Mutex::new(None),
        })
    }

    /// An empty buffer to fill with the next frames: one this connection already wrote when
    /// there is one, else a new one.
    pub fn take_spare(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        match spare {
            Some(v) => {
                SPARE_BYTES.fetch_sub(v.capacity(), Ordering::AcqRel);
                v
            }
            None => Vec::new(),
        }
    }

    /// Keeps a written buffer for [`Outbound::take_spare`] when it is the only reference to
    /// its memory, of a useful size, and the process-wide budget allows.
    fn recycle(&self, bytes: Bytes) {
        if bytes.len() < SPARE_MIN {
            return;
        }
        let Ok(mut m) = bytes.try_into_mut() else {
            return;
        };
        // Emptied first, so the conversion moves no bytes.
        m.clear();
        let v: Vec<u8> = m.into();
        let cap = v.capacity();
        if !(SPARE_MIN..=SPARE_MAX).contains(&cap) {
            return;
        }
        let mut slot = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let reserved = SPARE_BYTES.fetch_add(cap, Ordering::AcqRel);
        if reserved + cap > SPARE_BUDGET {
            SPARE_BYTES.fetch_sub(cap, Ordering::AcqRel);
            return;
        }
        *slot = Some(v);
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
                Ok(n) if n == rest.len() => {
                    drop(st);
                    self.recycle(rest);
                    return Ok(());
                }
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
                            // Drained: the next pacing episode starts afresh, and an idle
                            // connection keeps no joining buffer.
                            self.paced_since_ms.store(0, Ordering::Release);
                            buf = Vec::new();
                            if st.closing {
                                break 'outer;
                            }
                            break;
                        }
                        Some(first) if st.queue.is_empty() || first.len() >= COALESCE_BYTES => {
                            Some(first)
                        }
                        Some(first) => {
                            // Joined in the writer's own buffer, kept from write to write.
                            buf.clear();
                            buf.extend_from_slice(&first);
                            while buf.len() < COALESCE_BYTES {
                                match st.queue.pop_front() {
                                    Some(next) => buf.extend_from_slice(&next),
                                    None => break,
                                }
                            }
                            None
                        }
                    }
                };
                let data: &[u8] = chunk.as_deref().unwrap_or(&buf);
                let n = data.len();
                let ok = tokio::select! {
                    biased;
                    _ = kill.cancelled() => false,
                    r = self.write_all(data) => r,
                };
                if let Some(chunk) = chunk {
                    self.recycle(chunk);
                }
                let left = self.queued.fetch_sub(n, Ordering::AcqRel) - n;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Arc<Outbound>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (_, wr) = client.expect("connect").into_split();
        (Outbound::new(wr), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn a_written_batch_buffer_comes_back_empty_with_its_memory() {
        let (out, mut peer) = pair().await;
        let mut batch = out.take_spare();
        batch.extend_from_slice(&[b'a'; 32 * 1024]);
        let (ptr, cap) = (batch.as_ptr(), batch.capacity());
        out.push(Bytes::from(batch)).expect("push");
        let mut got = vec![0u8; 32 * 1024];
        peer.read_exact(&mut got).await.expect("read");
        assert!(got.iter().all(|b| *b == b'a'));
        let again = out.take_spare();
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (ptr, cap));
        // Only one is kept, and taking it empties the slot.
        assert_eq!(out.take_spare().capacity(), 0);
    }

    #[tokio::test]
    async fn small_or_shared_buffers_are_not_kept() {
        let (out, mut peer) = pair().await;
        out.push(Bytes::from(vec![b'x'; 100])).expect("push");
        let shared = Bytes::from(vec![b'y'; 32 * 1024]);
        let _keep = shared.clone();
        out.push(shared).expect("push");
        let mut got = vec![0u8; 100 + 32 * 1024];
        peer.read_exact(&mut got).await.expect("read");
        assert_eq!(out.take_spare().capacity(), 0);
    }

    #[tokio::test]
    async fn queued_chunks_joined_and_recycled_arrive_whole_and_in_order() {
        let (out, mut peer) = pair().await;
        let writer = tokio::spawn({
            let out = out.clone();
            async move { out.run(CancellationToken::new(), |_| {}).await }
        });
        // Far more than the socket buffers take while the peer is not reading, in chunks of
        // changing sizes that are joined, written whole, recycled and refilled.
        let mut want = Vec::new();
        for i in 0..400u32 {
            let mut chunk = out.take_spare();
            let len = [10usize, 20_000, 70_000, 300][i as usize % 4];
            chunk.extend((0..len).map(|j| (i as usize * 31 + j) as u8));
            want.extend_from_slice(&chunk);
            out.push(Bytes::from(chunk)).expect("push");
        }
        out.close();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.expect("read");
        writer.await.expect("writer");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }
}
