//! Named points in the threads of streams and sockets where a unit test can make a change land,
//! so a race between "subscribed", "looked" and "told the client" is tested deterministically
//! rather than by hoping a scheduler interleaves the threads badly. Outside `cfg(test)` every
//! point is an empty inline function.

/// Where a stream or socket thread has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// A stream's thread has just taken the connection over, before it subscribes.
    Takeover,
    /// A stream's head has been written and flushed: the client sees the stream open.
    HeadWritten,
    /// A socket has just read what a newly followed resource holds.
    Followed,
}

/// Runs (once) what a test armed for `point` on `key`; nothing outside tests.
#[cfg(not(test))]
#[inline]
pub(crate) fn reached(_point: Point, _key: &str) {}

#[cfg(test)]
pub(crate) use armed::{arm, reached};

#[cfg(test)]
mod armed {
    use std::sync::Mutex;

    use super::Point;

    type Action = Box<dyn FnOnce() + Send>;

    /// Armed actions by point and store key; tests in one process run in parallel, so each
    /// arms its own key.
    static ARMED: Mutex<Vec<(Point, String, Action)>> = Mutex::new(Vec::new());

    /// Makes the next thread that reaches `point` for `key` run `action` there.
    pub(crate) fn arm(point: Point, key: &str, action: impl FnOnce() + Send + 'static) {
        ARMED.lock().unwrap_or_else(|e| e.into_inner()).push((
            point,
            key.to_owned(),
            Box::new(action),
        ));
    }

    /// Runs and disarms the action armed for `point` on `key`, if any.
    pub(crate) fn reached(point: Point, key: &str) {
        let action = {
            let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
            armed
                .iter()
                .position(|(p, k, _)| *p == point && k == key)
                .map(|i| armed.swap_remove(i).2)
        };
        // Run without the lock: the action may change the store, which may reach a point.
        if let Some(action) = action {
            action();
        }
    }
}
