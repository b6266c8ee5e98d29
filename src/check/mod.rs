//! `lrwatch check`: probes a server's LiveResource support requirement by requirement.
//!
//! Every [`Requirement`] has a source (a section of the 2014 specification, the form B page,
//! the 2016 draft, or an RFC) and a [`Level`] there: breaking a MUST is a FAIL, a SHOULD a
//! WARN. Where the texts are silent, every sensible reading passes.
//!
//! One discovery GET, then phases, each a set of probes on threads of their own:
//!
//! 1. Each probe first checks what needs no change (validators, a long-poll held for a short
//!    wait, stream content types, socket handshakes and acks), sets up a listener for a change
//!    (a long-poll in flight, an open stream, a subscribed socket) and *arms*.
//! 2. When every probe of the phase is armed, the `--trigger` command runs once (`sh -c`), and
//!    each probe waits, bounded, for the change to arrive over its transport.
//!
//! The phases: long-polls (with [`basics`] and [`changes`]); pushes ([`streams`], [`sockets`]),
//! apart because some servers lose a push subscriber when another client's long-poll ends;
//! that loss itself ([`survival`]); webhooks ([`callbacks`], which run the trigger once more
//! after unsubscribing). Without a trigger, change-dependent requirements are skipped. The
//! budget bounds the whole run whatever the server does: every wait, every request to the end
//! of its body (see [`HttpClient::until`]) and every socket read end by it, and a probe the
//! server still keeps busy is left behind, reported as out of budget. Results are data
//! ([`CheckReport`]); the binary renders them.
//!
//! Groups of requirements: [`basics`] (validators, links, content type), [`long_poll`]
//! (value-wait, multiplex-wait, changes-wait), [`streams`] (every SSE mechanism), [`sockets`]
//! (multiplex-ws and multiplex-socket), [`changes`] (changes links advance), [`survival`]
//! (a subscription survives other clients), [`callbacks`] (webhooks).

mod basics;
mod callbacks;
mod changes;
mod long_poll;
mod options;
mod report;
mod sockets;
mod streams;
mod survival;

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

pub use options::{CheckOptions, DEFAULT_BUDGET, DEFAULT_WAIT};
use report::NO_TRIGGER;
pub use report::{CheckReport, Finding, Level, Needs, Outcome, Requirement};

use crate::discovery::Capabilities;
use crate::error::Result;
use crate::http::{FetchError, HttpClient, Response, DEFAULT_MAX_BODY};
use crate::mechanism::Mechanism;

/// How much later than its wait a long-poll may end: generous, for slow servers and loaded
/// machines (a late end only warns, too).
const SLACK: Duration = Duration::from_secs(3);
/// How long a change may take to arrive after the trigger ran.
const CHANGE_WAIT: Duration = Duration::from_secs(10);
/// How long the trigger command may run.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(15);
/// A pause between every listener being armed and the trigger, so requests just sent reach
/// the server first.
const SETTLE: Duration = Duration::from_millis(300);
/// How long a plain request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a body an excerpt shows.
const EXCERPT_BODY: usize = 400;
/// How many `Link` headers an excerpt shows.
const EXCERPT_LINKS: usize = 3;
/// How much of a header value an excerpt shows.
const EXCERPT_HEADER: usize = 240;

/// A request and (an excerpt of) its response, for a failure's evidence.
#[derive(Debug, Clone)]
struct Exchange {
    request: String,
    response: Option<String>,
}

impl Exchange {
    fn new(method: &str, url: &Url, headers: &[(&str, String)]) -> Exchange {
        let mut request = format!("{method} {url}");
        for (name, value) in headers {
            let _ = write!(request, "\n{name}: {value}");
        }
        Exchange {
            request,
            response: None,
        }
    }

    fn with_response(mut self, response: &Response) -> Exchange {
        self.response = Some(excerpt(response.status, &response.headers, &response.body));
        self
    }

    fn with_text(mut self, text: impl Into<String>) -> Exchange {
        self.response = Some(text.into());
        self
    }
}

/// The status line, the headers (long values cut) and the start of the body.
fn excerpt(status: u16, headers: &ureq::http::HeaderMap, body: &[u8]) -> String {
    let mut out = format!("HTTP {status}");
    let links = headers.get_all("link").iter().count();
    let mut shown_links = 0;
    for (name, value) in headers {
        if name == "link" {
            shown_links += 1;
            if shown_links > EXCERPT_LINKS {
                if shown_links == EXCERPT_LINKS + 1 {
                    let _ = write!(out, "\nlink: ... ({} more)", links - EXCERPT_LINKS);
                }
                continue;
            }
        }
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = write!(out, "\n{name}: {}", cut(&value, EXCERPT_HEADER));
    }
    if !body.is_empty() {
        let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BODY)]);
        let more = if body.len() > EXCERPT_BODY { "..." } else { "" };
        let _ = write!(out, "\n\n{text}{more}");
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// What the trigger did, as the probes learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fired {
    /// The trigger ran and succeeded at this moment.
    Changed(Instant),
    /// No trigger was given.
    NoTrigger,
    /// The trigger failed (why).
    Failed(String),
}

#[derive(Debug)]
struct GateState {
    unarmed: usize,
    /// When the trigger started: a change seen earlier is the resource's own.
    started: Option<Instant>,
    fired: Option<Fired>,
}

/// Where probes say they are ready for the change, and learn what the trigger did.
#[derive(Debug)]
struct Gate {
    state: Mutex<GateState>,
    wake: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What every probe shares.
struct ProbeEnv {
    pub(crate) url: Url,
    pub(crate) http: HttpClient,
    pub(crate) caps: Capabilities,
    /// The discovery response.
    pub(crate) first: Response,
    pub(crate) options: CheckOptions,
    pub(crate) deadline: Instant,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    gate: Gate,
}

impl ProbeEnv {
    /// Time left in the budget.
    pub(crate) fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether the budget has run out (so a missing answer proves nothing).
    pub(crate) fn out_of_budget(&self) -> bool {
        self.left() < Duration::from_millis(50)
    }

    /// `d`, or less when the budget ends sooner.
    pub(crate) fn bounded(&self, d: Duration) -> Duration {
        d.min(self.left()).max(Duration::from_millis(1))
    }

    /// Whether a trigger was given.
    pub(crate) fn has_trigger(&self) -> bool {
        self.options.trigger.is_some()
    }

    /// The long-poll wait for holding checks: the option, at least the server's minimum.
    pub(crate) fn wait_for(&self, wait_min: Option<u64>) -> u64 {
        self.options.wait.max(wait_min.unwrap_or(0)).max(1)
    }

    /// A GET with these headers, timed; the exchange for evidence either way.
    pub(crate) fn get(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> (std::result::Result<(Response, Duration), String>, Exchange) {
        let exchange = Exchange::new("GET", url, headers);
        let started = Instant::now();
        match self
            .http
            .get(url, &self.url, headers, self.bounded(timeout))
        {
            Ok(r) => {
                let took = started.elapsed();
                let exchange = exchange.with_response(&r);
                (Ok((r, took)), exchange)
            }
            Err(e) => {
                let mut why = e.to_string();
                if self.out_of_budget() {
                    why.push_str("; the budget ran out");
                }
                let exchange = exchange.with_text(format!("(no response: {why})"));
                (Err(why), exchange)
            }
        }
    }

    /// When a change should have arrived by: some time after the trigger ran (or, before it
    /// ran, after it could), within the budget.
    pub(crate) fn change_deadline(&self) -> Instant {
        let state = self.gate.lock();
        let by = match state.fired {
            Some(Fired::Changed(at)) => at + CHANGE_WAIT,
            // No change is coming: nothing to wait for.
            Some(Fired::NoTrigger | Fired::Failed(_)) => Instant::now(),
            None => Instant::now() + CHANGE_WAIT + TRIGGER_TIMEOUT,
        };
        by.min(self.deadline)
    }

    /// What the trigger did, waiting until it has run (or the budget ends).
    pub(crate) fn fired(&self) -> Fired {
        let guard = self.gate.lock();
        let (guard, _) = self
            .gate
            .wake
            .wait_timeout_while(guard, self.left(), |s| s.fired.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard
            .fired
            .clone()
            .unwrap_or_else(|| Fired::Failed("the budget ran out before the trigger ran".into()))
    }

    /// When the trigger started, if it has.
    pub(crate) fn trigger_started(&self) -> Option<Instant> {
        self.gate.lock().started
    }
}

/// A probe's pass to the gate: armed once, by hand or when dropped.
struct Probe<'a> {
    env: &'a ProbeEnv,
    armed: bool,
}

impl Probe<'_> {
    /// Ready for the change.
    pub(crate) fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            let mut state = self.env.gate.lock();
            state.unarmed = state.unarmed.saturating_sub(1);
            self.env.gate.wake.notify_all();
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.arm();
    }
}

/// The finding for a change-dependent requirement that cannot be tested, if it cannot.
fn change_skip(env: &ProbeEnv, mechanism: Mechanism) -> Option<Finding> {
    if !env.has_trigger() {
        return Some(Finding::wanting(
            Requirement::ChangeDelivered,
            Some(mechanism),
            Needs::Trigger,
            NO_TRIGGER,
        ));
    }
    None
}

/// The finding for a request the budget cut short, in place of `requirement`'s: it proves
/// nothing about the server but that it was too slow for the budget, so `budget` warns
/// (naming what was left unjudged, with what was asked) rather than `requirement` failing.
fn cut_short(
    requirement: Requirement,
    mechanism: Option<Mechanism>,
    why: &str,
    exchange: &Exchange,
) -> Finding {
    Finding::fail(
        Requirement::Budget,
        mechanism,
        format!(
            "the budget ran out before {} could be judged: {why}",
            requirement.id()
        ),
        Some(exchange),
    )
}

/// The finding for a change that did not arrive: FAIL when the trigger ran, else SKIP.
fn not_delivered(
    env: &ProbeEnv,
    mechanism: Mechanism,
    detail: String,
    exchange: Option<&Exchange>,
) -> Finding {
    match env.fired() {
        Fired::Changed(_) if env.out_of_budget() => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the budget ran out before the change arrived",
        ),
        Fired::Changed(_) => Finding::fail(
            Requirement::ChangeDelivered,
            Some(mechanism),
            detail,
            exchange,
        ),
        Fired::NoTrigger => Finding::wanting(
            Requirement::ChangeDelivered,
            Some(mechanism),
            Needs::Trigger,
            NO_TRIGGER,
        ),
        Fired::Failed(_) => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the trigger failed",
        ),
    }
}

/// The finding for a change that arrived at `arrived` (after the trigger started).
fn delivered(env: &ProbeEnv, mechanism: Mechanism, what: &str, arrived: Instant) -> Finding {
    let started = env.trigger_started().unwrap_or(arrived);
    match env.fired() {
        Fired::Changed(_) => Finding::pass(
            Requirement::ChangeDelivered,
            Some(mechanism),
            format!(
                "{what} {:.2}s after the trigger started",
                arrived.saturating_duration_since(started).as_secs_f64()
            ),
        ),
        Fired::NoTrigger => Finding::wanting(
            Requirement::ChangeDelivered,
            Some(mechanism),
            Needs::Trigger,
            NO_TRIGGER,
        ),
        Fired::Failed(_) => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "the trigger failed",
        ),
    }
}

type ProbeFn = fn(&ProbeEnv, &mut Probe<'_>) -> Vec<Finding>;
/// A probe and the mechanism it checks (`None`: the resource as a whole), by which the
/// report names it should it run out of budget.
type Named = (Option<Mechanism>, ProbeFn);

/// How long after the budget the run waits for probes still running before it reports them
/// as out of budget and leaves them: their own waits, requests and sockets end at the budget
/// (see [`ProbeEnv::deadline`]), so this is only the time to notice.
const GRACE: Duration = Duration::from_millis(500);

/// Checks the resource at `url`, requirement by requirement, within the budget.
pub fn check(url: &Url, options: &CheckOptions) -> Result<CheckReport> {
    let started = Instant::now();
    let deadline = started + options.budget;
    let headers = crate::http::user_headers(&options.headers)?;
    let http = HttpClient::new(headers, DEFAULT_MAX_BODY, options.ca_certs.as_deref());
    let tls = Arc::new(crate::http::wss_tls_config(
        options.ca_certs.as_deref(),
        false,
    )?);
    // Every request, its body and any stream read to the end, is over by the deadline.
    let http = http.until(deadline);
    let timeout = REQUEST_TIMEOUT.min(options.budget);
    let first = match http.get(url, url, &[], timeout) {
        Ok(r) => r,
        // A server that has not answered in full by the end of the budget (a body dripped a
        // byte at a time, say) fails discovery; one that cannot be reached is an error.
        Err(FetchError::Transport(reason)) if Instant::now() + GRACE >= deadline => {
            let exchange =
                Exchange::new("GET", url, &[]).with_text(format!("(no complete answer: {reason})"));
            return Ok(CheckReport {
                url: url.clone(),
                findings: vec![Finding::fail(
                    Requirement::Discovery,
                    None,
                    format!(
                        "no complete answer within the budget ({}s)",
                        options.budget.as_secs_f64()
                    ),
                    Some(&exchange),
                )],
                took: started.elapsed(),
                budget: options.budget,
            });
        }
        Err(e) => return Err(e.into_error(url)),
    };
    let caps = Capabilities::from_headers(&first.headers, &first.url);
    let mut findings = Vec::new();
    let discovery = Exchange::new("GET", url, &[]).with_response(&first);
    if !(200..300).contains(&first.status) {
        findings.push(Finding::fail(
            Requirement::Discovery,
            None,
            format!("answered {}", first.status),
            Some(&discovery),
        ));
        return Ok(CheckReport {
            url: url.clone(),
            findings,
            took: started.elapsed(),
            budget: options.budget,
        });
    }
    findings.push(Finding::pass(
        Requirement::Discovery,
        None,
        format!(
            "{}; offers {}",
            first.status,
            caps.offered_names().join(", ")
        ),
    ));

    // Probes run in phases, each with its own trigger run: some servers lose one client's
    // subscription when another client's long-poll ends (see `survival`), so long-polls and
    // pushes are checked apart, and that loss only where it is the point.
    let mut first_phase: Vec<Named> = vec![(None, basics::probe)];
    first_phase.extend(long_poll::probes(&caps));
    first_phase.extend(changes::probes(&caps));
    let mut pushes: Vec<Named> = streams::probes(&caps);
    pushes.extend(sockets::probes(&caps));
    let webhooks = callbacks::probes(&caps, options);
    let skipped_webhooks = callbacks::skipped(&caps, options);
    let env = Arc::new(ProbeEnv {
        url: url.clone(),
        http,
        caps,
        first,
        options: options.clone(),
        deadline,
        tls,
        gate: Gate {
            state: Mutex::new(GateState {
                unarmed: 0,
                started: None,
                fired: None,
            }),
            wake: Condvar::new(),
        },
    });
    let phase = |name: &str, probes: &[Named], findings: &mut Vec<Finding>| {
        if probes.is_empty() {
            return;
        }
        let (trigger, results) = run_phase(&env, name, probes);
        let mut results = results.into_iter();
        if name == "long-polls" {
            // The basic probe's findings first, then the trigger's.
            findings.extend(results.next().unwrap_or_default());
        }
        findings.extend(trigger);
        findings.extend(results.flatten());
    };
    phase("long-polls", &first_phase, &mut findings);
    phase("pushes", &pushes, &mut findings);
    // Survival, over the first push mechanism that delivered alone.
    let survivor = survival::PUSHES.into_iter().find(|m| {
        findings.iter().any(|f| {
            f.requirement == Requirement::ChangeDelivered
                && f.mechanism == Some(*m)
                && f.outcome == Outcome::Pass
        })
    });
    if survival::has_long_poll(&env.caps) && !pushes.is_empty() {
        match survivor {
            Some(m) => phase("survival", &[survival::probe_for(m)], &mut findings),
            None if env.has_trigger() => findings.push(Finding::skip(
                Requirement::SurvivesOtherClients,
                None,
                "no push mechanism delivered a change alone",
            )),
            None => findings.push(Finding::wanting(
                Requirement::SurvivesOtherClients,
                None,
                Needs::Trigger,
                NO_TRIGGER,
            )),
        }
    }
    phase("webhooks", &webhooks, &mut findings);
    findings.extend(skipped_webhooks);
    Ok(CheckReport {
        url: url.clone(),
        findings,
        took: started.elapsed(),
        budget: options.budget,
    })
}

/// Runs one phase's probes, each on a thread of its own, and the trigger once every one of
/// them is listening; their findings, in order, and the trigger's.
fn run_phase(
    env: &Arc<ProbeEnv>,
    phase: &str,
    probes: &[Named],
) -> (Option<Finding>, Vec<Vec<Finding>>) {
    {
        let mut state = env.gate.lock();
        state.unarmed = probes.len();
        state.started = None;
        state.fired = None;
    }
    let options = &env.options;
    // Probes bound their own waits by the budget; one that the server still keeps busy after
    // it (and the grace) is left behind, reported as out of budget, so the run ends on time
    // whatever the server does (the process does not wait for such a thread when it exits).
    let (tx, rx) = mpsc::channel();
    for (i, (_, probe)) in probes.iter().enumerate() {
        let (mine, sender, probe) = (Arc::clone(env), tx.clone(), *probe);
        let spawned = std::thread::Builder::new()
            .name("lrwatch-check-probe".into())
            .spawn(move || {
                let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut pass = Probe {
                        env: &mine,
                        armed: false,
                    };
                    probe(&mine, &mut pass)
                }));
                let _ = sender.send((i, found.ok()));
            });
        if spawned.is_err() {
            let _ = tx.send((i, None));
            let mut state = env.gate.lock();
            state.unarmed = state.unarmed.saturating_sub(1);
        }
    }
    drop(tx);
    let trigger = fire(env, phase);
    let mut done: Vec<Option<Option<Vec<Finding>>>> = vec![None; probes.len()];
    let give_up = env.deadline + GRACE;
    while done.iter().any(Option::is_none) {
        match rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok((i, found)) => done[i] = Some(found),
            Err(_) => break,
        }
    }
    let results = done
        .into_iter()
        .zip(probes)
        .map(|(found, (mechanism, _))| match found {
            Some(Some(findings)) => findings,
            Some(None) => vec![Finding::fail(
                Requirement::Discovery,
                None,
                "a probe crashed (a bug in lrwatch)",
                None,
            )],
            None => vec![Finding::fail(
                Requirement::Budget,
                *mechanism,
                format!(
                    "the {} probe did not finish within the budget ({}s): the server kept it busy",
                    mechanism.map_or("basic", Mechanism::as_str),
                    options.budget.as_secs_f64()
                ),
                None,
            )],
        })
        .collect();
    (trigger, results)
}

/// Waits until every probe is armed, runs the trigger, and tells the probes what it did; the
/// trigger's finding names the phase.
fn fire(env: &ProbeEnv, phase: &str) -> Option<Finding> {
    {
        let guard = env.gate.lock();
        let _ = env
            .gate
            .wake
            .wait_timeout_while(guard, env.left(), |s| s.unarmed > 0)
            .unwrap_or_else(|e| e.into_inner());
    }
    let (fired, finding) = match &env.options.trigger {
        None => (Fired::NoTrigger, None),
        Some(_) if env.out_of_budget() => {
            let why = "the budget ran out before every mechanism was listening";
            (
                Fired::Failed(why.into()),
                Some(Finding::skip(Requirement::Trigger, None, why)),
            )
        }
        Some(command) => {
            std::thread::sleep(env.bounded(SETTLE));
            env.gate.lock().started = Some(Instant::now());
            match run_trigger(command, env.bounded(TRIGGER_TIMEOUT)) {
                Ok(took) => (
                    Fired::Changed(Instant::now()),
                    Some(Finding::pass(
                        Requirement::Trigger,
                        None,
                        format!("{phase}: exit 0 after {:.2}s", took.as_secs_f64()),
                    )),
                ),
                Err((why, output)) => {
                    let exchange = Exchange {
                        request: format!("sh -c {command}"),
                        response: Some(output),
                    };
                    (
                        Fired::Failed(why.clone()),
                        Some(Finding::fail(
                            Requirement::Trigger,
                            None,
                            format!("{phase}: {why}"),
                            Some(&exchange),
                        )),
                    )
                }
            }
        }
    };
    env.gate.lock().fired = Some(fired);
    env.gate.wake.notify_all();
    finding
}

/// Runs the trigger with `sh -c`; how long it took, or why it failed and what it printed.
/// How long, once the trigger has exited, its error output may take to end.
const TRIGGER_OUTPUT_GRACE: Duration = Duration::from_millis(200);

fn run_trigger(
    command: &str,
    timeout: Duration,
) -> std::result::Result<Duration, (String, String)> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot run sh: {e}"), String::new()))?;
    // Read on a thread that hands what it read over as it goes: a trigger that leaves a
    // background process holding its stderr (`curl … &`) must not hold the run past its end.
    let mut stderr = child.stderr.take();
    let text = Arc::new(Mutex::new(Vec::new()));
    let (ended, read_all) = mpsc::channel::<()>();
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Some(Ok(n @ 1..)) = stderr.as_mut().map(|e| e.read(&mut chunk)) {
            let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
            let room = (64 * 1024usize).saturating_sub(text.len());
            text.extend_from_slice(&chunk[..n.min(room)]);
        }
        let _ = ended.send(());
    });
    let output = move || {
        let _ = read_all.recv_timeout(TRIGGER_OUTPUT_GRACE);
        let text = text.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&text).into_owned()
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let output = output();
                return if status.success() {
                    Ok(started.elapsed())
                } else {
                    Err((format!("the trigger failed ({status})"), output))
                };
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err((
                    format!(
                        "the trigger did not finish within {:.1}s",
                        timeout.as_secs_f64()
                    ),
                    String::new(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err((format!("cannot wait for the trigger: {e}"), String::new())),
        }
    }
}

/// `content-type` for a response: a JSON body says so (`application/json`, any `+json` type,
/// or form A's `application/liveresource-multiplex`), and a body labelled JSON is JSON; either
/// way round, a client that goes by the label misreads it (RFC 7231: the type is what the
/// body is). Other content (or none) has nothing to say here: SKIP.
fn json_label(response: &Response, m: Option<Mechanism>, exchange: &Exchange) -> Finding {
    let content_type = response.header("content-type").unwrap_or("").trim();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let labelled_json = media == "application/json"
        || media == "text/json"
        || media.ends_with("+json")
        || media == "application/liveresource-multiplex";
    let body = String::from_utf8_lossy(&response.body);
    let is_json = serde_json::from_str::<Value>(body.trim()).is_ok();
    let r = Requirement::ContentType;
    match (is_json, labelled_json) {
        (true, true) => Finding::pass(r, m, media),
        (true, false) => Finding::fail(
            r,
            m,
            format!(
                "JSON content labelled {}: clients that go by the label do not read it as JSON",
                display_type(content_type)
            ),
            Some(exchange),
        ),
        (false, _) if body.trim().is_empty() => Finding::skip(r, m, "an empty body"),
        (false, true) => Finding::fail(
            r,
            m,
            format!(
                "labelled {} but the body is not JSON: clients that go by the label cannot read it",
                display_type(content_type)
            ),
            Some(exchange),
        ),
        (false, false) => Finding::skip(
            r,
            m,
            format!(
                "the content is not JSON ({}): nothing to label",
                display_type(content_type)
            ),
        ),
    }
}

fn display_type(content_type: &str) -> String {
    if content_type.is_empty() {
        "without a Content-Type".into()
    } else {
        format!("{content_type:?}")
    }
}

/// `url` with `ws` read as `http` and `wss` as `https`: a socket's link and the resource it
/// serves are on one origin when only that tells them apart.
fn as_http(url: &Url) -> Url {
    let mut u = url.clone();
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return u,
    };
    let _ = u.set_scheme(scheme);
    u
}

/// How to name a resource to a multiplex or socket endpoint, as the texts' examples do: by
/// its path (and query) when the endpoint is on the same host and port (`ws` as `http`, `wss`
/// as `https`), else by its absolute URL. Servers may only know paths.
fn uri_for(endpoint: &Url, resource: &Url) -> String {
    if as_http(endpoint).origin() == as_http(resource).origin() {
        let mut s = resource.path().to_string();
        if let Some(q) = resource.query() {
            s.push('?');
            s.push_str(q);
        }
        s
    } else {
        resource.to_string()
    }
}

/// Whether `uri`, as a server wrote it in a message from `endpoint`, names `resource`:
/// compared resolved (against the endpoint, `ws` as `http`), never as text.
fn names(endpoint: &Url, uri: &str, resource: &Url) -> bool {
    let Ok(mut resolved) = as_http(endpoint).join(uri.trim()) else {
        return false;
    };
    resolved.set_fragment(None);
    let mut resource = as_http(resource);
    resource.set_fragment(None);
    resolved == resource
}

/// What a multiplexed or socket subscription follows: the resource's value, or for a
/// collection (changes links, no ETag) its changes link.
fn subject(env: &ProbeEnv) -> (Url, bool) {
    if env.caps.etag.is_none() {
        if let Some(changes) = env.caps.offer(Mechanism::Changes) {
            return (changes.target.clone(), true);
        }
    }
    (env.first.url.clone(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_run_and_fail_visibly() {
        assert!(run_trigger("true", Duration::from_secs(5)).is_ok());
        let (why, output) =
            run_trigger("echo oops >&2; exit 3", Duration::from_secs(5)).unwrap_err();
        assert!(why.contains("exit status: 3"), "{why}");
        assert_eq!(output.trim(), "oops");
        let (why, _) = run_trigger("sleep 5", Duration::from_millis(100)).unwrap_err();
        assert!(why.contains("did not finish"), "{why}");
    }

    #[test]
    fn without_a_trigger_nothing_fails_and_changes_are_skipped() {
        let server = crate::server::Server::bind("127.0.0.1:0")
            .and_then(crate::server::Server::spawn)
            .unwrap();
        let url = Url::parse(&format!(
            "http://{}/counter/lib?form=a",
            server.local_addr()
        ))
        .unwrap();
        let report = check(
            &url,
            &CheckOptions {
                budget: Duration::from_secs(20),
                ..CheckOptions::default()
            },
        )
        .unwrap();
        assert!(report.passed(), "{:#}", report.to_json(false));
        let skipped: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.requirement == Requirement::ChangeDelivered)
            .map(|f| f.outcome)
            .collect();
        assert!(!skipped.is_empty());
        assert!(skipped.iter().all(|o| *o == Outcome::Skip));
        assert!(report.took < Duration::from_secs(10));
    }

    #[test]
    fn changes_bodies_with_items() {
        assert!(long_poll::has_items(b"[{\"id\":1}]"));
        assert!(!long_poll::has_items(b"[]"));
        assert!(!long_poll::has_items(b" "));
        assert!(long_poll::has_items(b"+3 lines"));
        let base = Url::parse("http://h/items/").unwrap();
        let links =
            vec!["</items/?since=2>; rel=changes, </items/?since=1>; rel=prev-changes".to_string()];
        assert_eq!(
            long_poll::next_checkpoint(&links, &base).unwrap().as_str(),
            "http://h/items/?since=2"
        );
    }

    #[test]
    fn resources_are_named_by_path_on_one_origin_and_compared_resolved() {
        let ws = Url::parse("ws://h:8/ws/").unwrap();
        let resource = Url::parse("http://h:8/obj/h?x=1").unwrap();
        assert_eq!(uri_for(&ws, &resource), "/obj/h?x=1");
        let elsewhere = Url::parse("ws://h:9/ws/").unwrap();
        assert_eq!(uri_for(&elsewhere, &resource), "http://h:8/obj/h?x=1");
        let wss = Url::parse("wss://h/ws/").unwrap();
        assert_eq!(uri_for(&wss, &Url::parse("https://h/a").unwrap()), "/a");
        assert!(names(&ws, "/obj/h?x=1", &resource));
        assert!(names(&ws, "http://h:8/obj/h?x=1", &resource));
        assert!(names(&ws, "../obj/h?x=1", &resource));
        assert!(!names(&ws, "/obj/h", &resource));
        assert!(!names(&elsewhere, "/obj/h?x=1", &resource));
    }

    #[test]
    fn every_requirement_has_a_level_and_a_source() {
        for r in Requirement::ALL {
            assert!(!r.source(None).is_empty(), "{}", r.id());
            assert!(!r.title().is_empty());
        }
        assert_eq!(Requirement::BadWaitHandled.level(), Level::Should);
        assert_eq!(Requirement::ChangeDelivered.level(), Level::Must);
    }

    #[test]
    fn excerpts_cut_long_values() {
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("é", 1), "...");
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("etag", "\"1\"".parse().unwrap());
        assert_eq!(excerpt(304, &headers, b""), "HTTP 304\netag: \"1\"");
    }
}
