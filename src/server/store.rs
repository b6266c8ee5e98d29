//! The server's state: objects (counters, `/objects/{name}`, `/time`), the `/items/` collection
//! with its bounded change history, plain resources, and the publish/subscribe hub that wakes
//! held requests, streams and sockets when something they follow changes.
//!
//! Everything lives behind one `Mutex`. Versions come from one store-wide sequence, so an ETag
//! is never reused, not even after a delete and a re-create. Every change is published while
//! the lock is held, so a subscriber that subscribes first and reads second never misses one.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The most bytes of ids and values the store keeps, so that clients cannot exhaust memory.
pub(crate) const STORE_BUDGET: usize = 64 * 1024 * 1024;
/// The most items the collection holds (deleted ones included: they stay as tombstones).
pub(crate) const MAX_ITEMS: usize = 100_000;
/// The key the collection's changes are published under.
pub(crate) const ITEMS: &str = "/items/";
/// The key `/time` is published under, once a second, by the server's ticker.
pub(crate) const TIME: &str = "/time";

/// What a counter reads as at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counter {
    /// The JSON value, serialized; `None` once the counter is deleted.
    pub(crate) value: Option<String>,
    /// The version the ETag is made from: 0 for a counter never touched.
    pub(crate) version: u64,
}

/// What any object resource reads as at one moment: the common view streams, multiplexing and
/// callbacks work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The entity tag, quotes included.
    pub(crate) etag: String,
    /// The JSON value, serialized; `None` when the resource does not exist (deleted).
    pub(crate) value: Option<String>,
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
    /// There was nothing to change or delete.
    NotFound,
    /// The change would take the store past [`STORE_BUDGET`] or [`MAX_ITEMS`].
    Full,
}

/// Why a checkpoint cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointError {
    /// Older than the history kept: start over from the collection.
    Expired,
    /// A checkpoint this server never handed out.
    Unknown,
}

/// The changes after a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Changes {
    /// The changed items, each as it reads now (`"deleted": true` when deleted), in the order of
    /// their last change.
    pub(crate) items: Vec<Value>,
    /// The checkpoint after these changes: the next changes link.
    pub(crate) next: u64,
}

#[derive(Debug)]
struct Slot {
    value: Option<String>,
    version: u64,
}

/// One item of the collection, tombstones included.
#[derive(Debug)]
struct Item {
    /// The JSON object, `id` included, `"deleted": true` once deleted.
    value: Map<String, Value>,
    deleted: bool,
    version: u64,
}

/// The collection: items, and which item each recent change touched.
#[derive(Debug, Default)]
struct Collection {
    next_id: u64,
    items: BTreeMap<u64, Item>,
    /// (change number, item id), oldest first, at most `history` long.
    log: VecDeque<(u64, u64)>,
    /// The last change number handed out: the current checkpoint. Changes are numbered 1, 2, ...
    last: u64,
}

#[derive(Default)]
struct State {
    seq: u64,
    used: usize,
    /// Counters and `/objects/{name}`, keyed by path.
    values: HashMap<String, Slot>,
    plains: HashMap<String, Arc<Plain>>,
    items: Collection,
}

/// All resources of one server, shared by its connection threads.
pub(crate) struct Store {
    state: Mutex<State>,
    hub: Arc<Hub>,
    history: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(1000)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Store")
            .field("seq", &state.seq)
            .field("values", &state.values.len())
            .field("plains", &state.plains.len())
            .field("items", &state.items.items.len())
            .finish()
    }
}

/// The path of counter `id`.
pub(crate) fn counter_key(id: &str) -> String {
    format!("/counter/{id}")
}

/// The path of object `name`.
pub(crate) fn object_key(name: &str) -> String {
    format!("/objects/{name}")
}

/// The `/time` value and ETag for a second since the epoch.
pub(crate) fn time_snapshot(secs: u64) -> Snapshot {
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
    Snapshot {
        etag: format!("\"t{secs}\""),
        value: Some(serde_json::json!({ "time": stamp.to_string() }).to_string()),
    }
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// A store keeping the last `history` collection changes (at least 1).
    pub(crate) fn new(history: usize) -> Store {
        Store {
            state: Mutex::default(),
            hub: Arc::new(Hub::default()),
            history: history.max(1),
        }
    }

    /// Locks the state. A thread that panicked while holding the lock cannot have left the
    /// state half-changed in a way that matters (every change is a single insert or remove), so a
    /// poisoned lock is taken over instead of taking the whole server down.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The publish/subscribe hub.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// A subscription to these keys, made before reading, so no change after it is missed.
    pub(crate) fn subscribe(&self, keys: &[&str]) -> Subscription {
        let sub = self.hub.subscribe();
        for key in keys {
            sub.add(key);
        }
        sub
    }

    /// The counter's current value and version.
    #[cfg(test)]
    pub(crate) fn counter(&self, id: &str) -> Counter {
        self.lock().counter(id)
    }

    /// Adds 1 to a numeric counter; a deleted counter starts again from 0.
    pub(crate) fn increment(&self, id: &str) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        let current = state.counter(id).value.unwrap_or_else(|| "0".to_owned());
        let next = increment_json(&current)?;
        self.put_value(&mut state, &counter_key(id), Some(next))
    }

    /// Sets a counter to a JSON value, already serialized.
    pub(crate) fn set_counter(&self, id: &str, json: String) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        self.put_value(&mut state, &counter_key(id), Some(json))
    }

    /// Deletes a counter; it reads as gone until it is set again.
    pub(crate) fn delete_counter(&self, id: &str) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        if state.counter(id).value.is_none() {
            return Err(StoreError::NotFound);
        }
        self.put_value(&mut state, &counter_key(id), None)
    }

    /// An object as it reads now: `value` `None` when never set or deleted.
    #[cfg(test)]
    pub(crate) fn object(&self, name: &str) -> Counter {
        self.lock().object(name)
    }

    /// Sets an object to a JSON value, already serialized.
    pub(crate) fn set_object(&self, name: &str, json: String) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        self.put_value(&mut state, &object_key(name), Some(json))
    }

    /// Removes an object.
    pub(crate) fn delete_object(&self, name: &str) -> Result<Counter, StoreError> {
        let mut state = self.lock();
        if state.object(name).value.is_none() {
            return Err(StoreError::NotFound);
        }
        self.put_value(&mut state, &object_key(name), None)
    }

    /// Replaces a value's slot within the budget, bumps the sequence and publishes the change.
    fn put_value(
        &self,
        state: &mut State,
        key: &str,
        value: Option<String>,
    ) -> Result<Counter, StoreError> {
        let size = |v: &Option<String>| key.len() + v.as_ref().map_or(0, String::len);
        let old = state.values.get(key).map_or(0, |slot| size(&slot.value));
        let new = size(&value);
        let used = state.used - old + new;
        // Shrinking is always allowed, so a full store can still be emptied.
        if new > old && used > STORE_BUDGET {
            return Err(StoreError::Full);
        }
        state.used = used;
        state.seq += 1;
        let version = state.seq;
        state.values.insert(
            key.to_owned(),
            Slot {
                value: value.clone(),
                version,
            },
        );
        self.hub.publish(key);
        Ok(Counter { value, version })
    }

    /// What the object resource at `key` reads as, or `None` when `key` names no object
    /// resource of this server (a bad path, a `/plain/` resource, the collection itself).
    pub(crate) fn snapshot(&self, key: &str) -> Option<Snapshot> {
        if key == TIME {
            return Some(time_snapshot(unix_seconds()));
        }
        let state = self.lock();
        let (value, version) = if let Some(id) = key.strip_prefix("/counter/") {
            let c = state.counter(id);
            (c.value, c.version)
        } else if key.starts_with("/objects/") {
            let slot = state.values.get(key);
            (
                slot.and_then(|s| s.value.clone()),
                slot.map_or(0, |s| s.version),
            )
        } else if let Some(id) = key
            .strip_prefix(ITEMS)
            .and_then(|id| id.parse::<u64>().ok())
        {
            let item = state.items.items.get(&id);
            (
                item.filter(|i| !i.deleted)
                    .map(|i| Value::Object(i.value.clone()).to_string()),
                item.map_or(0, |i| i.version),
            )
        } else {
            return None;
        };
        Some(Snapshot {
            etag: format!("\"{version}\""),
            value,
        })
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

    /// Adds an item made of `fields` (a JSON object; its own `id` and `deleted` are replaced);
    /// returns the new id.
    pub(crate) fn add_item(&self, fields: Map<String, Value>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        if state.items.items.len() >= MAX_ITEMS {
            return Err(StoreError::Full);
        }
        state.items.next_id += 1;
        let id = state.items.next_id;
        self.put_item(&mut state, id, fields, false)?;
        Ok(id)
    }

    /// Replaces an item's fields (reviving it when it was deleted).
    pub(crate) fn set_item(&self, id: u64, fields: Map<String, Value>) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.items.items.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        self.put_item(&mut state, id, fields, false)
    }

    /// Marks an item deleted: it stays as a tombstone, so a changes reader learns of it.
    pub(crate) fn delete_item(&self, id: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let fields = match state.items.items.get(&id) {
            Some(item) if !item.deleted => item.value.clone(),
            _ => return Err(StoreError::NotFound),
        };
        self.put_item(&mut state, id, fields, true)
    }

    fn put_item(
        &self,
        state: &mut State,
        id: u64,
        mut fields: Map<String, Value>,
        deleted: bool,
    ) -> Result<(), StoreError> {
        fields.shift_remove("deleted");
        fields.shift_remove("id");
        let mut value = Map::new();
        value.insert("id".into(), Value::String(id.to_string()));
        value.extend(fields);
        if deleted {
            value.insert("deleted".into(), Value::Bool(true));
        }
        let size = |v: &Map<String, Value>| Value::Object(v.clone()).to_string().len();
        let old = state.items.items.get(&id).map_or(0, |i| size(&i.value));
        let new = size(&value);
        let used = state.used - old + new;
        if new > old && used > STORE_BUDGET {
            return Err(StoreError::Full);
        }
        state.used = used;
        state.seq += 1;
        let version = state.seq;
        let collection = &mut state.items;
        collection.last += 1;
        let change = collection.last;
        collection.log.push_back((change, id));
        while collection.log.len() > self.history {
            collection.log.pop_front();
        }
        collection.items.insert(
            id,
            Item {
                value,
                deleted,
                version,
            },
        );
        self.hub.publish(&format!("{ITEMS}{id}"));
        self.hub.publish(ITEMS);
        Ok(())
    }

    /// The collection as it reads now: the items not deleted, and the current checkpoint.
    pub(crate) fn items(&self) -> (Vec<Value>, u64) {
        let state = self.lock();
        let list = state
            .items
            .items
            .values()
            .filter(|i| !i.deleted)
            .map(|i| Value::Object(i.value.clone()))
            .collect();
        (list, state.items.last)
    }

    /// The current checkpoint.
    pub(crate) fn checkpoint(&self) -> u64 {
        self.lock().items.last
    }

    /// What changed after checkpoint `since`. Checkpoint 0 is the empty collection; a
    /// checkpoint is answerable while the history still holds the change after it.
    pub(crate) fn changes_since(&self, since: u64) -> Result<Changes, CheckpointError> {
        let state = self.lock();
        let collection = &state.items;
        if since > collection.last {
            return Err(CheckpointError::Unknown);
        }
        let oldest = collection.log.front().map_or(collection.last + 1, |e| e.0);
        if since + 1 < oldest {
            return Err(CheckpointError::Expired);
        }
        // Each changed item once, as it reads now, in the order of its last change.
        let mut seen = HashSet::new();
        let mut ids: Vec<u64> = collection
            .log
            .iter()
            .rev()
            .filter(|(change, _)| *change > since)
            .filter(|(_, id)| seen.insert(*id))
            .map(|(_, id)| *id)
            .collect();
        ids.reverse();
        let items = ids
            .iter()
            .filter_map(|id| collection.items.get(id))
            .map(|i| Value::Object(i.value.clone()))
            .collect();
        Ok(Changes {
            items,
            next: collection.last,
        })
    }

    /// Holds the calling thread until the object at `key` has an ETag other than `etag`, the
    /// deadline passes or the server cuts held requests; returns what it reads as then (`None`
    /// when `key` is no object resource).
    pub(crate) fn wait_change(&self, key: &str, etag: &str, deadline: Instant) -> Option<Snapshot> {
        let sub = self.subscribe(&[key]);
        loop {
            let snap = self.snapshot(key)?;
            if snap.etag != etag || Instant::now() >= deadline {
                return Some(snap);
            }
            if sub.wait(deadline).cut {
                return Some(snap);
            }
        }
    }

    /// How many keys have subscribers (for tests of the clean-up).
    #[cfg(test)]
    pub(crate) fn watched(&self) -> usize {
        self.hub.watched()
    }
}

impl State {
    fn counter(&self, id: &str) -> Counter {
        match self.values.get(&counter_key(id)) {
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

    fn object(&self, name: &str) -> Counter {
        match self.values.get(&object_key(name)) {
            Some(slot) => Counter {
                value: slot.value.clone(),
                version: slot.version,
            },
            None => Counter {
                value: None,
                version: 0,
            },
        }
    }
}

/// The serialized JSON number one above `json`, keeping integers integers.
fn increment_json(json: &str) -> Result<String, StoreError> {
    let value: Value = serde_json::from_str(json).map_err(|_| StoreError::NotANumber)?;
    let Value::Number(n) = value else {
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

/// What woke a subscriber: everything that happened since it last looked, coalesced.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    /// Keys that changed (each once, however often it changed).
    pub(crate) changed: Vec<String>,
    /// The stream or socket is to be cut (a simulated disconnect).
    pub(crate) cut: bool,
    /// Bytes a socket's reader thread received.
    pub(crate) bytes: Vec<u8>,
    /// The socket's peer closed its side.
    pub(crate) eof: bool,
}

impl Wakeup {
    fn is_empty(&self) -> bool {
        self.changed.is_empty() && !self.cut && self.bytes.is_empty() && !self.eof
    }
}

#[derive(Debug, Default)]
struct Pending {
    changed: HashSet<String>,
    order: Vec<String>,
    cut: bool,
    bytes: Vec<u8>,
    eof: bool,
    /// The subscriber is gone: nobody will make room for more bytes.
    closed: bool,
}

/// One subscriber's mailbox. Changes coalesce in a set, so a slow subscriber holds at most one
/// entry per key it follows, however fast the store changes.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pending: Mutex<Pending>,
    cond: Condvar,
}

/// Inbound socket bytes held before the reader thread waits for the socket thread to catch up.
const MAX_INBOX_BYTES: usize = 2 * 1024 * 1024;

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self, key: &str) {
        let mut p = self.lock();
        if p.changed.insert(key.to_owned()) {
            p.order.push(key.to_owned());
        }
        self.cond.notify_all();
    }

    /// Asks the subscriber to end (simulated disconnect).
    pub(crate) fn cut(&self) {
        self.lock().cut = true;
        self.cond.notify_all();
    }

    /// Hands bytes from a socket's reader thread over; waits while too many are unread, so a
    /// flooding client is slowed by TCP instead of growing memory.
    pub(crate) fn push_bytes(&self, bytes: &[u8]) {
        let mut p = self.lock();
        while p.bytes.len() > MAX_INBOX_BYTES && !p.closed {
            p = self.cond.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        p.bytes.extend_from_slice(bytes);
        self.cond.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }

    /// Tells the socket thread that its peer is gone.
    pub(crate) fn push_eof(&self) {
        self.lock().eof = true;
        self.cond.notify_all();
    }

    /// Waits until something happens or `deadline` passes; returns what happened (empty at
    /// the deadline). Never spins: it sleeps on the condition variable.
    pub(crate) fn wait(&self, deadline: Instant) -> Wakeup {
        let mut p = self.lock();
        loop {
            let w = Wakeup {
                changed: std::mem::take(&mut p.order),
                // Taken, not kept: a subscriber that outlives a cut (a webhook worker) must
                // not see it again and spin.
                cut: std::mem::take(&mut p.cut),
                bytes: std::mem::take(&mut p.bytes),
                eof: p.eof,
            };
            p.changed.clear();
            if !w.is_empty() {
                // The reader may be waiting for room.
                self.cond.notify_all();
                return w;
            }
            let now = Instant::now();
            if now >= deadline {
                return w;
            }
            p = match self.cond.wait_timeout(p, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

#[derive(Debug, Default)]
struct HubState {
    next: u64,
    by_key: HashMap<String, HashMap<u64, Arc<Inbox>>>,
    all: HashMap<u64, Arc<Inbox>>,
}

/// Who follows which key. A change wakes only the subscribers of that key, so thousands of held
/// requests on different resources cost nothing per change.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscriber following nothing yet.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Subscription {
        let inbox = Arc::new(Inbox::default());
        let mut state = self.lock();
        state.next += 1;
        let id = state.next;
        state.all.insert(id, Arc::clone(&inbox));
        Subscription {
            id,
            inbox,
            keys: Mutex::default(),
            hub: Arc::clone(self),
        }
    }

    /// Wakes the subscribers of `key`.
    pub(crate) fn publish(&self, key: &str) {
        let state = self.lock();
        if let Some(subs) = state.by_key.get(key) {
            for inbox in subs.values() {
                inbox.changed(key);
            }
        }
    }

    /// Whether anyone follows `key` (the ticker skips `/time` when nobody does).
    pub(crate) fn has_subscribers(&self, key: &str) -> bool {
        self.lock().by_key.contains_key(key)
    }

    /// Cuts every current subscriber: streams and sockets end, held requests answer early.
    pub(crate) fn cut_all(&self) -> usize {
        let state = self.lock();
        for inbox in state.all.values() {
            inbox.cut();
        }
        state.all.len()
    }

    #[cfg(test)]
    fn watched(&self) -> usize {
        self.lock().by_key.len()
    }
}

/// A subscriber: its inbox and the keys it follows. Dropping it unsubscribes from everything.
#[derive(Debug)]
pub(crate) struct Subscription {
    id: u64,
    inbox: Arc<Inbox>,
    keys: Mutex<HashSet<String>>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// Follows one more key.
    pub(crate) fn add(&self, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.insert(key.to_owned()) {
            self.hub
                .lock()
                .by_key
                .entry(key.to_owned())
                .or_default()
                .insert(self.id, Arc::clone(&self.inbox));
        }
    }

    /// Stops following a key.
    pub(crate) fn remove(&self, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.remove(key) {
            let mut hub = self.hub.lock();
            if let Some(subs) = hub.by_key.get_mut(key) {
                subs.remove(&self.id);
                if subs.is_empty() {
                    hub.by_key.remove(key);
                }
            }
        }
    }

    /// The mailbox, for a socket's reader thread.
    pub(crate) fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// Waits for a change, a cut or socket input, until `deadline`.
    pub(crate) fn wait(&self, deadline: Instant) -> Wakeup {
        self.inbox.wait(deadline)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inbox.close();
        let keys = std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()));
        let mut hub = self.hub.lock();
        hub.all.remove(&self.id);
        for key in keys {
            if let Some(subs) = hub.by_key.get_mut(&key) {
                subs.remove(&self.id);
                if subs.is_empty() {
                    hub.by_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

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
        assert_eq!(store.snapshot("/counter/a").unwrap().etag, "\"0\"");
        assert_eq!(store.snapshot("/objects/a").unwrap().value, None);
        assert!(store.snapshot("/plain/a").is_none());
        assert!(store.snapshot("/items/").is_none());
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
    fn objects_set_and_delete() {
        let store = Store::default();
        assert_eq!(store.delete_object("o"), Err(StoreError::NotFound));
        store.set_object("o", "{\"a\":1}".into()).unwrap();
        assert_eq!(store.object("o").value.as_deref(), Some("{\"a\":1}"));
        store.delete_object("o").unwrap();
        assert_eq!(store.object("o").value, None);
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
        let huge = Plain {
            content_type: String::new(),
            body: vec![0; STORE_BUDGET],
        };
        assert_eq!(store.set_plain("q", huge), Err(StoreError::Full));
        store.delete_plain("p").unwrap();
        assert_eq!(store.lock().used, 0);
    }

    #[test]
    fn items_changes_and_checkpoints() {
        let store = Store::new(3);
        assert_eq!(store.changes_since(0).unwrap().items, Vec::<Value>::new());
        let a = store
            .add_item(obj(serde_json::json!({"text": "a", "id": "x"})))
            .unwrap();
        let b = store
            .add_item(obj(serde_json::json!({"text": "b"})))
            .unwrap();
        assert_eq!((a, b), (1, 2));
        let all = store.changes_since(0).unwrap();
        assert_eq!(all.next, 2);
        assert_eq!(all.items[0], serde_json::json!({"id": "1", "text": "a"}));
        store
            .set_item(a, obj(serde_json::json!({"text": "A"})))
            .unwrap();
        // Item 1 changed last: once, after item 2.
        let since1 = store.changes_since(1).unwrap();
        assert_eq!(since1.items.len(), 2);
        assert_eq!(since1.items[1]["text"], "A");
        store.delete_item(b).unwrap();
        assert_eq!(store.delete_item(b), Err(StoreError::NotFound));
        assert_eq!(store.set_item(99, Map::new()), Err(StoreError::NotFound));
        let last = store.changes_since(3).unwrap();
        assert_eq!(
            last.items,
            vec![serde_json::json!({"id": "2", "text": "b", "deleted": true})]
        );
        // History of 3: checkpoint 0 needs change 1, which is gone.
        assert_eq!(store.changes_since(0), Err(CheckpointError::Expired));
        assert!(store.changes_since(1).is_ok());
        assert_eq!(store.changes_since(5), Err(CheckpointError::Unknown));
        assert_eq!(store.items().0.len(), 1);
        assert!(store.snapshot("/items/2").unwrap().value.is_none());
        assert!(store
            .snapshot("/items/1")
            .unwrap()
            .value
            .unwrap()
            .contains("\"A\""));
    }

    #[test]
    fn a_subscriber_is_woken_by_its_keys_only_and_coalesces() {
        let store = Store::default();
        let sub = store.subscribe(&["/counter/a"]);
        assert_eq!(store.watched(), 1);
        store.increment("b").unwrap();
        let quick = Instant::now() + Duration::from_millis(30);
        assert!(sub.wait(quick).changed.is_empty());
        store.increment("a").unwrap();
        store.increment("a").unwrap();
        let w = sub.wait(Instant::now() + Duration::from_secs(5));
        assert_eq!(w.changed, vec!["/counter/a".to_owned()]);
        store.hub().cut_all();
        assert!(sub.wait(Instant::now() + Duration::from_secs(5)).cut);
        drop(sub);
        assert_eq!(store.watched(), 0);
    }

    #[test]
    fn wait_wakes_across_threads() {
        let store = Arc::new(Store::default());
        let sub = store.subscribe(&["/objects/x"]);
        let s = Arc::clone(&store);
        let writer = std::thread::spawn(move || s.set_object("x", "1".into()).unwrap());
        let w = sub.wait(Instant::now() + Duration::from_secs(10));
        assert_eq!(w.changed, vec!["/objects/x".to_owned()]);
        writer.join().unwrap();
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
