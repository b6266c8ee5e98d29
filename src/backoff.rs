//! Exponential backoff with jitter, so that many clients retrying a failed server spread out.

use std::time::Duration;

/// Delays that double on each failure from `base` up to `cap`, each drawn at random from its
/// upper half ("equal jitter"): never zero, so a failing server is never hammered.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `base`, never longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The delay before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// How many failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: start over from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for i in 0..40 {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << i.min(20))
                .min(Duration::from_secs(2));
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside {ceiling:?}"
            );
        }
        assert_eq!(b.failures(), 40);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
