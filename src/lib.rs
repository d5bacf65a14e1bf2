//! ricochet: pub/sub and request/reply over TCP, wire-compatible with ricochet.js 0.3.x.
//!
//! Layout:
//! - [`codes`]: the `ricochet.*` error table, the single source of the JS `errorCodes`.
//! - [`config`]: server settings and their defaults.
//! - [`net`]: keepalive, I/O error codes, clock and lock helpers.
//! - [`wire`]: line framing, payload encryption and raw-JSON frame handling.
//! - [`client`]: the tokio client: connect, reconnect with backoff, auth, receive checks.
//! - [`trace`]: `DEBUG=ricochet:core` tracing from the core.
//! - [`server`]: the tokio server: accept loop, per-connection tasks, auth and routing.
//! - `binding`: the only napi code; turns the core into the `NativeServer` class.
//!
//! Everything but `binding` is plain tokio code tested by `cargo test` without Node.

pub mod client;
pub mod codes;
pub mod config;
pub mod net;
pub mod server;
pub mod trace;
pub mod wire;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "node")]
mod binding;
