//! Driving a follower: the loop that runs its transport, and whatever it switches to, until
//! it stops or is parked on a multiplexed connection. Adding a transport means a match arm here.

use super::{
    callbacks, changes, hint_stream, parked, poll, value_stream, value_wait, Ctx, Next,
    FOLLOWER_STACK,
};
use crate::error::Error;
use crate::event::Update;
use crate::mechanism::Mechanism;

/// Follows over `mechanism`, and whatever it switches to, until the follower stops or is
/// parked on a multiplexed connection (which gives it a thread again if it leaves).
pub(super) fn drive(mut ctx: Ctx, mut mechanism: Mechanism) {
    loop {
        let next = match mechanism {
            Mechanism::ValueWait => value_wait::run(&mut ctx),
            Mechanism::ValueStream => value_stream::run(&mut ctx),
            Mechanism::HintStream => hint_stream::run(&mut ctx),
            Mechanism::MultiplexWs
            | Mechanism::MultiplexSocket
            | Mechanism::MultiplexStream
            | Mechanism::MultiplexWait => match parked::park(ctx, mechanism, resume) {
                Ok(()) => return,
                Err(back) => {
                    let (back, next) = *back;
                    ctx = back;
                    next
                }
            },
            Mechanism::Changes | Mechanism::ChangesWait => changes::run_wait(&mut ctx, mechanism),
            Mechanism::ChangesStream => changes::run_stream(&mut ctx),
            Mechanism::ValueCallback
            | Mechanism::ChangesCallback
            | Mechanism::MultiplexCallbacks => callbacks::run(&mut ctx, mechanism),
            _ => poll::run(&mut ctx),
        };
        match next {
            Next::Stop => return,
            Next::Switch(m) => {
                ctx.trace(format!("switching from {mechanism} to {m}"));
                mechanism = m;
                ctx.enter(m);
            }
        }
    }
}

/// A follower that left its hub goes on, on a thread of its own, or ends.
pub(super) fn resume(mut ctx: Ctx, next: Next) {
    let Next::Switch(mechanism) = next else {
        return;
    };
    let from = ctx.transport;
    ctx.trace(format!("switching from {from} to {mechanism}"));
    ctx.enter(mechanism);
    let name = format!("follow {}", ctx.url);
    // A thread cannot start: say so, as when following started.
    let report = ctx.tx.clone();
    let url = ctx.url.to_string();
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(FOLLOWER_STACK)
        .spawn(move || drive(ctx, mechanism));
    if let Err(e) = spawned {
        let _ = report.send(Update::Failed(Error::Setup(format!(
            "cannot start a thread to follow {url}: {e}"
        ))));
    }
}
