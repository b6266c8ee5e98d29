//! `lrwatch check`: the findings of [`lrwatch::check`], one line per requirement, for people
//! or (`--json`) scripts. Exit 1 when a MUST failed or the trigger failed, or with `--strict`
//! when a SHOULD warned: when the report's `ok` is false.

use std::time::Duration;

use anyhow::{bail, Result};
use crossterm::style::Stylize;
use lrwatch::check::{CheckOptions, CheckReport, Outcome};

use crate::cli::CheckArgs;
use crate::config::Env;
use crate::exit::Ending;
use lrwatch::sanitize::for_terminal;

/// Response lines shown under a failure.
const EVIDENCE_LINES: usize = 16;

/// Runs `lrwatch check`.
pub fn run(args: &CheckArgs, env: &Env) -> Result<Ending> {
    let probe = crate::inspect_output::setup(&args.probe, env)?;
    let report = lrwatch::check::check(
        &probe.url,
        &CheckOptions {
            trigger: args.trigger.clone(),
            budget: Duration::from_secs_f64(args.budget),
            wait: args.wait,
            headers: args.probe.headers.clone(),
            ca_certs: probe.ca_certs,
            callback_listen: args.callback_listen.clone(),
            callback_url: args.callback_url.clone(),
        },
    )?;
    crate::inspect_output::write_report(
        args.probe.json,
        || with_hints(&report, args.strict).to_string(),
        || render(&report, probe.color),
    )?;
    let failed = report.count(Outcome::Fail);
    let warned = report.count(Outcome::Warn);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if failed > 0 {
        bail!(
            "{failed} requirement{} failed for {}",
            plural(failed),
            report.url
        );
    }
    // The user's command failed, not the server: no requirement is broken, but what needed
    // the change went unchecked, which a script must not take for a pass.
    if report.trigger_failed() {
        bail!(
            "the trigger failed, so what needed a change was not checked for {}",
            report.url
        );
    }
    if args.strict && warned > 0 {
        bail!(
            "{warned} requirement{} warned for {} (--strict)",
            plural(warned),
            report.url
        );
    }
    debug_assert!(report.ok(args.strict));
    Ok(Ending::Done)
}

/// One line per finding, the evidence under each failure, and a summary.
pub fn render(report: &CheckReport, color: bool) -> String {
    let paint = |outcome: Outcome| {
        let word = outcome.as_str();
        if !color {
            return word.to_string();
        }
        match outcome {
            Outcome::Pass => word.green().to_string(),
            Outcome::Fail => word.red().bold().to_string(),
            Outcome::Warn => word.yellow().bold().to_string(),
            Outcome::Skip => word.dim().to_string(),
        }
    };
    let dim = |s: &str| {
        if color {
            s.dim().to_string()
        } else {
            s.to_string()
        }
    };
    let mut o = format!("{}\n", for_terminal(report.url.as_str(), false));
    for f in &report.findings {
        let subject = f.mechanism.map(|m| format!("{m} · ")).unwrap_or_default();
        o.push_str(&format!(
            "{}  {subject}{}: {}{}\n",
            paint(f.outcome),
            f.requirement.title(),
            for_terminal(&f.detail, false),
            f.needs
                .map(|n| format!(": {}", needs_hint(n)))
                .unwrap_or_default()
        ));
        if !matches!(f.outcome, Outcome::Fail | Outcome::Warn) {
            continue;
        }
        // Where to read the rule, and how strongly it is asked for.
        o.push_str(&dim(&format!(
            "      {} in {}",
            f.requirement.level().as_str(),
            for_terminal(&f.requirement.source(f.mechanism), false)
        )));
        o.push('\n');
        if let Some(request) = &f.request {
            for l in request.lines() {
                o.push_str(&dim(&format!("      > {}", for_terminal(l, false))));
                o.push('\n');
            }
        }
        if let Some(response) = &f.response {
            let lines: Vec<&str> = response.lines().collect();
            for l in lines.iter().take(EVIDENCE_LINES) {
                o.push_str(&dim(&format!("      < {}", for_terminal(l, false))));
                o.push('\n');
            }
            if lines.len() > EVIDENCE_LINES {
                o.push_str(&dim(&format!(
                    "      < ({} more lines)",
                    lines.len() - EVIDENCE_LINES
                )));
                o.push('\n');
            }
        }
    }
    o.push_str(&format!(
        "{} passed, {} failed, {} warned, {} skipped in {:.2}s (budget {}s)\n",
        report.count(Outcome::Pass),
        report.count(Outcome::Fail),
        report.count(Outcome::Warn),
        report.count(Outcome::Skip),
        report.took.as_secs_f64(),
        report.budget.as_secs_f64()
    ));
    o
}

/// Which option supplies what a skipped requirement needed (the library names the need).
fn needs_hint(needs: lrwatch::check::Needs) -> &'static str {
    match needs {
        lrwatch::check::Needs::Trigger => "give --trigger CMD",
        lrwatch::check::Needs::Webhooks => {
            "give --callback-listen ADDR (and --callback-url URL when the server must reach another address) to exercise webhooks"
        }
        _ => "",
    }
}

/// The JSON report, each skipped finding that needed an option with a `hint` naming it.
fn with_hints(report: &CheckReport, strict: bool) -> serde_json::Value {
    let mut json = report.to_json(strict);
    if let Some(results) = json["results"].as_array_mut() {
        for (result, finding) in results.iter_mut().zip(&report.findings) {
            if let Some(needs) = finding.needs {
                result["hint"] = needs_hint(needs).into();
            }
        }
    }
    json
}
