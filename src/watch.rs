//! The follow loop: updates from the library in; events through `--select` to the printer or
//! `--exec`; notices and the status line to stderr; until `--count`, `--timeout`, Ctrl-C or a
//! fatal error.

use std::io::{self, BufWriter};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lrwatch::{Client, Event, Follow, Level, Update};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::exec::Exec;
use crate::exit::Ending;
use crate::output::Printer;
use crate::sanitize::for_terminal;
use crate::select::Selector;
use crate::status::Stderr;

/// The longest a printed event waits in the buffer while more keep coming.
const HOLD_AT_MOST: Duration = Duration::from_millis(50);

/// Where events go: stdout, or a command.
enum Sink {
    Print(Printer<BufWriter<io::StdoutLock<'static>>>),
    Exec(Exec),
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
    let client = Client::new(config.options.clone())?;
    let follow = client.follow(config.urls.iter().cloned());

    // Ctrl-C arrives as an update in the same loop as events, so shutdown is orderly: what was
    // received is flushed, then the process dies by SIGINT (see exit::code_for_ending).
    let mut signals = Signals::new([SIGINT]).context("cannot install the Ctrl-C handler")?;
    let interrupter = follow.interrupter();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                interrupter.interrupt();
            }
        })
        .context("cannot start the signal thread")?;

    let mut sink = match &config.exec {
        Some(command) => {
            let report_to = Arc::clone(stderr);
            let report = Box::new(move |line: String| report_to.message(&line));
            Sink::Exec(
                Exec::start(command.clone(), report).context("cannot start the --exec runner")?,
            )
        }
        None => Sink::Print(Printer::new(
            // Large enough that a burst of small events costs few writes.
            BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            config.mode,
            config.diff,
        )),
    };
    let mut selector = config.select.clone().map(Selector::new);
    let ending = pump(config, stderr, &follow, &mut sink, &mut selector);
    // Whatever ended the run, what was printed reaches stdout first.
    if let Sink::Print(printer) = &mut sink {
        let flushed = printer.flush().context("cannot write to stdout");
        if ending.is_ok() {
            flushed?;
        }
    }
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

/// Moves updates from the followers to the sink until the run ends.
fn pump(
    config: &Config,
    stderr: &Stderr,
    follow: &Follow,
    sink: &mut Sink,
    selector: &mut Option<Selector>,
) -> Result<Ending> {
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let mut emitted = 0u64;
    let mut flushed_at = Instant::now();
    loop {
        // Take what is waiting without blocking; only before waiting is stdout flushed. An
        // event shows the moment it arrives, yet a burst goes out in large writes (the buffer
        // also flushes itself whenever it fills).
        let update = match follow.try_recv() {
            Some(update) => Some(update),
            None => {
                flush_first(sink)?;
                flushed_at = Instant::now();
                match deadline {
                    None => follow.recv(),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
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
                        let flush = stderr.draws_status() || flushed_at.elapsed() >= HOLD_AT_MOST;
                        stderr
                            .around_event(|| {
                                printer.event(&event)?;
                                if flush {
                                    printer.flush()?;
                                    flushed_at = Instant::now();
                                }
                                Ok::<_, io::Error>(())
                            })
                            .context("cannot write to stdout")?;
                    }
                    Sink::Exec(exec) => exec.push(event),
                }
                emitted += 1;
                if config.count.is_some_and(|n| emitted >= n) {
                    if let Sink::Exec(exec) = sink {
                        exec.finish();
                    }
                    return Ok(Ending::Done);
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
            Update::Interrupted => return Ok(Ending::Interrupted),
            _ => {}
        }
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
