//! Small socket and process helpers shared by the server, the client and the binding.

use rand::RngCore;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Turns on TCP keepalive so a peer that vanished (power loss, cable pulled) is detected
/// without application traffic: after `idle`, probes every `idle / 3`, three times.
pub fn set_keepalive(stream: &tokio::net::TcpStream, idle: Duration) -> std::io::Result<()> {
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// The Node-style code (`ECONNRESET`, …) of an I/O error, as Node's own socket errors carry.
pub fn io_code(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "ECONNREFUSED",
        ConnectionReset => "ECONNRESET",
        ConnectionAborted => "ECONNABORTED",
        BrokenPipe => "EPIPE",
        TimedOut => "ETIMEDOUT",
        AddrInUse => "EADDRINUSE",
        AddrNotAvailable => "EADDRNOTAVAIL",
        PermissionDenied => "EACCES",
        NotFound => "ENOTFOUND",
        _ => match e.raw_os_error() {
            Some(24) => "EMFILE",
            _ => "EIO",
        },
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the guarded maps and
/// queues stay valid: every critical section leaves them consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 32-character `[A-Za-z0-9]` frame id from a CSPRNG (the original used `Math.random`, D15).
///
/// Random bytes are drawn in one block and mapped without modulo bias (bytes of 248 and up are
/// skipped, 248 being 4 × 62): a client makes one per message, and drawing a word per character
/// showed up in the sender's profile.
pub fn new_id() -> String {
    const CHARS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(32);
    let mut block = [0u8; 40];
    while id.len() < 32 {
        rng.fill_bytes(&mut block);
        for b in block.iter().filter(|b| **b < 248).take(32 - id.len()) {
            id.push(CHARS[usize::from(*b % 62)] as char);
        }
    }
    id
}

/// The tokio runtime of a process: `RICOCHET_THREADS` worker threads (default: one per core,
/// as tokio does). Shared by the Node addon and `ricochetd`. On the 2-core bench machine 1 and
/// 2 workers measured the same within noise, so the knob is there for operators.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::env::var("RICOCHET_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn ids_are_32_alphanumerics_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn every_character_of_the_alphabet_occurs() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(new_id().bytes());
        }
        assert_eq!(seen.len(), 62);
    }
}
