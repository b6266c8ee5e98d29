//! `lrwatch check`: probes a server's LiveResource support requirement by requirement.
//!
//! One discovery GET, then one probe per advertised mechanism, all on their own threads:
//!
//! 1. Each probe first checks what needs no change (validators, a long-poll held for a short
//!    wait, stream content types, socket handshakes and acks), sets up a listener for a change
//!    (a long-poll in flight, an open stream, a subscribed socket) and *arms*.
//! 2. When every probe is armed, the `--trigger` command runs once (`sh -c`), and each probe
//!    waits, bounded, for the change to arrive over its transport.
//!
//! Without a trigger, change-dependent requirements are skipped. The budget bounds the whole
//! run whatever the server does: every wait, every request to the end of its body (see
//! [`HttpClient::until`]) and every socket read end by it, and a probe the server still keeps
//! busy is left behind, reported as out of budget. Results are data ([`CheckReport`]); the
//! binary renders them.
//!
//! Groups of requirements: [`basics`] (validators, links), [`long_poll`] (value-wait,
//! multiplex-wait, changes-wait), [`streams`] (every SSE mechanism), [`sockets`] (multiplex-ws
//! and multiplex-socket), [`changes`] (changes links advance).

mod basics;
mod changes;
mod long_poll;
mod report;
mod sockets;
mod streams;

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use url::Url;

pub use report::{CheckReport, Finding, Outcome, Requirement};

use crate::discovery::Capabilities;
use crate::error::Result;
use crate::http::{FetchError, HttpClient, Response, DEFAULT_MAX_BODY};
use crate::mechanism::Mechanism;

/// The default budget of a whole run.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// The default wait of the long-polls that check holding, in seconds.
pub const DEFAULT_WAIT: u64 = 2;
/// How much later than its wait a long-poll may end.
const SLACK: Duration = Duration::from_millis(1500);
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

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// A shell command that changes the resource (`sh -c`); `None` skips change-dependent
    /// requirements.
    pub trigger: Option<String>,
    /// The time the whole run may take.
    pub budget: Duration,
    /// The wait of the long-polls that check holding, in seconds.
    pub wait: u64,
    /// Extra request headers (`-H`), sent only to the resource's origin.
    pub headers: Vec<(String, String)>,
    /// Certificate authorities (DER) to trust instead of the bundled roots (`--cacert`).
    pub ca_certs: Option<Vec<Vec<u8>>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            trigger: None,
            budget: DEFAULT_BUDGET,
            wait: DEFAULT_WAIT,
            headers: Vec::new(),
            ca_certs: None,
        }
    }
}

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
            _ => Instant::now() + CHANGE_WAIT + TRIGGER_TIMEOUT,
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
        return Some(Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
        ));
    }
    None
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
        Fired::NoTrigger => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
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
        Fired::NoTrigger => Finding::skip(
            Requirement::ChangeDelivered,
            Some(mechanism),
            "no --trigger given",
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

    let mut probes: Vec<Named> = vec![(None, basics::probe)];
    probes.extend(long_poll::probes(&caps));
    probes.extend(streams::probes(&caps));
    probes.extend(sockets::probes(&caps));
    probes.extend(changes::probes(&caps));
    let mut callbacks = Vec::new();
    for m in [
        Mechanism::ValueCallback,
        Mechanism::ChangesCallback,
        Mechanism::MultiplexCallbacks,
    ] {
        if caps.offer(m).is_some() {
            callbacks.push(Finding::skip(
                Requirement::Callbacks,
                Some(m),
                "not exercised by this version (they need an address the server can reach)",
            ));
        }
    }

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
                unarmed: probes.len(),
                started: None,
                fired: None,
            }),
            wake: Condvar::new(),
        },
    });
    // Each probe on a thread of its own, its findings sent back. Probes bound their own
    // waits by the budget; one that the server still keeps busy after it (and the grace) is
    // left behind, reported as out of budget, so the run ends on time whatever the server
    // does (the process does not wait for such a thread when it exits).
    let (tx, rx) = mpsc::channel();
    for (i, (_, probe)) in probes.iter().enumerate() {
        let (mine, sender, probe) = (Arc::clone(&env), tx.clone(), *probe);
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
    let trigger_finding = Some(fire(&env));
    let mut done: Vec<Option<Option<Vec<Finding>>>> = vec![None; probes.len()];
    let give_up = deadline + GRACE;
    while done.iter().any(Option::is_none) {
        match rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok((i, found)) => done[i] = Some(found),
            Err(_) => break,
        }
    }
    let results: Vec<Vec<Finding>> = done
        .into_iter()
        .zip(&probes)
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
    let mut results = results.into_iter();
    findings.extend(results.next().unwrap_or_default());
    findings.extend(trigger_finding.into_iter().flatten());
    findings.extend(results.flatten());
    findings.extend(callbacks);
    Ok(CheckReport {
        url: url.clone(),
        findings,
        took: started.elapsed(),
        budget: options.budget,
    })
}

/// Waits until every probe is armed, runs the trigger, and tells the probes what it did.
fn fire(env: &ProbeEnv) -> Option<Finding> {
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
                        format!("exit 0 after {:.2}s", took.as_secs_f64()),
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
                            why,
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
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(64 * 1024).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let output = reader.join().unwrap_or_default();
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

/// How to name a resource to a multiplex endpoint, as the follow engine does.
pub(crate) use crate::wire::multiplex::name_for as uri_for;

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
        assert!(report.passed(), "{:#}", report.to_json());
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
    fn excerpts_cut_long_values() {
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("é", 1), "...");
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("etag", "\"1\"".parse().unwrap());
        assert_eq!(excerpt(304, &headers, b""), "HTTP 304\netag: \"1\"");
    }
}
