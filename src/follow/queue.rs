//! The updates between the followers and the consumer, bounded whatever the event rate and
//! however slowly the consumer reads (a printer writing to a pipe nobody reads, say).
//!
//! Up to a limit, every update waits its turn. Beyond it, what is not news gives way: a value
//! (or removal) of a resource replaces that resource's newest value still waiting, so a consumer
//! that fell behind gets the latest value of each resource and never an older one after a newer
//! one (said once, as a warning); a status replaces the resource's status still waiting. What is
//! news (changes, child events, notices) waits for room instead: the follower's reading pauses,
//! and TCP flow control slows the server. A failure or an interruption is always taken.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::event::{Body, Event, EventKind, Level, Notice, Update};

/// How many updates may wait before values are coalesced and news waits: enough for a burst
/// (a few hundred resources starting at once), small enough that a consumer that fell behind
/// is soon shown the latest value.
pub(super) const MAX_UPDATES: usize = 256;
/// How many bytes of bodies may wait (see `size`).
const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The queue: senders are the followers (any thread), the receiver the consumer.
#[derive(Debug, Default)]
pub(super) struct Updates {
    state: Mutex<State>,
    /// What the consumer took out in one go and has not handed on yet (the consumer's alone:
    /// taking the whole queue at once keeps it from contending with a fast sender for each
    /// update). At most a queue's worth.
    taken: Mutex<VecDeque<Update>>,
    /// The consumer waits here for an update.
    ready: Condvar,
    /// Senders of news wait here for room.
    room: Condvar,
    /// Events the consumer is done with, handed back (see `recycle`), and their body bytes.
    spent: Mutex<(Vec<Event>, usize)>,
}

/// The most events, and body bytes, waiting to be freed by a follower; beyond either the
/// consumer frees them itself.
const MAX_SPENT: usize = 4 * MAX_UPDATES;
const MAX_SPENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct State {
    updates: VecDeque<Update>,
    /// The body bytes of the events waiting.
    bytes: usize,
    /// The consumer is gone: nothing more is taken, and waiting senders give up.
    closed: bool,
    /// Whether the consumer waits on `ready` (wakes cost a system call: only when needed).
    receiving: bool,
    /// How many senders wait on `room`.
    sending: usize,
    /// Whether the consumer was told that values are being coalesced.
    told: bool,
}

impl State {
    fn full(&self) -> bool {
        self.updates.len() >= MAX_UPDATES || self.bytes >= MAX_BYTES
    }

    fn push(&mut self, update: Update) {
        self.bytes += size(&update);
        self.updates.push_back(update);
    }

    /// Coalesces a value over the limit: replaces the resource's newest waiting value, when
    /// it has two waiting in a row (the older one is kept: a value equal to it makes the
    /// newest one moot, so the same value is never shown twice in a row). Gives the event back
    /// when it must be queued: the resource has fewer than two values waiting, so the queue
    /// grows by at most two per resource beyond the limit.
    fn coalesce(&mut self, event: Event) -> Option<Event> {
        let Some(newest) = self.newest_of(&event.uri, self.updates.len()) else {
            return Some(event);
        };
        let Some(older) = self.newest_of(&event.uri, newest) else {
            return Some(event);
        };
        let same_as_older = match &self.updates[older] {
            Update::Event(older) => {
                older.kind == event.kind
                    && older.body.as_ref().map(|b| &b.bytes)
                        == event.body.as_ref().map(|b| &b.bytes)
            }
            _ => false,
        };
        let replaced = if same_as_older {
            self.updates.remove(newest)
        } else {
            Some(std::mem::replace(
                &mut self.updates[newest],
                Update::Event(event),
            ))
        };
        if let Some(replaced) = replaced {
            self.bytes -= size(&replaced);
        }
        if !same_as_older {
            self.bytes += size(&self.updates[newest]);
        }
        None
    }

    /// The position of `uri`'s newest event before `before`, when it is a value or removal
    /// (an event of another kind in between ends the search: values never overtake it).
    fn newest_of(&self, uri: &str, before: usize) -> Option<usize> {
        let at = self
            .updates
            .range(..before)
            .rposition(|u| matches!(u, Update::Event(e) if &*e.uri == uri))?;
        match &self.updates[at] {
            Update::Event(e) if coalescible(e) => Some(at),
            _ => None,
        }
    }
}

/// Values and removals: a newer one says all an older one did. Not those of a live URL given
/// directly (an event stream, say): each of its events is news.
fn coalescible(event: &Event) -> bool {
    matches!(event.kind, EventKind::Value | EventKind::Removed) && event.live.is_none()
}

/// The memory an update holds, roughly, for the bound (see `Body::size`).
fn size(update: &Update) -> usize {
    match update {
        Update::Event(e) => e.body.as_ref().map_or(0, Body::size),
        _ => 0,
    }
}

impl Updates {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an update, coalescing or waiting for room beyond the limit (see the module);
    /// false when the consumer is gone.
    pub(super) fn send(&self, update: Update) -> bool {
        self.send_all(std::iter::once(update))
    }

    /// Queues updates that arrived together (the events of one read of a stream) as `send`
    /// would one by one, but under one lock and with one wake-up of the consumer: waking it
    /// costs a system call and a context switch, more than handling a small event.
    pub(super) fn send_all(&self, updates: impl IntoIterator<Item = Update>) -> bool {
        let mut state = self.lock();
        // Whether something was queued that the consumer has not been woken for.
        let mut unwoken = false;
        for update in updates {
            match self.queue(state, update, &mut unwoken) {
                Some(held) => state = held,
                None => return false,
            }
        }
        if unwoken {
            self.wake_receiver(&state);
        }
        drop(state);
        // Frees what the consumer handed back, here on a follower's thread (see `recycle`).
        let spent = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|e| e.into_inner()));
        drop(spent);
        true
    }

    /// Takes back events the consumer is done with, to be freed by the next follower that
    /// sends anything (`send_all`). Why: a fast stream's reader allocates each event and the
    /// consumer frees it, and glibc's allocator serialises such frees on the allocating
    /// thread's arena lock (a tenth of the printer's time on a stream of 1 KB events,
    /// BENCHMARKS.md); freed by the reader (with one stream, where they were made; with
    /// several, by whichever sends next), they cost no lock contention and its next
    /// allocations reuse them. `events` is left empty. At most `MAX_SPENT` events and
    /// `MAX_SPENT_BYTES` (as the queue counts bytes: parsed JSON values included) wait;
    /// beyond that they are freed here. What waits while no follower sends stays bounded so.
    pub(super) fn recycle(&self, events: &mut Vec<Event>) {
        let bytes: usize = events
            .iter()
            .map(|e| e.body.as_ref().map_or(0, Body::size))
            .sum();
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if spent.0.len() + events.len() <= MAX_SPENT && spent.1 + bytes <= MAX_SPENT_BYTES {
            spent.0.append(events);
            spent.1 += bytes;
            return;
        }
        drop(spent);
        events.clear();
    }

    /// Queues one update (see `send`) holding the lock; the lock back, or `None` when the
    /// consumer is gone. Before waiting for room, wakes the consumer for what it has not seen.
    fn queue<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        update: Update,
        unwoken: &mut bool,
    ) -> Option<MutexGuard<'a, State>> {
        let mut update = update;
        let update = loop {
            if state.closed {
                return None;
            }
            if !state.full() {
                break update;
            }
            match update {
                Update::Interrupted | Update::Failed(_) => break update,
                Update::Event(event) if coalescible(&event) => {
                    let uri = event.uri.clone();
                    match state.coalesce(event) {
                        Some(event) => break Update::Event(event),
                        None => {
                            if !state.told {
                                state.told = true;
                                state.push(Update::Notice(Notice {
                                    uri,
                                    level: Level::Warn,
                                    message: "output is falling behind: from now on, while \
                                              it does, older values are skipped for the \
                                              latest one"
                                        .to_string(),
                                }));
                                *unwoken = true;
                            }
                            return Some(state);
                        }
                    }
                }
                Update::Status(status) => {
                    let waiting = state.updates.iter_mut().rev().find_map(|u| match u {
                        Update::Status(s) if s.uri == status.uri => Some(s),
                        _ => None,
                    });
                    match waiting {
                        Some(waiting) => {
                            *waiting = status;
                            return Some(state);
                        }
                        None => break Update::Status(status),
                    }
                }
                news => {
                    // Waits for the consumer (the network read waits with it), which must
                    // know there is something to take.
                    if std::mem::take(unwoken) {
                        self.wake_receiver(&state);
                    }
                    state.sending += 1;
                    state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
                    state.sending -= 1;
                    update = news;
                }
            }
        };
        state.push(update);
        *unwoken = true;
        Some(state)
    }

    fn wake_receiver(&self, state: &State) {
        if state.receiving {
            self.ready.notify_one();
        }
    }

    /// The next update, if one is waiting.
    pub(super) fn try_recv(&self) -> Option<Update> {
        let mut taken = self.taken();
        if let Some(update) = taken.pop_front() {
            return Some(update);
        }
        let mut state = self.lock();
        self.take(&mut state, &mut taken);
        taken.pop_front()
    }

    /// The next update, waiting until `deadline` (`None`: as long as it takes); `None` at the
    /// deadline, or when closed.
    pub(super) fn recv_until(&self, deadline: Option<Instant>) -> Option<Update> {
        let mut taken = self.taken();
        if let Some(update) = taken.pop_front() {
            return Some(update);
        }
        let mut state = self.lock();
        loop {
            self.take(&mut state, &mut taken);
            if let Some(update) = taken.pop_front() {
                return Some(update);
            }
            if state.closed {
                return None;
            }
            state.receiving = true;
            state = match deadline {
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.receiving = false;
                        return None;
                    }
                    self.ready
                        .wait_timeout(state, left.min(Duration::from_secs(3600)))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.receiving = false;
        }
    }

    fn taken(&self) -> MutexGuard<'_, VecDeque<Update>> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves everything waiting to `taken` (empty), making room for senders.
    fn take(&self, state: &mut State, taken: &mut VecDeque<Update>) {
        if state.updates.is_empty() {
            return;
        }
        std::mem::swap(&mut state.updates, taken);
        state.bytes = 0;
        if state.sending > 0 {
            self.room.notify_all();
        }
    }

    /// Takes nothing more: senders waiting for room give up, and later ones too.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.updates.clear();
        state.bytes = 0;
        drop(state);
        // Woken first: a consumer waiting in `recv_until` holds `taken` while it waits, and
        // lets it go only once woken to find the queue closed.
        self.room.notify_all();
        self.ready.notify_all();
        self.taken().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;
    use crate::mechanism::Mechanism;
    use std::sync::Arc;
    use std::time::SystemTime;

    fn event(uri: &str, kind: EventKind, body: &str) -> Update {
        Update::Event(Event {
            kind,
            uri: uri.into(),
            id: None,
            etag: None,
            transport: Mechanism::ValueStream,
            time: SystemTime::now(),
            body: Some(Body::new(body.as_bytes().to_vec(), None)),
            initial: false,
            live: None,
        })
    }

    fn value(uri: &str, body: &str) -> Update {
        event(uri, EventKind::Value, body)
    }

    /// What is waiting, as `uri=body` (events) and `notice`/`status`.
    fn drain(q: &Updates) -> Vec<String> {
        std::iter::from_fn(|| q.try_recv())
            .map(|u| match u {
                Update::Event(e) => format!(
                    "{}={}",
                    e.uri,
                    e.body.map(|b| b.text().to_string()).unwrap_or_default()
                ),
                Update::Notice(_) => "notice".to_string(),
                Update::Status(s) => format!("status {}", s.retries),
                _ => "other".to_string(),
            })
            .collect()
    }

    /// A queue filled to the limit with values of `/fill`.
    fn full() -> Updates {
        let q = Updates::default();
        for i in 0..MAX_UPDATES {
            assert!(q.send(value("/fill", &i.to_string())));
        }
        q
    }

    #[test]
    fn events_handed_back_are_freed_by_the_next_sender_within_bounds() {
        let q = Updates::default();
        let events = |n: usize, body: &str| -> Vec<Event> {
            (0..n)
                .map(|_| match value("/r", body) {
                    Update::Event(e) => e,
                    _ => unreachable!(),
                })
                .collect()
        };
        let spent = |q: &Updates| q.spent.lock().unwrap().0.len();
        let mut printed = events(10, "1");
        q.recycle(&mut printed);
        assert!(printed.is_empty());
        assert_eq!(spent(&q), 10, "held for a follower");
        assert!(q.send(value("/r", "2")));
        assert_eq!(spent(&q), 0, "freed by the sender");
        // Over the bounds, the consumer frees them itself: nothing grows without a sender.
        let mut many = events(MAX_SPENT + 1, "1");
        q.recycle(&mut many);
        assert!(many.is_empty());
        assert_eq!(spent(&q), 0);
        let big = "x".repeat(MAX_SPENT_BYTES / 2 + 1);
        q.recycle(&mut events(1, &big));
        q.recycle(&mut events(1, &big));
        assert_eq!(spent(&q), 1, "the second is over the byte bound");
    }

    #[test]
    fn closing_from_another_thread_ends_a_waiting_receive() {
        let q = Arc::new(Updates::default());
        let consumer = Arc::clone(&q);
        let waiting = std::thread::spawn(move || consumer.recv_until(None).is_none());
        // Closed once the consumer waits (or before: either way it must end).
        std::thread::sleep(Duration::from_millis(50));
        let closer = Arc::clone(&q);
        let closing = std::thread::spawn(move || closer.close());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(waiting.is_finished() && closing.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "close and receive wait for each other"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(waiting.join().unwrap(), "the receive ends with nothing");
    }

    #[test]
    fn below_the_limit_every_update_is_kept() {
        let q = Updates::default();
        for i in 0..10 {
            q.send(value("/a", &i.to_string()));
        }
        let expected: Vec<String> = (0..10).map(|i| format!("/a={i}")).collect();
        assert_eq!(drain(&q), expected);
    }

    #[test]
    fn beyond_it_the_latest_value_replaces_the_newest_waiting_said_once() {
        let q = full();
        // Values none of those waiting has (they are 0 up to the limit).
        for i in 10_000..10_100 {
            q.send(value("/fill", &i.to_string()));
        }
        let got = drain(&q);
        assert_eq!(got.len(), MAX_UPDATES + 1, "{got:?}");
        // In order, the latest last, and the coalescing said once.
        assert_eq!(got[MAX_UPDATES - 2], format!("/fill={}", MAX_UPDATES - 2));
        assert_eq!(got[MAX_UPDATES - 1], "/fill=10099");
        assert_eq!(got[MAX_UPDATES], "notice");
    }

    #[test]
    fn a_resource_gets_up_to_two_waiting_beyond_the_limit() {
        let q = full();
        q.send(value("/b", "1"));
        q.send(value("/b", "2"));
        q.send(value("/b", "3"));
        let got = drain(&q);
        assert_eq!(&got[MAX_UPDATES..], ["/b=1", "/b=3", "notice"]);
    }

    #[test]
    fn coalescing_never_shows_the_same_value_twice_in_a_row() {
        let q = full();
        q.send(value("/b", "A"));
        q.send(value("/b", "B"));
        // A again: B is moot, and A is not shown twice.
        q.send(value("/b", "A"));
        let got = drain(&q);
        assert_eq!(&got[MAX_UPDATES..], ["/b=A", "notice"]);
    }

    #[test]
    fn values_never_overtake_news_of_the_same_resource() {
        let q = Updates::default();
        q.send(value("/c", "1"));
        q.send(event("/c", EventKind::Changes, "x"));
        for i in 2..MAX_UPDATES {
            q.send(value("/fill", &i.to_string()));
        }
        for i in 2..10 {
            q.send(value("/c", &i.to_string()));
        }
        let got = drain(&q);
        assert_eq!(&got[..2], ["/c=1", "/c=x"]);
        assert_eq!(&got[MAX_UPDATES..], ["/c=2", "/c=9", "notice"]);
    }

    #[test]
    fn statuses_beyond_the_limit_replace_the_waiting_one() {
        let q = full();
        let status = |retries| {
            Update::Status(crate::event::Status {
                uri: "/fill".into(),
                transport: Mechanism::Poll,
                since: SystemTime::now(),
                retries,
            })
        };
        q.send(status(1));
        q.send(status(2));
        q.send(status(3));
        let got = drain(&q);
        assert_eq!(&got[MAX_UPDATES..], ["status 3"]);
    }

    #[test]
    fn news_beyond_the_limit_waits_for_room_and_gives_up_when_closed() {
        let q = Arc::new(full());
        let sender = Arc::clone(&q);
        let news = std::thread::spawn(move || sender.send(event("/d", EventKind::ChildAdded, "n")));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!news.is_finished(), "news waits while the queue is full");
        assert!(q.try_recv().is_some());
        assert!(news.join().unwrap(), "taken once there is room");
        assert_eq!(drain(&q).last().unwrap(), "/d=n");

        let q = Arc::new(full());
        let sender = Arc::clone(&q);
        let news = std::thread::spawn(move || sender.send(event("/d", EventKind::ChildAdded, "n")));
        std::thread::sleep(Duration::from_millis(100));
        q.close();
        assert!(!news.join().unwrap(), "a closed queue takes nothing");
        assert!(!q.send(value("/e", "1")));
    }

    #[test]
    fn values_of_live_urls_are_news_never_coalesced() {
        // A queue full of a stream's events: one more waits for room; none is dropped.
        let live = |body: &str| match value("/s", body) {
            Update::Event(mut e) => {
                e.live = Some(crate::event::Live::default());
                Update::Event(e)
            }
            other => other,
        };
        let q = Arc::new(Updates::default());
        for i in 0..MAX_UPDATES {
            assert!(q.send(live(&i.to_string())));
        }
        let sender = Arc::clone(&q);
        let more = std::thread::spawn(move || sender.send(live("last")));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !more.is_finished(),
            "a live event waits while the queue is full"
        );
        assert!(q.try_recv().is_some());
        assert!(more.join().unwrap(), "taken once there is room");
        let got = drain(&q);
        assert_eq!(got.len(), MAX_UPDATES);
        assert_eq!(got.last().unwrap(), "/s=last");
    }

    #[test]
    fn a_batch_larger_than_the_queue_wakes_the_consumer_before_it_waits() {
        // A waiting consumer, and a batch of news (a stream's events) twice the limit: the
        // sender must wake the consumer before waiting for room, or both wait for ever.
        let live = |i: usize| match value("/s", &i.to_string()) {
            Update::Event(mut e) => {
                e.live = Some(crate::event::Live::default());
                Update::Event(e)
            }
            other => other,
        };
        let q = Arc::new(Updates::default());
        let consumer = Arc::clone(&q);
        let (done, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bodies = Vec::new();
            while bodies.len() < 2 * MAX_UPDATES {
                match consumer.recv_until(None) {
                    Some(Update::Event(e)) => bodies.push(e.body.unwrap().text().to_string()),
                    Some(_) => {}
                    None => break,
                }
            }
            let _ = done.send(bodies);
        });
        std::thread::sleep(Duration::from_millis(50));
        // Sent on a thread of its own, so that a sender waiting for ever fails the test.
        std::thread::spawn(move || q.send_all((0..2 * MAX_UPDATES).map(live)));
        let bodies = got.recv_timeout(Duration::from_secs(5)).expect("all taken");
        let expected: Vec<String> = (0..2 * MAX_UPDATES).map(|i| i.to_string()).collect();
        assert_eq!(bodies, expected, "every event, in order");
    }

    #[test]
    fn failures_and_interruptions_are_always_taken() {
        let q = full();
        assert!(q.send(Update::Interrupted));
        assert!(matches!(
            drain(&q).last().map(String::as_str),
            Some("other")
        ));
    }

    #[test]
    fn bodies_bound_the_queue_too() {
        let q = Updates::default();
        let big = "x".repeat(MAX_BYTES / 4);
        for i in 0..10 {
            q.send(value("/big", &format!("{i}{big}")));
        }
        let state = q.lock();
        assert!(state.bytes <= MAX_BYTES + big.len() + 2, "{}", state.bytes);
        assert!(state.updates.len() <= 6, "{}", state.updates.len());
    }

    #[test]
    fn recv_waits_until_a_deadline() {
        let q = Arc::new(Updates::default());
        let t0 = Instant::now();
        assert!(q.recv_until(Some(t0 + Duration::from_millis(50))).is_none());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let sender = Arc::clone(&q);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            sender.send(value("/f", "1"));
        });
        assert!(q.recv_until(None).is_some());
    }
}
