//! Wire format: line framing ([`frame`]), payload encryption ([`crypto`]) and the parts of a
//! message frame the router reads and rewrites ([`message`]).

pub mod crypto;
pub mod frame;
pub mod hex;
pub mod json;
pub mod message;
pub mod outbound;
pub mod scan;
#[cfg(test)]
mod scan_differential;
pub mod seal;
pub mod xts;
#[cfg(target_arch = "x86_64")]
mod xts_vaes;
