//! Server settings with the original's defaults (PROTOCOL.md §8) plus the limits this
//! implementation adds. The JS layer deep-merges and validates user options (D20) and hands
//! the result over; Rust tests build it directly.

use std::time::Duration;

/// Default `maxMessageSize`: 40 MiB, enough for the largest encrypted body the original can send
/// (16 MiB of plaintext is 32 MiB of hex, plus headers).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 40 * 1024 * 1024;
/// Default per-client outbound queue bound: bytes waiting to be written to one client before it
/// is disconnected as a slow consumer.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Default cap on simultaneous connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default `maxAuthFailures` per IP per minute.
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 30;

/// Default TCP keepalive idle time; probes follow every third of it, three times.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `timeouts.auth`: how long a connection may stay unauthenticated.
    pub auth_timeout: Duration,
    /// `timeouts.authKey`: the accepted distance between an `authStamp` and the server clock (D1).
    pub auth_key_window: Duration,
    /// `maxMessageSize`: longest accepted line in bytes.
    pub max_message_size: usize,
    /// `maxQueueSize`: bytes queued to one client before it is dropped as slow.
    pub max_queue_bytes: usize,
    /// `maxConnections`: simultaneous connections; more are refused.
    pub max_connections: usize,
    /// `timeouts.idle`: a connection that sends nothing for this long is closed
    /// (`clientTimeout`); `None` disables it (stock clients send no heartbeats).
    pub idle_timeout: Option<Duration>,
    /// `maxAuthFailures`: failed logins allowed per IP per minute; further connections from
    /// that IP are refused (`ricochet.auth_ratelimit`) until the minute is over. 0 disables.
    pub max_auth_failures: u32,
    /// `encryption`: the payload cipher.
    pub encryption: crate::wire::seal::Encryption,
    /// `keepAlive`: TCP keepalive idle time, so dead peers are found without traffic; `None`
    /// disables it.
    pub keepalive: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            auth_timeout: Duration::from_millis(3500),
            auth_key_window: Duration::from_millis(30_000),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: None,
            max_auth_failures: DEFAULT_MAX_AUTH_FAILURES,
            keepalive: Some(DEFAULT_KEEPALIVE),
            encryption: crate::wire::seal::Encryption::Xts,
        }
    }
}
