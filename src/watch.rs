//! The follow loop: updates from the library in; events through `--select` to the printer or
//! `--exec`; notices and the status line to stderr; until `--count`, `--timeout`, Ctrl-C (or
//! SIGTERM, SIGHUP) or a fatal error.

use std::io::{self, BufWriter};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lrwatch::{Client, Event, Follow, Interrupter, Level, Update};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::exec::{self, Exec};
use crate::exit::Ending;
use crate::output::Printer;
use crate::select::Selector;
use crate::status::Stderr;
use crate::stdout::{GiveUp, Interruptible, Nudger};
use lrwatch::sanitize::for_terminal;

/// The longest a printed event waits in the buffer while more keep coming.
const HOLD_AT_MOST: Duration = Duration::from_millis(50);
/// How many printed events are handed back to the followers at once (also whenever the queue
/// runs dry): one lock for many.
const RECYCLE_EVERY: usize = 64;

/// How long the last flush of stdout may wait for a reader once the run has ended, however
/// it ended: what was printed is not lost to a reader that is merely slow, and a reader that
/// never reads does not hold the exit.
const LAST_FLUSH: Duration = Duration::from_secs(1);

/// Where events go: stdout, or a command.
enum Sink {
    Print(Printer<BufWriter<Interruptible<std::fs::File>>>),
    Exec(Exec),
}

/// Standard output as a file of its own (a duplicate of the descriptor), so that the printer's
/// buffer reaches it whole: through `io::stdout`, which is line-buffered, each full buffer
/// went out in two writes (up to its last line end, then the rest), twice the system calls
/// on a fast stream. Nothing else writes to stdout while following.
fn stdout_file() -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot write to stdout")?;
    Ok(std::fs::File::from(fd))
}

/// Follows `config.urls` until an ending.
pub fn run(config: Config) -> Result<Ending> {
    let stderr = Arc::new(Stderr::new(config.status_line, config.stderr_color));
    let result = follow(&config, &stderr);
    stderr.finish();
    result
}

fn follow(config: &Config, stderr: &Arc<Stderr>) -> Result<Ending> {
    if config.insecure {
        stderr.message("lrwatch: warning: --insecure: TLS certificates are not verified; anyone on the path can read and change what is followed.");
    }
    if config.verbose {
        trace_proxies(config, stderr);
    }
    let client = Client::new(config.options.clone())?;
    let follow = client.follow(config.urls.iter().cloned());
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let caught = Arc::new(AtomicI32::new(0));
    // A write to stdout that waits for its reader gives up at --timeout or a signal.
    let give_up = GiveUp::new(Arc::clone(&caught), deadline);

    let mut sink = match &config.exec {
        Some(command) => {
            let report_to = Arc::clone(stderr);
            let report = Box::new(move |line: String| report_to.message(&line));
            let runs = exec::Runs {
                envelope: matches!(config.mode, crate::config::Mode::Json { .. }),
                names: Arc::clone(&config.names),
            };
            Sink::Exec(
                Exec::start(command.clone(), runs, report)
                    .context("cannot start the --exec runner")?,
            )
        }
        None => Sink::Print(
            Printer::new(
                // Large enough that a burst of small events costs few writes.
                BufWriter::with_capacity(
                    64 * 1024,
                    Interruptible::new(stdout_file()?, give_up.clone()),
                ),
                config.mode,
                config.diff,
            )
            .labelled(Arc::clone(&config.names), config.prefix),
        ),
    };
    let (waker, nudger) = match &sink {
        Sink::Exec(exec) => (Some(exec.waker()), None),
        Sink::Print(_) => (
            None,
            Some(Nudger::start(give_up.clone()).context("cannot start the stdout nudger")?),
        ),
    };
    let nudge = nudger.is_some().then(|| give_up.clone());
    catch_signals(follow.interrupter(), waker, nudge, Arc::clone(&caught))?;
    let mut selector = config.select.clone().map(Selector::new);
    let ending = pump(
        config,
        stderr,
        &follow,
        &mut sink,
        &mut selector,
        deadline,
        &caught,
    )
    .or_else(|e| gave_up(e, &caught));
    // A command still running when the run ends early (--timeout, an error, a signal) is
    // stopped, with whatever it started: nothing is left behind.
    if let Sink::Exec(exec) = &mut sink {
        exec.stop();
    }
    // Whatever ended the run, what was printed reaches stdout first. A run that is done waits
    // for its reader as long as the run may last (until --timeout or a signal); one ended by
    // either gives a reader that does not read a moment, then goes.
    let ending = match &mut sink {
        Sink::Print(printer) => {
            if !matches!(ending, Ok(Ending::Done)) {
                give_up.only_at(Instant::now() + LAST_FLUSH);
            }
            let flushed = printer.flush().context("cannot write to stdout");
            match (ending, flushed) {
                (Ok(Ending::Done), Err(e)) => gave_up(e, &caught),
                (ending, _) => ending,
            }
        }
        Sink::Exec(_) => ending,
    };
    // The printer goes (its buffer's own flush, if the last one gave up, gives up too), then
    // the nudges stop: what follows (webhook subscriptions deleted over HTTP) is not to be
    // interrupted.
    drop(sink);
    drop(nudger);
    // Webhook subscriptions are removed now (dropping `follow` would too, silently): a
    // subscription still being made is waited for a moment, which the user is told about.
    follow.close_noting(&|notice| {
        let shown = match notice.level {
            Level::Trace => config.verbose,
            Level::Warn => !config.quiet,
        };
        if shown {
            stderr.message(&format!(
                "lrwatch: {}: {}",
                for_terminal(&notice.uri, false),
                for_terminal(&notice.message, false)
            ));
        }
    });
    ending
}

/// Says under `-v`, once per origin followed, whether its requests and sockets go through a
/// proxy and which (nothing when no proxy is configured).
fn trace_proxies(config: &Config, stderr: &Stderr) {
    let mut seen = std::collections::HashSet::new();
    for url in &config.urls {
        let origin = url.origin().ascii_serialization();
        if !seen.insert(origin.clone()) {
            continue;
        }
        let route = lrwatch::proxy::Route::to(url);
        if matches!(route, lrwatch::proxy::Route::Direct) {
            return;
        }
        stderr.message(&format!(
            "lrwatch: {}: requests and WebSockets go {}",
            for_terminal(&origin, false),
            for_terminal(&route.to_string(), false)
        ));
    }
}

/// Ctrl-C, SIGTERM and SIGHUP arrive as an update in the same loop as events (and wake an
/// `--exec` drain), so shutdown is orderly: subscriptions are deleted, what was received is
/// flushed, the command running is stopped, then the process dies by the same signal (see
/// exit::code_for_ending). The signal's number is put in `caught` (which also makes a wait for
/// stdout give up, see `stdout`).
fn catch_signals(
    interrupter: Interrupter,
    waker: Option<exec::Waker>,
    nudger: Option<GiveUp>,
    caught: Arc<AtomicI32>,
) -> Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install the signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                caught.store(signal, Ordering::SeqCst);
                interrupter.interrupt();
                if let Some(waker) = waker {
                    waker.wake();
                }
                if let Some(nudger) = nudger {
                    nudger.wake();
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// The signal that interrupted the run (SIGINT if somehow none was recorded).
fn interrupted(caught: &AtomicI32) -> Ending {
    match caught.load(Ordering::SeqCst) {
        0 => Ending::Interrupted(SIGINT),
        signal => Ending::Interrupted(signal),
    }
}

/// A write to stdout that gave up because nobody read it (see `stdout`) ends the run as what
/// made it give up: a signal, or else `--timeout`. Any other error stays one.
fn gave_up(e: anyhow::Error, caught: &AtomicI32) -> Result<Ending> {
    let stalled = e.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .and_then(|e| e.get_ref())
            .is_some_and(|e| e.is::<crate::stdout::Stalled>())
    });
    match (stalled, caught.load(Ordering::SeqCst)) {
        (false, _) => Err(e),
        (true, 0) => Ok(Ending::TimedOut),
        (true, _) => Ok(interrupted(caught)),
    }
}

/// Moves updates from the followers to the sink until the run ends.
fn pump(
    config: &Config,
    stderr: &Stderr,
    follow: &Follow,
    sink: &mut Sink,
    selector: &mut Option<Selector>,
    deadline: Option<Instant>,
    caught: &AtomicI32,
) -> Result<Ending> {
    let mut emitted = 0u64;
    // When stdout is flushed next even if the queue never runs dry (a deadline compared with
    // the clock, cheaper for each event than an elapsed time).
    let mut flush_by = Instant::now() + HOLD_AT_MOST;
    // Live URLs that are done; each follower says so once.
    let mut done = 0usize;
    // Events printed, to hand back to the followers together.
    let mut printed: Vec<Event> = Vec::with_capacity(RECYCLE_EVERY);
    loop {
        // Take what is waiting without blocking; only before waiting is stdout flushed. An
        // event shows the moment it arrives, yet a burst goes out in large writes (the buffer
        // also flushes itself whenever it fills).
        let update = match follow.try_recv() {
            // A stream that never lets the queue run dry still ends at --timeout.
            Some(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(Ending::TimedOut);
            }
            Some(update) => Some(update),
            None => {
                flush_first(sink)?;
                follow.recycle(&mut printed);
                flush_by = Instant::now() + HOLD_AT_MOST;
                match deadline {
                    None => follow.recv(),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        // Past the deadline, a wait of nothing would still take an update
                        // that is there: under a flood, one always is.
                        if left.is_zero() {
                            return Ok(Ending::TimedOut);
                        }
                        match follow.recv_timeout(left) {
                            Ok(update) => Some(update),
                            Err(RecvTimeoutError::Timeout) => return Ok(Ending::TimedOut),
                            Err(RecvTimeoutError::Disconnected) => None,
                        }
                    }
                }
            }
        };
        // The follow keeps a sender for interruptions, so the channel never disconnects
        // while `follow` lives; treat it as a finished run all the same.
        let Some(update) = update else {
            return Ok(Ending::Done);
        };
        match update {
            Update::Event(event) => {
                let Some(event) = narrow(selector, event)? else {
                    continue;
                };
                if event.initial && config.no_initial {
                    continue;
                }
                match sink {
                    Sink::Print(printer) => {
                        // With a status line, each event is flushed so the line is redrawn
                        // below it; under a backlog that never drains (events slower to
                        // handle than they come), at least every `HOLD_AT_MOST`.
                        let flush = stderr.draws_status() || Instant::now() >= flush_by;
                        stderr
                            .around_event(|| {
                                printer.event(&event)?;
                                if flush {
                                    printer.flush()?;
                                    flush_by = Instant::now() + HOLD_AT_MOST;
                                }
                                Ok::<_, io::Error>(())
                            })
                            .context("cannot write to stdout")?;
                        // Printed: back to the followers to free (see `Follow::recycle`).
                        printed.push(event);
                        if printed.len() >= RECYCLE_EVERY {
                            follow.recycle(&mut printed);
                        }
                    }
                    Sink::Exec(exec) => match exec.push(event, deadline) {
                        exec::Drained::Done => {}
                        exec::Drained::Deadline => return Ok(Ending::TimedOut),
                        exec::Drained::Woken => return Ok(interrupted(caught)),
                    },
                }
                emitted += 1;
                if config.count.is_some_and(|n| emitted >= n) {
                    // The last run finishes, within --timeout and unless a signal comes.
                    return Ok(finish(sink, deadline, caught));
                }
            }
            Update::Notice(notice) => {
                let shown = match notice.level {
                    Level::Trace => config.verbose,
                    Level::Warn => !config.quiet,
                };
                if shown {
                    flush_first(sink)?;
                    stderr.message(&format!(
                        "lrwatch: {}: {}",
                        for_terminal(&notice.uri, false),
                        for_terminal(&notice.message, false)
                    ));
                }
            }
            Update::Status(status) => stderr.status(status),
            Update::Failed(error) => return Err(error.into()),
            Update::Interrupted => return Ok(interrupted(caught)),
            // A live URL that is done (an event stream's 204, a JSON-lines response that
            // ended): once every URL is, the run is over, what was received handled first.
            Update::Done { .. } => {
                done += 1;
                if done >= config.urls.len() {
                    return Ok(finish(sink, deadline, caught));
                }
            }
            _ => {}
        }
    }
}

/// How the run ends once its last event is in: with `--exec`, after the runs still queued have
/// finished, within `--timeout` and unless a signal comes.
fn finish(sink: &mut Sink, deadline: Option<Instant>, caught: &AtomicI32) -> Ending {
    match sink {
        Sink::Exec(exec) => match exec.drain(deadline) {
            exec::Drained::Done => Ending::Done,
            exec::Drained::Deadline => Ending::TimedOut,
            exec::Drained::Woken => interrupted(caught),
        },
        _ => Ending::Done,
    }
}

/// Flushes printed events: before waiting, and before a message so stdout and stderr keep
/// their order on a terminal.
fn flush_first(sink: &mut Sink) -> Result<()> {
    if let Sink::Print(printer) = sink {
        printer.flush().context("cannot write to stdout")?;
    }
    Ok(())
}

fn narrow(selector: &mut Option<Selector>, event: Event) -> Result<Option<Event>> {
    match selector {
        Some(selector) => selector.apply(event),
        None => Ok(Some(event)),
    }
}
