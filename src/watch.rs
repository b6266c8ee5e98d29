//! The follow loop: updates from the library in, events to the printer, notices to stderr,
//! until `--count`, `--timeout`, Ctrl-C or a fatal error.

use std::io::{self, BufWriter};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use anyhow::{Context, Result};
use lrwatch::{Client, Level, Update};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::exit::Ending;
use crate::output::Printer;

/// Follows `config.urls` until an ending.
pub fn run(config: Config) -> Result<Ending> {
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

    let stdout = io::stdout();
    let mut printer = Printer::new(BufWriter::new(stdout.lock()), config.mode);
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let mut emitted = 0u64;
    loop {
        let update = match deadline {
            None => follow.recv(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match follow.recv_timeout(left) {
                    Ok(update) => Some(update),
                    Err(RecvTimeoutError::Timeout) => return Ok(Ending::TimedOut),
                    Err(RecvTimeoutError::Disconnected) => None,
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
                if event.initial && config.no_initial {
                    continue;
                }
                printer.event(&event).context("cannot write to stdout")?;
                emitted += 1;
                if config.count.is_some_and(|n| emitted >= n) {
                    return Ok(Ending::Done);
                }
            }
            Update::Notice(notice) => {
                let shown = match notice.level {
                    Level::Trace => config.verbose,
                    Level::Warn => !config.quiet,
                };
                if shown {
                    eprintln!(
                        "lrwatch: {}: {}",
                        crate::sanitize::for_terminal(&notice.uri, false),
                        crate::sanitize::for_terminal(&notice.message, false)
                    );
                }
            }
            Update::Failed(error) => return Err(error.into()),
            Update::Interrupted => return Ok(Ending::Interrupted),
            _ => {}
        }
    }
}
