//! `--exec CMD`: run `sh -c CMD` for each event, one run at a time, the body on stdin and the
//! event's facts in `LRWATCH_*` variables. The resource's content never reaches the command
//! line (with `--json`, stdin is the event's `--json` envelope instead of the bare body). Events
//! that arrive during a run are coalesced per resource, so the next run sees the latest value
//! rather than working through a backlog; those of a live URL given directly (an event stream,
//! JSON lines, a WebSocket) are news: each gets its run, in order. Each run is its own process
//! group, so
//! that when lrwatch stops early (`--timeout`, an error, a signal) the command is stopped with
//! everything it started: SIGTERM, then SIGKILL after a grace.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lrwatch::Event;

/// Receives one line for stderr: a failed run is reported, and following goes on.
pub type Report = Box<dyn Fn(String) + Send>;

/// How many events of live URLs given directly may wait for their runs before reading waits
/// (they are news, never coalesced).
pub const LIVE_BACKLOG: usize = 64;

/// What each run is given.
pub struct Runs {
    /// With `--json`: stdin is the event's envelope, the line `--json` would print, so that
    /// scripts get the event, URI, ETag and transport in one JSON document; else the body as
    /// received (nothing for a removal).
    pub envelope: bool,
    /// The names of `NAME=URL` arguments, by URL: `LRWATCH_NAME`, and the envelope's `name`.
    pub names: Arc<crate::urls::Names>,
}

/// How long a stopped command has between SIGTERM and SIGKILL: enough for a well-behaved one
/// to clean up, short enough that lrwatch still exits promptly.
pub const GRACE: Duration = Duration::from_secs(2);

/// The background runner.
pub struct Exec {
    shared: Arc<Shared>,
    /// Joined by [`Exec::drain`] once every run is done.
    worker: Option<JoinHandle<()>>,
}

/// Wakes an [`Exec::drain`] in progress from another thread (the signal thread).
#[derive(Clone)]
pub struct Waker(Arc<Shared>);

impl Waker {
    /// Makes a waiting [`Exec::drain`] return [`Drained::Woken`], now or when it starts.
    pub fn wake(&self) {
        self.0.lock().woken = true;
        self.0.changed.notify_all();
    }
}

/// How [`Exec::drain`] (or a [`Exec::push`] that waited for room) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every queued run has finished.
    Done,
    /// The deadline came first; the run in progress still runs (see [`Exec::stop`]).
    Deadline,
    /// [`Waker::wake`] was called.
    Woken,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a change, until `deadline` if there is one: `Err` (the state, unchanged)
    /// once it has passed.
    fn wait<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, State>, MutexGuard<'a, State>> {
        let Some(deadline) = deadline else {
            return Ok(self.changed.wait(state).unwrap_or_else(|e| e.into_inner()));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(state);
        }
        Ok(self
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(|e| e.into_inner())
            .0)
    }
}

#[derive(Default)]
struct State {
    /// At most one event per resource, oldest first.
    pending: VecDeque<Event>,
    /// No more events will come: the worker ends once `pending` is empty.
    closed: bool,
    /// Stopping: nothing more is started.
    stopped: bool,
    /// The process group of the command running now (its `sh`'s pid), while `sh` lives.
    running: Option<u32>,
    /// The worker has taken an event and not yet finished with it.
    busy: bool,
    /// See [`Waker`].
    woken: bool,
}

impl Exec {
    /// Starts the runner for `command`; `runs` says what each run is given.
    pub fn start(command: String, runs: Runs, report: Report) -> std::io::Result<Exec> {
        let shared = Arc::new(Shared::default());
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("exec".into())
            .spawn(move || work(&command, &runs, &worker_shared, &report))?;
        Ok(Exec {
            shared,
            worker: Some(worker),
        })
    }

    /// Queues a run for `event`, replacing a run still waiting for the same resource. An
    /// event of a live URL given directly (an event stream, say) is news: it replaces nothing,
    /// and waits for room once [`LIVE_BACKLOG`] of them wait, so reading the stream waits for
    /// the runs (until `deadline` or a [`Waker::wake`], which it says).
    pub fn push(&self, event: Event, deadline: Option<Instant>) -> Drained {
        let mut state = self.shared.lock();
        if event.live.is_none() {
            state.pending.retain(|e| e.uri != event.uri);
        } else {
            while state.pending.iter().filter(|e| e.live.is_some()).count() >= LIVE_BACKLOG {
                if state.woken {
                    return Drained::Woken;
                }
                if state.stopped {
                    return Drained::Done;
                }
                state = match self.shared.wait(state, deadline) {
                    Ok(state) => state,
                    Err(_) => return Drained::Deadline,
                };
            }
        }
        state.pending.push_back(event);
        self.shared.changed.notify_all();
        Drained::Done
    }

    /// A handle that interrupts [`Exec::drain`].
    pub fn waker(&self) -> Waker {
        Waker(Arc::clone(&self.shared))
    }

    /// Takes no more events and lets the queued runs finish, until `deadline` or a
    /// [`Waker::wake`], whichever comes first.
    pub fn drain(&mut self, deadline: Option<Instant>) -> Drained {
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.changed.notify_all();
        let drained = loop {
            if state.woken {
                break Drained::Woken;
            }
            if state.pending.is_empty() && !state.busy {
                break Drained::Done;
            }
            state = match self.shared.wait(state, deadline) {
                Ok(state) => state,
                Err(unchanged) => {
                    state = unchanged;
                    break Drained::Deadline;
                }
            };
        };
        drop(state);
        if drained == Drained::Done {
            if let Some(worker) = self.worker.take() {
                let _ = worker.join();
            }
        }
        drained
    }

    /// Starts nothing more and stops the command running now, with its process group:
    /// SIGTERM, then SIGKILL for whatever is left of the group after [`GRACE`]. Returns once
    /// the group is gone (or, should SIGKILL somehow not end it, a moment after that).
    pub fn stop(&mut self) {
        let mut state = self.shared.lock();
        state.stopped = true;
        state.closed = true;
        state.pending.clear();
        self.shared.changed.notify_all();
        let Some(group) = state.running else {
            return;
        };
        let deadline = Instant::now() + GRACE;
        signal_group(group, Signal::Term);
        // `sh` first (the worker reaps it and clears `running`), then what it left behind in
        // its group: a command may ignore SIGTERM, or a child may outlive `sh`.
        while state.running.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(state);
        // Processes that are not our children cannot be waited for: the group is polled.
        while group_exists(group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_group(group, Signal::Kill);
        let settle = Instant::now() + Duration::from_secs(1);
        while group_exists(group) && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn work(command: &str, runs: &Runs, shared: &Shared, report: &Report) {
    loop {
        let mut state = shared.lock();
        state.busy = false;
        shared.changed.notify_all();
        let event = loop {
            if state.stopped {
                return;
            }
            if let Some(event) = state.pending.pop_front() {
                break event;
            }
            if state.closed {
                return;
            }
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        };
        state.busy = true;
        // Started with the lock held, so that `stop` either sees the process group or
        // prevents the start.
        let started = start(command, runs, &event);
        let (mut child, writer) = match started {
            Ok(started) => started,
            Err(problem) => {
                drop(state);
                report(format!("lrwatch: --exec: {problem} (for {})", event.uri));
                continue;
            }
        };
        state.running = Some(child.id());
        drop(state);
        let status = child.wait();
        shared.lock().running = None;
        shared.changed.notify_all();
        // The writer ends when the group has closed the pipe, which is now unless a process
        // left the group holding it: then it is left behind rather than waited for.
        drop(writer);
        let problem = match status {
            Ok(status) if status.success() => continue,
            Ok(status) => format!("the command failed ({status})"),
            Err(e) => format!("cannot wait for the command: {e}"),
        };
        if !shared.lock().stopped {
            report(format!("lrwatch: --exec: {problem} (for {})", event.uri));
        }
    }
}

/// Starts one run: `sh -c command` in a process group of its own, the body or the envelope
/// on stdin (written by the returned thread), the facts in the environment.
fn start(
    command: &str,
    runs: &Runs,
    event: &Event,
) -> Result<(std::process::Child, JoinHandle<()>), String> {
    let name = runs.names.get(&event.uri);
    let sse = event.live.as_ref().and_then(|l| l.sse.as_ref());
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .env("LRWATCH_EVENT", event.kind.as_str())
        .env("LRWATCH_URI", &*event.uri)
        // The ETag, the item's id and an event stream's event name and id are the server's
        // words: made fit for the environment (see `env_value`). The URL and the name are the
        // user's.
        .env(
            "LRWATCH_ETAG",
            env_value(event.etag.as_deref().unwrap_or("")).as_ref(),
        )
        .env("LRWATCH_TRANSPORT", event.transport.as_str())
        .env(
            "LRWATCH_ID",
            env_value(event.id.as_deref().unwrap_or("")).as_ref(),
        )
        .env("LRWATCH_NAME", name.unwrap_or(""))
        // An event stream's event name and id (empty otherwise).
        .env(
            "LRWATCH_SSE_EVENT",
            env_value(sse.map_or("", |s| &*s.event)).as_ref(),
        )
        .env(
            "LRWATCH_SSE_ID",
            env_value(sse.and_then(|s| s.id.as_deref()).unwrap_or("")).as_ref(),
        )
        .stdin(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        sh.process_group(0);
    }
    let mut child = sh.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    // Written on its own thread: a command that does not read its stdin must not block us,
    // and one that exits early just closes the pipe.
    let stdin = child.stdin.take();
    let body = if runs.envelope {
        let mut line = Vec::new();
        // Writing to memory cannot fail.
        let _ = crate::output::write_envelope(&mut line, event, name);
        bytes::Bytes::from(line)
    } else {
        event
            .body
            .as_ref()
            .map(|b| match b.content() {
                // The bytes as received: shared, not copied.
                std::borrow::Cow::Borrowed(_) => b.bytes.clone(),
                std::borrow::Cow::Owned(text) => bytes::Bytes::from(text),
            })
            .unwrap_or_default()
    };
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&body);
        }
    });
    Ok((child, writer))
}

/// The most bytes of one `LRWATCH_*` value taken from the server. Why a bound: Linux refuses
/// to start a program when any one environment string is over 128 KiB (E2BIG), and a server's
/// 140 KB event id, which stays the stream's id for every event after it, kept the command
/// from running for all of them. 4 KiB is far more than names, ids and ETags take, and keeps
/// the four such values within 16 KiB together, well inside the whole environment's limit
/// (a quarter of the stack limit, 2 MiB by default, and never under 128 KiB).
pub const ENV_VALUE_MAX: usize = 4096;

/// `value` as it can go into the environment: a NUL (which no environment string can hold,
/// so that the run could not start) becomes U+FFFD, as undecodable bytes do elsewhere, and the
/// value is cut to [`ENV_VALUE_MAX`] bytes at a character boundary. The whole value is still
/// in the `--json` envelope on stdin.
fn env_value(value: &str) -> std::borrow::Cow<'_, str> {
    // Cut first so that a huge value is not copied whole, then again after the replacement
    // (one byte becomes three).
    let value = cut(value, ENV_VALUE_MAX);
    if !value.contains('\0') {
        return std::borrow::Cow::Borrowed(value);
    }
    let replaced = value.replace('\0', "\u{FFFD}");
    std::borrow::Cow::Owned(cut(&replaced, ENV_VALUE_MAX).to_string())
}

/// The longest start of `s` of at most `max` bytes that ends at a character boundary
/// (`str::floor_char_boundary` is newer than the crate's minimum Rust).
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to every process in the group `group`.
#[cfg(unix)]
fn signal_group(group: u32, signal: Signal) {
    let signal = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    if let Ok(group) = libc::pid_t::try_from(group) {
        // SAFETY: kill(2) takes plain integers; a negative pid names a process group, which
        // is one we created (a pid still in use as a group id is not reused by Linux).
        unsafe {
            libc::kill(-group, signal);
        }
    }
}

/// Whether any live process is still in the group.
#[cfg(unix)]
fn group_exists(group: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(group) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the group exists and may be signalled.
    if unsafe { libc::kill(-pgid, 0) } != 0 {
        return false;
    }
    live_member(group)
}

/// Whether a process of the group is more than a zombie: an orphan that has exited stays in
/// its group until whoever adopted it reaps it, and a container's init may never do that.
#[cfg(target_os = "linux")]
fn live_member(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold anything, so fields are counted
        // after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(group) && !matches!(state, "Z" | "X")
    })
}

#[cfg(all(unix, not(target_os = "linux")))]
fn live_member(_group: u32) -> bool {
    true
}

#[cfg(not(unix))]
fn signal_group(_group: u32, _signal: Signal) {}

#[cfg(not(unix))]
fn group_exists(_group: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_lose_their_nuls_and_are_cut_at_a_character_boundary() {
        assert_eq!(env_value("tick"), "tick");
        assert_eq!(env_value("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(env_value(&"I".repeat(140_000)).len(), ENV_VALUE_MAX);
        // 'é' is two bytes: one at the bound is left out whole, not split.
        let long = format!("{}é", "x".repeat(ENV_VALUE_MAX - 1));
        assert_eq!(env_value(&long), "x".repeat(ENV_VALUE_MAX - 1));
        // Replacing NULs lengthens the value: it is cut again, still whole characters.
        let nuls = "\0".repeat(ENV_VALUE_MAX);
        let fit = env_value(&nuls);
        assert!(fit.len() <= ENV_VALUE_MAX && fit.chars().all(|c| c == '\u{FFFD}'));
        assert_eq!(fit.len(), ENV_VALUE_MAX / 3 * 3);
    }
}
