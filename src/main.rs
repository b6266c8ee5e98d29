//! The `lrwatch` binary: parse the command line, run the command, map the outcome to an exit code.

mod check_output;
mod cli;
mod config;
mod diff;
mod exec;
mod exit;
mod inspect_output;
mod output;
mod reference;
mod select;
mod status;
mod stdout;
mod urls;
mod watch;

use std::io::Write;

// In the library, which escapes the server's log lines with it too.
use lrwatch::sanitize;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::{Config, Env};
use crate::exit::Ending;

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(ending) => exit::code_for_ending(ending),
        Err(error) => {
            let code = exit::code_for_error(&error);
            if !exit::is_broken_pipe(&error) {
                // Server text can reach an error (a reason, a URL): escaped like any other.
                eprintln!(
                    "lrwatch: {}",
                    sanitize::for_terminal(&exit::message(&error), false)
                );
            }
            code
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<Ending> {
    let env = Env::detect();
    match cli.command {
        None => watch::run(Config::resolve(&cli.urls, &cli.follow, &env)?),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Demo { follow }) => {
            let handle = lrwatch::server::Server::bind("127.0.0.1:0")
                .and_then(|s| s.spawn())
                .context("cannot start the demo server")?;
            let url = format!("http://{}/time", handle.local_addr());
            if !follow.quiet {
                eprintln!(
                    "lrwatch demo: serving on http://{}; following {url} (Ctrl-C to stop)",
                    handle.local_addr()
                );
            }
            watch::run(Config::resolve(&[url], &follow, &env)?)
        }
        Some(Command::Inspect(args)) => inspect_output::run(&args, &env),
        Some(Command::Check(args)) => check_output::run(&args, &env),
        Some(Command::Completions { shell }) => {
            std::io::stdout().write_all(&reference::completions(shell))?;
            Ok(Ending::Done)
        }
        Some(Command::Man) => {
            std::io::stdout().write_all(&reference::man()?)?;
            Ok(Ending::Done)
        }
    }
}

fn serve(args: &cli::ServeArgs) -> Result<Ending> {
    let listen = &args.listen;
    let config = lrwatch::server::ServerConfig {
        dialect: args.dialect,
        lossy: args.lossy,
        cut_after: args.cut_after.map(std::time::Duration::from_secs_f64),
        history: usize::try_from(args.history).unwrap_or(usize::MAX),
        keepalive: std::time::Duration::from_secs_f64(args.keepalive),
        faults: args.fault.clone(),
        cors: args.cors.clone(),
        // One write per line, so lines of concurrent connections never interleave (the
        // library has escaped what clients sent).
        log: lrwatch::server::Log::to(args.verbose, |line| {
            let _ = std::io::stderr()
                .lock()
                .write_all(format!("{line}\n").as_bytes());
        }),
        ..lrwatch::server::ServerConfig::default()
    };
    let server = lrwatch::server::Server::bind_with(listen, config)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on http://{}", server.local_addr())?;
    out.flush()?;
    if !args.fault.is_empty() {
        let names: Vec<&str> = args.fault.iter().map(|f| f.as_str()).collect();
        eprintln!(
            "lrwatch serve: committing these faults on purpose: {}",
            names.join(", ")
        );
    }
    server.run().context("the server stopped")?;
    Ok(Ending::Done)
}
