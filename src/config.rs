//! Raw flags become one resolved `Config`, once: terminal detection, `NO_COLOR` and defaults
//! are decided here, and the rest of the binary reads only `Config`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use lrwatch::{Mechanism, Options};
use url::Url;

use crate::cli::{ColorChoice, FollowArgs};
use crate::exit::UsageError;
use crate::urls::{self, Names};

/// How events are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One JSON envelope per line.
    Json {
        /// Whether stdout is a terminal: then what a terminal must not get raw inside the
        /// strings (bidi overrides, invisible characters) is written as `\uXXXX` escapes.
        terminal: bool,
    },
    /// Each value's body on one line, for pipes.
    Lines,
    /// A header line and the pretty value, for people.
    Terminal {
        /// Whether to use color.
        color: bool,
    },
}

/// Everything the follow loop needs, decided.
#[derive(Debug, Clone)]
pub struct Config {
    pub urls: Vec<Url>,
    /// The names of `NAME=URL` arguments, by URL.
    pub names: Arc<Names>,
    /// `--prefix`: lines start with the resource's name or URL and a tab.
    pub prefix: bool,
    pub mode: Mode,
    /// `--diff`: values after the first are printed as diffs.
    pub diff: bool,
    /// `--exec`: run this instead of printing.
    pub exec: Option<String>,
    /// `--select`: a checked JSON Pointer.
    pub select: Option<String>,
    /// Whether to keep a status line on stderr (a terminal, and not `-q`).
    pub status_line: bool,
    /// Warn that certificates are not verified.
    pub insecure: bool,
    /// Whether stderr output may be colored.
    pub stderr_color: bool,
    pub count: Option<u64>,
    pub no_initial: bool,
    pub timeout: Option<Duration>,
    pub verbose: bool,
    pub quiet: bool,
    pub options: Options,
}

/// The environment the decisions depend on, read once (and replaceable in tests).
#[derive(Debug, Clone)]
pub struct Env {
    /// `LRWATCH_KEEPALIVE` (seconds): the keep-alive period, for tests and unusual networks.
    pub keepalive: Option<Duration>,
    /// `LRWATCH_FALL_BACK_FOR` (seconds): how long auto avoids a mechanism that kept failing.
    pub fall_back_for: Option<Duration>,
    pub stdout_is_terminal: bool,
    pub stderr_is_terminal: bool,
    pub no_color: bool,
    pub term_dumb: bool,
}

impl Env {
    /// Reads the real environment. `LRWATCH_TEST_TERM=1` makes stdout count as a terminal, so
    /// that tests can check terminal output without a pseudo-terminal.
    pub fn detect() -> Env {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Env {
            keepalive: seconds_var("LRWATCH_KEEPALIVE"),
            fall_back_for: seconds_var("LRWATCH_FALL_BACK_FOR"),
            stdout_is_terminal: std::io::stdout().is_terminal()
                || std::env::var_os("LRWATCH_TEST_TERM").is_some_and(|v| v == "1"),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: set("NO_COLOR"),
            term_dumb: std::env::var_os("TERM").is_some_and(|v| v == "dumb"),
        }
    }
}

/// A duration in seconds from the environment (at least 0.05 s), if set and valid.
fn seconds_var(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.05)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
}

/// The certificates of a `--cacert` PEM file, in DER.
fn read_ca_certs(path: &std::path::Path) -> Result<Vec<Vec<u8>>, UsageError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| UsageError(format!("cannot read --cacert {shown}: {e}")))?;
    lrwatch::http::pem_certificates(&pem)
        .map_err(|why| UsageError(format!("--cacert {shown}: {why}")))
}

impl Config {
    /// Resolves the flags; a bad URL is a usage error. The URLs are those on the command line
    /// (`urls`), then those of `--urls FILE`.
    pub fn resolve(urls: &[String], args: &FollowArgs, env: &Env) -> Result<Config, UsageError> {
        let mut targets = urls
            .iter()
            .map(|u| urls::parse_target(u).map_err(UsageError))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(file) = &args.urls_file {
            let listed = urls::read_file(file)?;
            if listed.is_empty() && targets.is_empty() {
                return Err(UsageError(format!(
                    "no URL to follow: --urls {file} lists none"
                )));
            }
            targets.extend(listed);
        }
        let names = Names::of(&targets)?;
        let urls = targets.into_iter().map(|t| t.url).collect();
        if let Some(pointer) = &args.select {
            crate::select::check_pointer(pointer)?;
        }
        let color_on = |terminal: bool| match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !env.no_color && !env.term_dumb,
        };
        let color = color_on(env.stdout_is_terminal);
        let mode = if args.json {
            Mode::Json {
                terminal: env.stdout_is_terminal,
            }
        } else if env.stdout_is_terminal {
            Mode::Terminal { color }
        } else {
            Mode::Lines
        };
        let ca_certs = args.cacert.as_deref().map(read_ca_certs).transpose()?;
        let callback_url = args
            .callback_url
            .as_deref()
            .map(|u| lrwatch::parse_url(u).map_err(|e| UsageError(format!("--callback-url: {e}"))))
            .transpose()?;
        let transport = match args.transport.as_str() {
            "auto" => None,
            name => Some(
                name.parse::<Mechanism>()
                    .map_err(|e| UsageError(e.to_string()))?,
            ),
        };
        Ok(Config {
            urls,
            names: Arc::new(names),
            prefix: args.prefix,
            mode,
            diff: args.diff,
            exec: args.exec.clone(),
            select: args.select.clone(),
            insecure: args.insecure,
            status_line: env.stderr_is_terminal && !args.quiet && !env.term_dumb,
            stderr_color: color_on(env.stderr_is_terminal),
            count: args.count,
            no_initial: args.no_initial,
            timeout: args.timeout.map(Duration::from_secs_f64),
            verbose: args.verbose,
            quiet: args.quiet,
            options: Options {
                transport,
                wait: args.wait,
                interval: args.interval.map(Duration::from_secs_f64),
                headers: args.headers.clone(),
                ca_certs,
                changes: args.changes,
                value: args.value,
                verify: (args.verify > 0.0).then(|| Duration::from_secs_f64(args.verify)),
                insecure: args.insecure,
                max_body: args.max_body,
                max_header: usize::try_from(args.max_header).unwrap_or(usize::MAX),
                callback_listen: args.callback_listen.clone(),
                callback_url,
                keepalive: env.keepalive.unwrap_or(lrwatch::follow::DEFAULT_KEEPALIVE),
                fall_back_for: env
                    .fall_back_for
                    .unwrap_or(lrwatch::follow::DEFAULT_FALL_BACK_FOR),
                live: lrwatch::live::LiveOptions {
                    reconnect: args.reconnect,
                    subprotocol: args.subprotocol.clone(),
                    send: args.send.clone(),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn resolve(args: &[&str], env: Env) -> Config {
        let cli = Cli::try_parse_from(args).unwrap();
        Config::resolve(&cli.urls, &cli.follow, &env).unwrap()
    }

    fn env(terminal: bool, no_color: bool) -> Env {
        Env {
            keepalive: None,
            fall_back_for: None,
            stdout_is_terminal: terminal,
            stderr_is_terminal: false,
            no_color,
            term_dumb: false,
        }
    }

    #[test]
    fn mode_follows_terminal_and_flags() {
        assert_eq!(
            resolve(&["l", "http://h/"], env(true, false)).mode,
            Mode::Terminal { color: true }
        );
        assert_eq!(
            resolve(&["l", "http://h/"], env(true, true)).mode,
            Mode::Terminal { color: false }
        );
        assert_eq!(
            resolve(&["l", "http://h/"], env(false, false)).mode,
            Mode::Lines
        );
        assert_eq!(
            resolve(&["l", "-j", "http://h/"], env(true, false)).mode,
            Mode::Json { terminal: true }
        );
        assert_eq!(
            resolve(&["l", "-j", "http://h/"], env(false, false)).mode,
            Mode::Json { terminal: false }
        );
        assert_eq!(
            resolve(&["l", "--color", "always", "http://h/"], env(true, true)).mode,
            Mode::Terminal { color: true }
        );
        let dumb = Env {
            term_dumb: true,
            ..env(true, false)
        };
        assert_eq!(
            resolve(&["l", "http://h/"], dumb).mode,
            Mode::Terminal { color: false }
        );
    }

    #[test]
    fn bad_url_is_usage_error() {
        let cli = Cli::try_parse_from(["l", "ftp://h/"]).unwrap();
        assert!(Config::resolve(&cli.urls, &cli.follow, &env(false, false)).is_err());
    }
}
