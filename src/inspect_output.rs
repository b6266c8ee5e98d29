//! `lrwatch inspect`: the report of [`lrwatch::inspect`], for people or (`--json`) scripts.
//! Also the setup `inspect` and `check` share: the URL, `--cacert`, color.

use std::io::Write;

use anyhow::Result;
use crossterm::style::Stylize;
use lrwatch::inspect::{InspectOptions, RelMeaning, Report};
use url::Url;

use crate::cli::{ColorChoice, InspectArgs, ProbeArgs};
use crate::config::Env;
use crate::exit::{Ending, UsageError};
use lrwatch::sanitize::for_terminal;

/// What `inspect` and `check` need from their shared flags, checked.
pub struct Probe {
    pub url: Url,
    pub ca_certs: Option<Vec<Vec<u8>>>,
    pub color: bool,
}

/// Checks the URL, reads `--cacert`, decides color (as following does).
pub fn setup(args: &ProbeArgs, env: &Env) -> Result<Probe, UsageError> {
    let url = lrwatch::parse_url(&args.url).map_err(|e| UsageError(e.to_string()))?;
    let ca_certs = match &args.cacert {
        None => None,
        Some(path) => {
            let shown = path.display();
            let pem = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read --cacert {shown}: {e}")))?;
            Some(
                lrwatch::http::pem_certificates(&pem)
                    .map_err(|e| UsageError(format!("--cacert {shown}: {e}")))?,
            )
        }
    };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => env.stdout_is_terminal && !env.no_color && !env.term_dumb,
    };
    Ok(Probe {
        url,
        ca_certs,
        color,
    })
}

/// Runs `lrwatch inspect`.
pub fn run(args: &InspectArgs, env: &Env) -> Result<Ending> {
    // A ws:// or wss:// URL is a WebSocket by its scheme: nothing to ask.
    if let Ok(url) = lrwatch::parse_follow_url(&args.probe.url) {
        if let Some(kind) = lrwatch::live::by_scheme(&url) {
            let json = serde_json::json!({ "url": url.as_str(), "kind": kind.name() });
            let text = format!(
                "{}\nKind           {}: followed directly over websocket, each message one event (not connected to)\n",
                safe(url.as_str()),
                kind.describe()
            );
            write_report(args.probe.json, || json.to_string(), || text)?;
            return Ok(Ending::Done);
        }
    }
    let probe = setup(&args.probe, env)?;
    let report = lrwatch::inspect::inspect(
        &probe.url,
        &InspectOptions {
            headers: args.probe.headers.clone(),
            ca_certs: probe.ca_certs,
            max_header: Some(usize::try_from(args.max_header).unwrap_or(usize::MAX)),
        },
    )?;
    write_report(
        args.probe.json,
        || report.to_json().to_string(),
        || render(&report, probe.color),
    )?;
    Ok(Ending::Done)
}

/// Writes a report to stdout: its JSON (one line) or its text, for `inspect` and `check`.
pub fn write_report(
    json: bool,
    as_json: impl FnOnce() -> String,
    as_text: impl FnOnce() -> String,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", as_json())?;
    } else {
        out.write_all(as_text().as_bytes())?;
    }
    out.flush()
}

/// Text from the server, safe for a terminal.
/// Which option supplies what `auto` found missing, after the library's words for it.
fn unusable_hint(unusable: lrwatch::auto::Unusable) -> Option<&'static str> {
    use lrwatch::auto::Unusable as U;
    match unusable {
        U::NoWebhooks => Some(" (--callback-url or --callback-listen)"),
        U::ValueFollowed => Some(" (see --changes)"),
        _ => None,
    }
}

fn safe(text: &str) -> String {
    for_terminal(text, false).into_owned()
}

/// The readable report.
pub fn render(report: &Report, color: bool) -> String {
    let bold = |s: &str| {
        if color {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    };
    let dim = |s: &str| {
        if color {
            s.dim().to_string()
        } else {
            s.to_string()
        }
    };
    let good = |s: &str| {
        if color {
            s.green().to_string()
        } else {
            s.to_string()
        }
    };
    let warn = |s: &str| {
        if color {
            s.yellow().to_string()
        } else {
            s.to_string()
        }
    };
    let caps = &report.caps;
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    let field = |name: &str, value: String| format!("{} {value}", bold(&format!("{name:<14}")));
    line(bold(&safe(report.url.as_str())));
    let mut request = format!("{} -> {}", report.method, report.status);
    if report.final_url != report.url {
        request.push_str(&format!(" (from {})", safe(report.final_url.as_str())));
    }
    if let Some(why) = &report.fallback {
        request.push_str(&format!(" ({})", safe(why)));
    }
    line(field("Request", request));
    line(field(
        "Kind",
        match report.kind.transport() {
            Some(transport) => good(&format!(
                "{}: followed directly over {transport}, each message one event",
                report.kind.describe()
            )),
            None => report.kind.describe().to_string(),
        },
    ));
    line(field(
        "ETag",
        caps.etag.as_deref().map_or_else(|| dim("none"), safe),
    ));
    line(field(
        "Last-Modified",
        caps.last_modified
            .as_deref()
            .map_or_else(|| dim("none"), safe),
    ));
    line(field(
        "Poll interval",
        caps.poll_interval.map_or_else(
            || dim("none advertised"),
            |d| format!("{}s (X-Poll-Interval)", d.as_secs_f64()),
        ),
    ));
    let properties: Vec<String> = caps
        .properties
        .iter()
        .map(|(name, params)| {
            let mut p = safe(name);
            for (k, v) in params {
                p.push_str(&format!("; {}={}", safe(k), safe(v)));
            }
            p
        })
        .collect();
    line(field(
        "Properties",
        if properties.is_empty() {
            dim("none")
        } else {
            properties.join(", ")
        },
    ));

    line(String::new());
    line(bold(&format!("Links ({})", report.links.len())));
    if report.links.is_empty() {
        line(format!("  {}", dim("none")));
    }
    for link in &report.links {
        let rels: Vec<String> = if link.rels.is_empty() {
            vec![warn("(no rel)")]
        } else {
            link.rels
                .iter()
                .map(|r| match &r.meaning {
                    RelMeaning::Mechanism(m) if m.as_str() == r.rel => safe(&r.rel),
                    RelMeaning::Mechanism(m) => format!("{} (= {m})", safe(&r.rel)),
                    RelMeaning::Known(why) => {
                        format!("{} {}", safe(&r.rel), dim(&format!("({why})")))
                    }
                    RelMeaning::Unknown => {
                        format!("{} {}", safe(&r.rel), warn("(unknown, ignored)"))
                    }
                })
                .collect()
        };
        line(format!("  {}", rels.join(", ")));
        let params: Vec<String> = link
            .params
            .iter()
            .map(|(k, v)| format!("{}={}", safe(k), safe(v)))
            .collect();
        let params = if params.is_empty() {
            String::new()
        } else {
            format!("  {}", dim(&params.join("; ")))
        };
        line(format!("      {}{params}", safe(link.target.as_str())));
    }
    for error in &caps.links.errors {
        line(format!(
            "  {} {}",
            warn("malformed:"),
            safe(&error.to_string())
        ));
    }

    line(String::new());
    let forms = report.recognised_forms();
    let names: Vec<String> = forms
        .iter()
        .map(|f| format!("{} ({})", f.letter(), f.description()))
        .collect();
    line(bold(&format!(
        "Forms: {}",
        if names.is_empty() {
            "none recognised (no LiveResource headers)".to_string()
        } else {
            names.join(", ")
        }
    )));
    for e in &report.forms {
        let letters: Vec<&str> = e.forms.iter().map(|f| f.letter()).collect();
        line(format!("  {:<6} {}", letters.join(" "), safe(&e.why)));
    }

    line(String::new());
    line(bold("Mechanisms"));
    for m in &report.mechanisms {
        let name = format!("{:<20}", m.mechanism.as_str());
        match &m.target {
            None => line(dim(&format!("  -   {name}{}", m.reason))),
            Some(target) => {
                let (mark, name) = if m.usable {
                    (good("yes"), good(&name))
                } else {
                    (warn("no "), warn(&name))
                };
                let mut via = safe(target.as_str());
                if m.rel.as_deref().is_some_and(|r| r != m.mechanism.as_str()) {
                    via.push_str(&format!(" (via {})", safe(m.rel.as_deref().unwrap_or(""))));
                }
                if m.reliable {
                    via.push_str(" (mode=reliable)");
                }
                let hint = m.unusable.and_then(unusable_hint).unwrap_or_default();
                line(format!("  {mark} {name}{}{hint}", safe(&m.reason)));
                line(format!("      {}", dim(&via)));
            }
        }
    }

    line(String::new());
    line(format!(
        "{} {}  {}",
        bold("auto picks"),
        good(report.auto.mechanism.as_str()),
        safe(report.auto.target.as_str())
    ));
    for why in &report.auto.reasons {
        line(format!("  {}", safe(why)));
    }
    if report.auto.with_several != report.auto.mechanism {
        line(format!(
            "  with several resources of this server followed together: {}",
            report.auto.with_several
        ));
    }
    o
}
