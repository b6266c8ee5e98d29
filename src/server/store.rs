//! The server's state: counters and plain resources, their versions, and waiting for a change.
//!
//! Everything lives behind one `Mutex`. Versions come from one store-wide sequence, so an ETag
//! is never reused, not even after a delete and a re-create.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The most bytes of ids and values the store keeps, so that clients cannot exhaust memory.
pub(crate) const STORE_BUDGET: usize = 64 * 1024 * 1024;

/// What a counter reads as at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counter {
    /// The JSON value, serialized; `None` once the counter is deleted.
    pub(crate) value: Option<String>,
    /// The version the ETag is made from: 0 for a counter never touched.
    pub(crate) version: u64,
}

/// A `/plain/{id}` resource: bytes and their media type, kept verbatim.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plain {
    /// The `Content-Type` it was stored with.
    pub(crate) content_type: String,
    /// The body, byte for byte.
    pub(crate) body: Vec<u8>,
}

/// Why the store refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// POST on a counter whose value is not a number.
    NotANumber,
    /// POST on a counter already at the largest integer JSON numbers hold here.
    Overflow,
    /// There was nothing to delete.
    NotFound,
    /// The change would take the store past [`STORE_BUDGET`].
    Full,
}

/// A counter slot once it has been touched; untouched counters have no slot and read as 0.
#[derive(Debug)]
struct Slot {
    value: Option<String>,
    version: u64,
}

impl Slot {
    fn size(&self, id: &str) -> usize {
        id.len() + self.value.as_ref().map_or(0, String::len)
    }
}

/// The waiters on one resource.
///
/// Scaling choice: one `Condvar` per watched resource, all used with the store's one mutex, and
/// created only while someone waits. A change wakes only the requests held on that resource, not
/// every held request in the server, so thousands of long-polls on different resources cost
/// nothing per change; the entry is dropped when its last waiter leaves.
struct Watch {
    cond: Arc<Condvar>,
    waiters: usize,
}

#[derive(Default)]
struct State {
    seq: u64,
    used: usize,
    counters: HashMap<String, Slot>,
    plains: HashMap<String, Arc<Plain>>,
    watches: HashMap<String, Watch>,
}

impl State {
    fn counter(&self, id: &str) -> Counter {
        match self.counters.get(id) {
            Some(slot) => Counter {
                value: slot.value.clone(),
                version: slot.version,
            },
            None => Counter {
                value: Some("0".to_owned()),
                version: 0,
            },
        }
    }

    /// Replaces a counter's slot within the budget, bumps the sequence and wakes its waiters.
    fn put_counter(&mut self, id: &str, value: Option<String>) -> Result<Counter, StoreError> {
        let old = self.counters.get(id).map_or(0, |slot| slot.size(id));
        let new = id.len() + value.as_ref().map_or(0, String::len);
        let used = self.used - old + new;
        // Shrinking is always allowed, so a full store can still be emptied.
        if new > old && used > STORE_BUDGET {
            return Err(StoreError::Full);
        }
        self.used = used;
        self.seq += 1;
        let version = self.seq;
        self.counters.insert(
            id.to_owned(),
            Slot {
                value: value.clone(),
                version,
            },
        );
        if let Some(watch) = self.watches.get(&counter_key(id)) {
            watch.cond.notify_all();
        }
        Ok(Counter { value, version })
    }
}

fn counter_key(id: &str) -> String {
    format!("/counter/{id}")
}

/// All resources of one server, shared by its connection threads.
#[derive(Default)]
pub(crate) struct Store {
    state: Mutex<State>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Store")
            .field("seq", &state.seq)
            .field("counters", &state.counters.len())
            .field("plains", &state.plains.len())
            .field("watched", &state.watches.len())
            .finish()
    }
}

impl Store {
    /// Locks the state. A thread that panicked while holding the lock cannot have left the
    /// state half-changed in a way that matters (every change is a single insert or remove), so a
    /// poisoned lock is taken over instead of taking the whole server down.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counter's current value and version.
    pub(crate) fn counter(&self, id: &str) -> Counter {
        self.lock().counter(id)
    }

    /// Adds 1 to a numeric counter; a deleted counter starts again from 0.
    pub(crate) fn increment(&self, id: &str) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        let current = state.counter(id).value.unwrap_or_else(|| "0".to_owned());
        let next = increment_json(&current)?;
        state.put_counter(id, Some(next))
    }

    /// Sets a counter to a JSON value, already serialized.
    pub(crate) fn set_counter(&self, id: &str, json: String) -> Result<Counter, StoreError> {
        self.lock().put_counter(id, Some(json))
    }

    /// Deletes a counter; it reads as gone until it is set again.
    pub(crate) fn delete_counter(&self, id: &str) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        if state.counter(id).value.is_none() {
            return Err(StoreError::NotFound);
        }
        state.put_counter(id, None)
    }

    /// Holds the calling thread until the counter's version differs from `version` or
    /// `deadline` passes, and returns what the counter reads as then.
    pub(crate) fn wait_counter(&self, id: &str, version: u64, deadline: Instant) -> Counter {
        let key = counter_key(id);
        let mut state = self.lock();
        let current = state.counter(id);
        if current.version != version || Instant::now() >= deadline {
            return current;
        }
        let cond = {
            let watch = state.watches.entry(key.clone()).or_insert_with(|| Watch {
                cond: Arc::new(Condvar::new()),
                waiters: 0,
            });
            watch.waiters += 1;
            Arc::clone(&watch.cond)
        };
        // Loop because wake-ups can be spurious and a deadline can be cut short by one.
        let result = loop {
            let current = state.counter(id);
            let now = Instant::now();
            if current.version != version || now >= deadline {
                break current;
            }
            state = match cond.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        let last = match state.watches.get_mut(&key) {
            Some(watch) => {
                watch.waiters = watch.waiters.saturating_sub(1);
                watch.waiters == 0
            }
            None => false,
        };
        if last {
            state.watches.remove(&key);
        }
        result
    }

    /// A plain resource, if it is set. Shared, so a large body is not copied under the lock.
    pub(crate) fn plain(&self, id: &str) -> Option<Arc<Plain>> {
        self.lock().plains.get(id).cloned()
    }

    /// Stores a plain resource verbatim.
    pub(crate) fn set_plain(&self, id: &str, plain: Plain) -> Result<(), StoreError> {
        let mut state = self.lock();
        let size = |p: &Plain| id.len() + p.content_type.len() + p.body.len();
        let old = state.plains.get(id).map_or(0, |p| size(p));
        let new = size(&plain);
        let used = state.used - old + new;
        if new > old && used > STORE_BUDGET {
            return Err(StoreError::Full);
        }
        state.used = used;
        state.plains.insert(id.to_owned(), Arc::new(plain));
        Ok(())
    }

    /// Removes a plain resource.
    pub(crate) fn delete_plain(&self, id: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        match state.plains.remove(id) {
            Some(p) => {
                state.used -= id.len() + p.content_type.len() + p.body.len();
                Ok(())
            }
            None => Err(StoreError::NotFound),
        }
    }

    /// How many resources have requests waiting on them (for tests of the clean-up).
    #[cfg(test)]
    pub(crate) fn watched(&self) -> usize {
        self.lock().watches.len()
    }
}

/// The serialized JSON number one above `json`, keeping integers integers.
fn increment_json(json: &str) -> Result<String, StoreError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|_| StoreError::NotANumber)?;
    let serde_json::Value::Number(n) = value else {
        return Err(StoreError::NotANumber);
    };
    // i64::MAX + 1 still fits a u64, so an i64 that overflows moves on to the u64 case.
    let next = if let Some(i) = n.as_i64().and_then(|i| i.checked_add(1)) {
        serde_json::Number::from(i)
    } else if let Some(u) = n.as_u64() {
        serde_json::Number::from(u.checked_add(1).ok_or(StoreError::Overflow)?)
    } else {
        let f = n.as_f64().ok_or(StoreError::NotANumber)?;
        serde_json::Number::from_f64(f + 1.0).ok_or(StoreError::Overflow)?
    };
    Ok(next.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn untouched_counter_reads_zero_at_version_zero() {
        let store = Store::default();
        assert_eq!(
            store.counter("a"),
            Counter {
                value: Some("0".into()),
                version: 0
            }
        );
    }

    #[test]
    fn versions_are_store_wide_and_never_reused() {
        let store = Store::default();
        let a1 = store.increment("a").unwrap();
        let b1 = store.increment("b").unwrap();
        assert_eq!(a1.value.as_deref(), Some("1"));
        assert!(b1.version > a1.version);
        let deleted = store.delete_counter("a").unwrap();
        assert_eq!(deleted.value, None);
        assert_eq!(store.counter("a").value, None);
        let again = store.increment("a").unwrap();
        assert_eq!(again.value.as_deref(), Some("1"));
        assert!(again.version > deleted.version && deleted.version > b1.version);
    }

    #[test]
    fn increment_keeps_number_kinds_and_refuses_the_rest() {
        assert_eq!(increment_json("41").unwrap(), "42");
        assert_eq!(increment_json("-1").unwrap(), "0");
        assert_eq!(increment_json("1.5").unwrap(), "2.5");
        assert_eq!(
            increment_json("9223372036854775807").unwrap(),
            "9223372036854775808"
        );
        assert_eq!(
            increment_json("18446744073709551615"),
            Err(StoreError::Overflow)
        );
        assert_eq!(increment_json("\"7\""), Err(StoreError::NotANumber));
        assert_eq!(increment_json("{}"), Err(StoreError::NotANumber));
        let store = Store::default();
        store.set_counter("s", "\"x\"".into()).unwrap();
        assert_eq!(store.increment("s"), Err(StoreError::NotANumber));
    }

    #[test]
    fn deleting_twice_is_not_found() {
        let store = Store::default();
        store.delete_counter("a").unwrap();
        assert_eq!(store.delete_counter("a"), Err(StoreError::NotFound));
        assert_eq!(store.delete_plain("p"), Err(StoreError::NotFound));
    }

    #[test]
    fn plain_is_kept_verbatim_and_counted_in_the_budget() {
        let store = Store::default();
        let body = vec![0u8, 255, 10, 13];
        store
            .set_plain(
                "p",
                Plain {
                    content_type: "application/x-thing".into(),
                    body: body.clone(),
                },
            )
            .unwrap();
        let got = store.plain("p").unwrap();
        assert_eq!(got.body, body);
        assert_eq!(got.content_type, "application/x-thing");
        let huge = Plain {
            content_type: String::new(),
            body: vec![0; STORE_BUDGET],
        };
        assert_eq!(store.set_plain("q", huge), Err(StoreError::Full));
        store.delete_plain("p").unwrap();
        assert_eq!(store.lock().used, 0);
    }

    #[test]
    fn wait_returns_at_the_deadline_when_nothing_changes() {
        let store = Store::default();
        let start = Instant::now();
        let got = store.wait_counter("a", 0, start + Duration::from_millis(50));
        assert_eq!(got.version, 0);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(store.watched(), 0);
    }

    #[test]
    fn wait_returns_at_once_when_already_changed() {
        let store = Store::default();
        store.increment("a").unwrap();
        let start = Instant::now();
        let got = store.wait_counter("a", 0, start + Duration::from_secs(10));
        assert_eq!(got.value.as_deref(), Some("1"));
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn wait_wakes_on_its_resource_only() {
        let store = Arc::new(Store::default());
        let waiter = {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let start = Instant::now();
                let got = store.wait_counter("a", 0, start + Duration::from_secs(10));
                (got, start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        store.increment("b").unwrap(); // another resource: the waiter keeps waiting
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(store.watched(), 1);
        store.set_counter("a", "[1]".into()).unwrap();
        let (got, elapsed) = waiter.join().unwrap();
        assert_eq!(got.value.as_deref(), Some("[1]"));
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(store.watched(), 0);
    }

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let store = Arc::new(Store::default());
        let s = Arc::clone(&store);
        let _ = std::thread::spawn(move || {
            let _guard = s.lock();
            panic!("poison the store on purpose");
        })
        .join();
        assert!(store.state.is_poisoned());
        assert_eq!(store.increment("a").unwrap().value.as_deref(), Some("1"));
    }
}
