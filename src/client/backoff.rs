//! Reconnect delays: exponential from `timeouts.reconnect`, capped, with jitter so that many
//! clients dropped together do not come back in lockstep. A pure function, tested as a table.

use std::time::Duration;

/// Delay before reconnect attempt number `attempt` (0 for the first retry). `unit` in [0, 1)
/// is the jitter draw: the delay is spread over [d/2, d) where d = min(cap, base·2^attempt).
pub fn delay(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let factor = 2u64.saturating_pow(attempt.min(32));
    let full = base
        .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX))
        .min(cap)
        .max(Duration::from_millis(1));
    let unit = unit.clamp(0.0, 1.0);
    full.mul_f64(0.5 + unit / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_until_the_cap() {
        let base = Duration::from_millis(1500);
        let cap = Duration::from_secs(30);
        let table = [
            (0, 1500),
            (1, 3000),
            (2, 6000),
            (3, 12000),
            (4, 24000),
            (5, 30000),
            (40, 30000),
        ];
        for (attempt, ms) in table {
            assert_eq!(
                delay(attempt, base, cap, 1.0),
                Duration::from_millis(ms),
                "attempt {attempt}"
            );
            assert_eq!(
                delay(attempt, base, cap, 0.0),
                Duration::from_millis(ms / 2),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let d = delay(2, Duration::from_millis(100), Duration::from_secs(1), 0.5);
        assert_eq!(d, Duration::from_millis(300));
    }
}
