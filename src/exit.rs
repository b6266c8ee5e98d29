//! Exit codes, in one table, and how an error becomes one.

use std::fmt;

/// Exit 0: `--count` reached (or a subcommand finished).
pub const SUCCESS: i32 = 0;
/// Exit 1: a runtime error (unreachable server, transport not offered, ...).
pub const FAILURE: i32 = 1;
/// Exit 2: a usage error (bad option, bad URL).
pub const USAGE: i32 = 2;
/// Exit 124: `--timeout` ran out (the number `timeout(1)` uses).
pub const TIMEOUT: i32 = 124;

/// A mistake in how lrwatch was invoked: exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Done: exit 0.
    Done,
    /// `--timeout` ran out: exit 124.
    TimedOut,
    /// Ctrl-C, SIGTERM or SIGHUP (the number): after a clean shutdown, die by that same
    /// signal so the shell, loops and service managers see it.
    Interrupted(i32),
}

/// The exit code for a failure: usage errors are 2, broken pipes 0 (the reader has all it
/// wanted, as with `lrwatch URL | head -1`), everything else 1.
pub fn code_for_error(error: &anyhow::Error) -> i32 {
    if is_broken_pipe(error) {
        SUCCESS
    } else if error.chain().any(|e| {
        e.is::<UsageError>()
            || matches!(
                e.downcast_ref::<lrwatch::Error>(),
                Some(lrwatch::Error::InvalidUrl { .. } | lrwatch::Error::Setup(_))
            )
    }) {
        USAGE
    } else {
        FAILURE
    }
}

/// What to try after an error of the library, in one sentence, when there is something: the
/// library says what happened, the binary which of its flags or checks may help. A server
/// that answered (an HTTP error, a redirect loop, a redirect to another scheme) is running,
/// so only an unreachable one is told to check that it is.
pub fn hint(error: &lrwatch::Error) -> Option<&'static str> {
    use lrwatch::Error as E;
    match error {
        E::Unreachable { proxy, .. } => Some(match error.kind() {
            lrwatch::ErrorKind::HostNotFound => "Check the host name.",
            lrwatch::ErrorKind::Tls => {
                "Check that the port speaks TLS; for a certificate of a private CA, give it with --cacert."
            }
            // The proxy answers for the server: it may be what failed.
            _ if proxy.is_some() => {
                "Check the proxy and its credentials, and that the server is running."
            }
            _ => "Check that the server is running and the address is right.",
        }),
        E::TransportNotOffered { .. } => Some("Use --transport auto or one of those."),
        E::TransportOnLiveUrl { .. } => Some("Leave out --transport (or give auto) for it."),
        // A ws:// URL given directly is followed as a WebSocket and nothing else (another
        // --transport is a usage error): the handshake failed, so the server is what to check.
        E::Refused { url, .. } if url.starts_with("ws://") || url.starts_with("wss://") => {
            Some("Check that a WebSocket server answers at that URL.")
        }
        E::Refused { .. } => Some("Try --transport auto."),
        E::BodyTooLarge { .. } => Some("Raise it with --max-body if that is expected."),
        E::HeadTooLarge { .. } => Some("Raise it with --max-header if that is expected."),
        E::TooLarge { .. } => Some("Raise the limit with --max-body if that is expected."),
        _ => None,
    }
}

/// The one line an error is printed as (after `lrwatch: `): the error and its causes, then
/// the hint for the first library error among them. A library error's words already say its
/// cause (its `source()` is for programs), so the chain is told down to it and no further.
pub fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut hint = None;
    for (i, e) in error.chain().enumerate() {
        if i > 0 {
            line.push_str(": ");
        }
        line.push_str(&e.to_string());
        if let Some(library) = e.downcast_ref::<lrwatch::Error>() {
            hint = self::hint(library);
            break;
        }
    }
    match hint {
        Some(hint) => format!("{line}. {hint}"),
        None => line,
    }
}

/// Whether the error is a write to a closed pipe, anywhere in its chain.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code for an ending; for an interruption, re-raises the signal with its default
/// action first (which ends the process), falling back to 128 + its number, as a shell
/// reports it, if that somehow returns.
pub fn code_for_ending(ending: Ending) -> i32 {
    match ending {
        Ending::Done => SUCCESS,
        Ending::TimedOut => TIMEOUT,
        Ending::Interrupted(signal) => {
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            128 + signal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(code_for_ending(Ending::Done), 0);
        assert_eq!(code_for_ending(Ending::TimedOut), 124);
        assert_eq!(
            code_for_error(&anyhow::Error::new(UsageError("x".into()))),
            2
        );
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(
            code_for_error(&anyhow::Error::new(pipe).context("writing")),
            0
        );
        let head = anyhow::Error::new(lrwatch::Error::HeadTooLarge {
            url: "http://h/".into(),
            limit: 512,
        });
        assert_eq!(code_for_error(&head), 1);
        assert_eq!(
            message(&head),
            "the response head (status line and headers) from http://h/ is larger than the \
             512-byte limit. Raise it with --max-header if that is expected."
        );
        let redirect = anyhow::Error::new(lrwatch::Error::Redirect {
            url: "http://h/".into(),
            reason: "more than 10 redirects".into(),
        });
        assert_eq!(
            message(&redirect),
            "cannot follow the redirects of http://h/: more than 10 redirects"
        );
        let refused = |url: &str| {
            message(&anyhow::Error::new(lrwatch::Error::Refused {
                url: url.into(),
                transport: "websocket".into(),
                reason: "the WebSocket handshake was refused (HTTP 404)".into(),
            }))
        };
        assert!(refused("http://h/r").ends_with(". Try --transport auto."));
        for url in ["ws://h/s", "wss://h/s"] {
            assert!(
                refused(url).ends_with(". Check that a WebSocket server answers at that URL."),
                "{url}"
            );
        }
        let bad = lrwatch::Error::InvalidUrl {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(code_for_error(&anyhow::Error::new(bad)), 2);
    }
}
