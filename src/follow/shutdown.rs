//! The stop flag of one follow, which sleeping followers wake up for.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A stop flag that sleeping followers wake up for.
#[derive(Debug, Default)]
pub(super) struct Shutdown {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    pub(super) fn trigger(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    pub(super) fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `d`; false when shutdown came first.
    pub(super) fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        !*guard
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn shutdown_wakes_sleepers() {
        let s = Arc::new(Shutdown::default());
        let s2 = Arc::clone(&s);
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        s.trigger();
        assert!(!t.join().unwrap());
        assert!(!s.sleep(Duration::from_secs(30)));
    }
}
