//! `--exec CMD`: run `sh -c CMD` for each event, one run at a time, the body on stdin and the
//! event's facts in `LRWATCH_*` variables. The resource's content never reaches the command
//! line. Events that arrive during a run are coalesced per resource, so the next run sees the
//! latest value rather than working through a backlog.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use lrwatch::Event;

/// Receives one line for stderr: a failed run is reported, and following goes on.
pub type Report = Box<dyn Fn(String) + Send>;

/// The background runner.
pub struct Exec {
    shared: Arc<Shared>,
    /// Taken by [`Exec::finish`].
    worker: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// At most one event per resource, oldest first.
    pending: VecDeque<Event>,
    closed: bool,
}

impl Exec {
    /// Starts the runner for `command`.
    pub fn start(command: String, report: Report) -> std::io::Result<Exec> {
        let shared = Arc::new(Shared::default());
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("exec".into())
            .spawn(move || work(&command, &worker_shared, &report))?;
        Ok(Exec {
            shared,
            worker: Some(worker),
        })
    }

    /// Queues a run for `event`, replacing a run still waiting for the same resource.
    pub fn push(&self, event: Event) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pending.retain(|e| e.uri != event.uri);
        state.pending.push_back(event);
        self.shared.changed.notify_all();
    }

    /// Lets the queued runs finish, then returns.
    pub fn finish(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn work(command: &str, shared: &Shared, report: &Report) {
    loop {
        let event = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
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
            }
        };
        if let Err(problem) = run(command, &event) {
            report(format!("lrwatch: --exec: {problem} (for {})", event.uri));
        }
    }
}

/// One run: `sh -c command`, the body on stdin, the facts in the environment.
fn run(command: &str, event: &Event) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LRWATCH_EVENT", event.kind.as_str())
        .env("LRWATCH_URI", &event.uri)
        .env("LRWATCH_ETAG", event.etag.as_deref().unwrap_or(""))
        .env("LRWATCH_TRANSPORT", event.transport.as_str())
        .env("LRWATCH_ID", event.id.as_deref().unwrap_or(""))
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    // Written on its own thread: a command that does not read its stdin must not block us,
    // and one that exits early just closes the pipe.
    let stdin = child.stdin.take();
    let body = event
        .body
        .as_ref()
        .map(|b| b.bytes.clone())
        .unwrap_or_default();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&body);
        }
    });
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for the command: {e}"))?;
    let _ = writer.join();
    if status.success() {
        Ok(())
    } else {
        Err(format!("the command failed ({status})"))
    }
}
