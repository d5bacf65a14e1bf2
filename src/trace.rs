//! `DEBUG=ricochet:*` (or `ricochet:core`) tracing from the core itself, in the `debug`
//! package's format (`<ISO time> ricochet:core <message>` on stderr). Off unless the DEBUG
//! variable names it; when off, a trace point costs one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The namespace of core traces.
pub const NAMESPACE: &str = "ricochet:core";

/// Whether a `DEBUG` value enables `name`: comma- or space-separated patterns, `*` matching any
/// run of characters, `-pattern` excluding.
pub fn matches(debug: &str, name: &str) -> bool {
    let mut on = false;
    for pat in debug.split([',', ' ']).filter(|p| !p.is_empty()) {
        if let Some(neg) = pat.strip_prefix('-') {
            if glob(neg, name) {
                return false;
            }
        } else if glob(pat, name) {
            on = true;
        }
    }
    on
}

fn glob(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((head, rest)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| glob(rest, &name[head.len() + i..]))
        }
    }
}

/// Turns tracing on or off from a `DEBUG` value.
pub fn configure(debug: Option<&str>) {
    ENABLED.store(
        debug.is_some_and(|d| matches(d, NAMESPACE)),
        Ordering::Relaxed,
    );
}

/// Whether traces are written.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Writes one trace line (call through [`trace!`](crate::trace!)).
pub fn write(args: std::fmt::Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // One write per line: a line written in pieces interleaves with Node's own stderr writes.
    let line = format!("{} {NAMESPACE} {args}\n", iso8601(now));
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// A time since the Unix epoch as ISO 8601 UTC with milliseconds (`2023-11-14T22:13:20.123Z`),
/// the format of JavaScript's `Date#toISOString`.
pub fn iso8601(d: std::time::Duration) -> String {
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Writes a core trace line when `DEBUG` enables `ricochet:core`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::trace::enabled() {
            $crate::trace::write(format_args!($($arg)*));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_patterns_follow_the_debug_package() {
        assert!(matches("ricochet:*", NAMESPACE));
        assert!(matches("*", NAMESPACE));
        assert!(matches("foo,ricochet:core", NAMESPACE));
        assert!(matches("ricochet:* -ricochet:client", NAMESPACE));
        assert!(!matches("ricochet:*,-ricochet:core", NAMESPACE));
        assert!(!matches("ricochet:server", NAMESPACE));
        assert!(!matches("", NAMESPACE));
    }

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(
            iso8601(std::time::Duration::from_millis(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            iso8601(std::time::Duration::ZERO),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
