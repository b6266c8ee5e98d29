//! Parked followers: a resource followed over a multiplexed connection needs no thread of its
//! own. Its state waits in a mailbox the hub delivers to; when events arrive, one of a few
//! shared threads takes the follower out, handles them in order, and puts it back. A thread
//! per resource cost ~16 KiB of resident stack each (10,000 resources over one socket: 156 MB
//! of stacks alone); a parked follower costs its state.
//!
//! One mailbox is handled by one thread at a time, so a follower sees its events in order and
//! never concurrently. When it leaves the hub (a fall back), it gets a thread again (`drive`).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::hub::{HubEvent, Inbox};
use super::multiplexed::Joined;
use super::pool::Pool;
use super::{Ctx, Next};
use crate::mechanism::Mechanism;

/// Follows the resource through the hub for `mechanism` without a thread of its own: parks
/// it, or hands it back with what to do next when it cannot join. Should it leave the hub,
/// it goes on with `resume`, given by `drive` (which parks followers: were this module to
/// name `drive`, the two would import each other).
pub(super) fn park(
    ctx: Ctx,
    mechanism: Mechanism,
    resume: fn(Ctx, Next),
) -> Result<(), Box<(Ctx, Next)>> {
    let mailbox = Mailbox::new(Arc::clone(&ctx.shared.parked), resume);
    let mut ctx = ctx;
    match Joined::join(&mut ctx, mechanism, Arc::clone(&mailbox) as Arc<dyn Inbox>) {
        Ok(joined) => {
            mailbox.install(ctx, joined);
            Ok(())
        }
        Err(next) => Err(Box::new((ctx, next))),
    }
}

/// A parked follower and its waiting events.
pub(super) struct Mailbox {
    state: Mutex<State>,
    /// Signalled when events are taken out (or the mailbox closes): a hub waiting for room.
    room: Condvar,
    /// Where its events are handled.
    pool: Arc<Pool>,
    /// How the follower goes on when it leaves the hub.
    resume: fn(Ctx, Next),
}

/// Events that may wait in one mailbox. A hub that finds it full waits for room, so it stops
/// reading its connection and TCP holds a flooding server back, rather than the queue growing
/// without bound while the follower (and the printer behind it) fall behind.
const MAX_WAITING: usize = 256;
/// How long a hub waits for room at a time before looking again (the follower may have gone).
const ROOM_WAIT: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    /// Events not handled yet, oldest first.
    queue: VecDeque<HubEvent>,
    /// The follower, while it is not being handled (and once installed).
    follower: Option<Box<(Ctx, Joined)>>,
    /// A thread is handling (or about to handle) this mailbox.
    scheduled: bool,
    /// The follower left: nothing more is delivered.
    closed: bool,
    /// The hub waits for room (see `MAX_WAITING`).
    hub_waiting: bool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Mailbox")
            .field("waiting", &state.queue.len())
            .field("parked", &state.follower.is_some())
            .field("scheduled", &state.scheduled)
            .field("closed", &state.closed)
            .finish()
    }
}

impl Mailbox {
    /// An empty mailbox whose events will be handled on `pool`; a follower that leaves goes
    /// on with `resume`.
    fn new(pool: Arc<Pool>, resume: fn(Ctx, Next)) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            state: Mutex::default(),
            room: Condvar::new(),
            pool,
            resume,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the follower in, once it has joined its hub; events that came first are handled.
    pub(super) fn install(self: &Arc<Self>, ctx: Ctx, joined: Joined) {
        let mut state = self.lock();
        state.follower = Some(Box::new((ctx, joined)));
        let start = !state.queue.is_empty() && !state.scheduled;
        state.scheduled |= start;
        drop(state);
        if start {
            self.schedule();
        }
    }

    /// Delivers an event from the hub, waiting for room while `MAX_WAITING` are waiting; it
    /// comes back when the follower has left.
    fn deliver(self: &Arc<Self>, event: HubEvent) -> Result<(), HubEvent> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(event);
            }
            if state.queue.len() < MAX_WAITING {
                break;
            }
            state.hub_waiting = true;
            state = self
                .room
                .wait_timeout(state, ROOM_WAIT)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.queue.push_back(event);
        let start = !state.scheduled && state.follower.is_some();
        state.scheduled |= start;
        drop(state);
        if start {
            self.schedule();
        }
        Ok(())
    }

    fn schedule(self: &Arc<Self>) {
        let me = Arc::clone(self);
        self.pool.submit(Box::new(move || me.drain()));
    }

    /// Handles the waiting events in order: until there are none, or for one turn, after
    /// which the mailbox goes to the back of the pool's queue so that others go first.
    fn drain(self: &Arc<Self>) {
        for _ in 0..TURN {
            let (event, mut follower) = {
                let mut state = self.lock();
                // The follower is taken out only with an event for it: it is `None` only
                // while being handled (or before it is installed).
                let event = state.queue.pop_front();
                if state.hub_waiting && event.is_some() {
                    state.hub_waiting = false;
                    self.room.notify_all();
                }
                match (event, state.follower.take()) {
                    (Some(event), Some(follower)) => (event, follower),
                    (event, follower) => {
                        if let Some(event) = event {
                            state.queue.push_front(event);
                        }
                        state.follower = follower;
                        state.scheduled = false;
                        return;
                    }
                }
            };
            let (ctx, joined) = &mut *follower;
            // Should handling panic, the follower is lost with it: the mailbox closes, so the
            // hub forgets it instead of queueing for nobody.
            let closer = Closer(self);
            let outcome = joined.handle(ctx, event);
            std::mem::forget(closer);
            match outcome {
                None => self.lock().follower = Some(follower),
                Some(next) => {
                    self.close();
                    let (ctx, _) = *follower;
                    (self.resume)(ctx, next);
                    return;
                }
            }
        }
        self.schedule();
    }

    /// Takes no more events.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.scheduled = false;
        state.queue.clear();
        self.room.notify_all();
    }
}

impl Inbox for Mailbox {
    fn send(self: Arc<Self>, event: HubEvent) -> Result<(), HubEvent> {
        self.deliver(event)
    }
}

/// Events one mailbox handles before its thread turns to others.
const TURN: usize = 32;

/// Closes a mailbox when dropped (by an unwinding panic; forgotten otherwise).
struct Closer<'a>(&'a Mailbox);

impl Drop for Closer<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}
