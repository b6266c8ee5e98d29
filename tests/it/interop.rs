//! Interop: the real binary against LiveResource servers nobody here wrote, from
//! `../shared/interop`: the Express plugin's counter and chat examples (form A) and the
//! protocol's public test server (form B), over every transport each offers, forced and `auto`,
//! one and several resources per process, several processes per server set.
//!
//! None of these servers offers webhooks (no `value-callback`, `changes-callback` or
//! `multiplex-callbacks` link), so no run here can leave a webhook subscription behind;
//! subscriptions at exit are tested against the reference server in callbacks.rs.
//!
//! Each test starts its own servers in its own WORKDIR: these servers drop one client's
//! subscription when another client's long-poll ends (see their README), so servers are shared
//! only where that is the point, and those runs pass `--verify 2`. Without `../shared/interop`,
//! Node.js or npm a test prints `skipped: <why>` and passes, unless `CI` is set: then it fails.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// The fixture: one set of third-party servers in a WORKDIR of its own.

/// Three running servers (counter, chat, test server), stopped and removed when dropped.
struct Interop {
    dir: PathBuf,
    work: PathBuf,
    pids: Vec<u32>,
    counter: String,
    chat: String,
    test: String,
    /// Whether an lrwatch run against these servers warned that the server missed a push.
    warned: AtomicBool,
}

/// Whether the shared `node_modules` has been installed by a start that succeeded: the first
/// start runs `npm install`, and two installs into one folder at once would break each other.
static INSTALLED: Mutex<bool> = Mutex::new(false);
/// Numbers WORKDIRs apart within this process.
static NEXT_WORKDIR: AtomicUsize = AtomicUsize::new(0);

/// The servers cannot run here: a failure under CI, else a skip that says why.
fn unavailable(why: &str) {
    if under_ci() {
        panic!("interop servers unavailable, and CI is set: {why}");
    }
    eprintln!("skipped: {why}");
}

fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The servers' folder, or `None` (after saying why) when they cannot run here.
fn interop_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/interop");
    if !dir.join("start.sh").is_file() || !dir.join("stop.sh").is_file() {
        unavailable(&format!(
            "no third-party servers at {} (a copy of ../shared beside the clone)",
            dir.display()
        ));
        return None;
    }
    // start.sh itself needs python3 (a free port) and curl (is it up yet?) besides Node.js.
    for tool in ["node", "npm", "python3", "curl"] {
        if !runs(tool) {
            unavailable(&format!(
                "`{tool}` is not installed (the interop servers need node, npm, python3 and curl)"
            ));
            return None;
        }
    }
    Some(dir)
}

/// WORKDIRs kept for their logs by earlier runs whose process is gone: removed, so failing runs
/// do not pile up in target/tmp.
fn remove_stale_workdirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("interop-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Interop {
    /// Starts a fresh set of servers from `dir` (see `interop_dir`) in a WORKDIR of its own.
    fn start(dir: &Path) -> Interop {
        let dir = dir.to_path_buf();
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let modules = tmp.join("interop-node").join("node_modules");
        let work = tmp.join(format!(
            "interop-{}-{}",
            std::process::id(),
            NEXT_WORKDIR.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("create the interop WORKDIR");

        // Only the first start (the one that installs) is serialised; later ones run in parallel.
        let installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, bound): (Option<MutexGuard<bool>>, _) = if *installed {
            drop(installed);
            (None, Duration::from_secs(60))
        } else {
            remove_stale_workdirs(tmp);
            (Some(installed), Duration::from_secs(300))
        };
        let started = Self::run_start(&dir, &work, &modules, bound);
        if let (Some(mut guard), Ok(_)) = (guard, &started) {
            *guard = true;
        }
        let env = match started {
            Ok(env) => env,
            Err(why) => {
                let _ = Command::new("bash")
                    .arg(dir.join("stop.sh"))
                    .arg(&work)
                    .status();
                panic!("starting the interop servers failed: {why}");
            }
        };
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("start.sh wrote no {key}: {env:?}"))
        };
        let pids = env
            .iter()
            .filter(|(k, _)| k.ends_with("_PID"))
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        Interop {
            counter: get("COUNTER_URL"),
            chat: get("CHAT_URL"),
            test: get("TEST_URL"),
            warned: false.into(),
            pids,
            dir,
            work,
        }
    }

    /// Runs start.sh, bounded; returns what it wrote to servers.env.
    fn run_start(
        dir: &Path,
        work: &Path,
        modules: &Path,
        bound: Duration,
    ) -> Result<HashMap<String, String>, String> {
        let log = work.join("start.err");
        let mut child = Command::new("bash")
            .arg(dir.join("start.sh"))
            .arg(work)
            .env("INTEROP_NODE_MODULES", modules)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot run start.sh: {e}"))?;
        let deadline = Instant::now() + bound;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("start.sh did not finish within {bound:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        if !status.success() {
            return Err(format!("start.sh {status}: {said}"));
        }
        let env = std::fs::read_to_string(work.join("servers.env")).map_err(|e| e.to_string())?;
        Ok(env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

impl Drop for Interop {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.dir.join("stop.sh"))
            .arg(&self.work)
            .stdout(Stdio::null())
            .status();
        // Wait (bounded) for the servers to be gone, so nothing writes into the WORKDIR
        // while it is removed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && self
                .pids
                .iter()
                .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::thread::panicking() {
            eprintln!("interop: server logs kept in {}", self.work.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// One scenario, run on a thread of its own.
type Scenario = Box<dyn FnOnce() + Send>;

/// Runs each scenario on a thread of its own and fails with every scenario's failure, so one
/// failing transport does not hide what the others do.
fn scenarios(list: Vec<(&str, Scenario)>) {
    let total = list.len();
    let handles: Vec<_> = list
        .into_iter()
        .map(|(name, f)| {
            let handle = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .unwrap();
            (name, handle)
        })
        .collect();
    let mut failed = Vec::new();
    for (name, handle) in handles {
        if let Err(payload) = handle.join() {
            let why = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("--- {name}:\n{why}"));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {total} scenarios failed:\n\n{}",
            failed.len(),
            failed.join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the servers' own values with a plain HTTP client.

fn get_text(url: &str) -> String {
    let mut response = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.body_mut().read_to_string().unwrap()
}

fn get_json(url: &str) -> Value {
    let text = get_text(url);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// A counter's value (the GET follows the example's redirect to the trailing slash).
fn server_count(url: &str) -> i64 {
    get_json(url).as_i64().expect("a counter is a number")
}

/// The test server's time for `url` (`/test` or `/test2`, any query).
fn server_time(url: &str) -> i64 {
    get_json(url)["time"].as_i64().expect("{\"time\":T}")
}

fn post_message(room_url: &str, from: &str, text: &str) {
    let status = agent()
        .post(room_url)
        .send_form([("from", from), ("text", text)])
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200, "POST {room_url}");
}

/// A body as JSON: the test server labels its JSON `text/html`, so a body may come as a string
/// holding JSON; its value is what it holds.
fn parsed(body: &Value) -> Value {
    match body {
        Value::String(s) => serde_json::from_str(s.trim()).unwrap_or_else(|_| body.clone()),
        _ => body.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// One lrwatch process, its events checked as they are read.

/// What a followed resource's events must look like.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    /// The counter: `value` events, strictly increasing integers.
    Count,
    /// The test server's `{"time":T}`: `value` events, T strictly increasing.
    Time,
    /// The test server's changes feed: a first `value` `{"time":T}`, then `changes` events
    /// `{"time:change":"+N"}` with N > 0; T plus the Ns is the time reached.
    TimeFeed,
    /// The chat: a first `value` (the listing, newest first), then `changes` events, each a
    /// non-empty JSON list of new messages.
    Chat,
}

struct Watch {
    name: String,
    args: Vec<String>,
    shape: Shape,
    run: Run,
    uris: Vec<String>,
    lines: Vec<String>,
    /// Per URI: the latest number reported (for a feed: the first time plus every delta).
    last: HashMap<String, i64>,
    /// Per URI: events after the first.
    changes: HashMap<String, usize>,
    /// Chat, per URI: the first listing, and every message reported since, in order.
    listing: HashMap<String, Value>,
    messages: HashMap<String, Vec<Value>>,
    /// The transports of events after the first.
    transports: HashSet<String>,
}

impl Watch {
    /// Starts `lrwatch --json -v ARGS URIS`.
    fn start(name: &str, shape: Shape, args: &[&str], uris: &[String]) -> Watch {
        let mut all: Vec<String> = ["--json", "-v"].iter().map(|s| s.to_string()).collect();
        all.extend(args.iter().map(|s| s.to_string()));
        all.extend(uris.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        Watch {
            name: name.to_string(),
            run: lrwatch(&refs),
            args: all,
            shape,
            uris: uris.to_vec(),
            lines: Vec::new(),
            last: HashMap::new(),
            changes: HashMap::new(),
            listing: HashMap::new(),
            messages: HashMap::new(),
            transports: HashSet::new(),
        }
    }

    /// Fails the scenario with what was printed (stdout, and the end of the -v trace).
    fn fail(&mut self, why: &str) -> ! {
        self.run.stop();
        let stderr = self.run.stderr_text();
        let tail = |lines: Vec<&str>, n: usize| lines[lines.len().saturating_sub(n)..].join("\n");
        panic!(
            "{}: {why}\n  lrwatch {}\n  stdout ({} lines, last 30):\n{}\n  stderr (last 40 lines):\n{}",
            self.name,
            self.args.join(" "),
            self.lines.len(),
            tail(self.lines.iter().map(String::as_str).collect(), 30),
            tail(stderr.lines().collect(), 40),
        );
    }

    /// Reads and checks one event, waiting at most until `deadline`; false when none came
    /// (or the process ended).
    fn next(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.run.try_line(left) {
            Some(line) => {
                self.take(line);
                true
            }
            None => false,
        }
    }

    fn take(&mut self, line: String) {
        let event: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                self.lines.push(line.clone());
                self.fail(&format!("a line that is not JSON ({e}): {line}"))
            }
        };
        self.lines.push(line);
        let uri = event["uri"].as_str().unwrap_or("").to_string();
        if !self.uris.contains(&uri) {
            self.fail(&format!(
                "an event for {uri:?}, not a URL asked for (events keep the URL the user gave)"
            ));
        }
        let kind = event["event"].as_str().unwrap_or("").to_string();
        let body = parsed(&event["body"]);
        let first = !self.changes.contains_key(&uri);
        if first {
            self.changes.insert(uri.clone(), 0);
        } else {
            *self.changes.get_mut(&uri).unwrap() += 1;
            let transport = event["transport"].as_str().unwrap_or("").to_string();
            self.transports.insert(transport);
        }
        match self.shape {
            Shape::Count | Shape::Time => {
                if kind != "value" {
                    self.fail(&format!(
                        "a {kind:?} event, where only values were expected"
                    ));
                }
                let n = if self.shape == Shape::Count {
                    body.as_i64()
                } else {
                    body["time"].as_i64()
                };
                let Some(n) = n else {
                    self.fail(&format!("a value that is not the server's: {body}"))
                };
                self.advance(&uri, n);
            }
            Shape::TimeFeed => {
                if first || kind == "value" {
                    let Some(t) = body["time"].as_i64().filter(|_| kind == "value") else {
                        self.fail(&format!(
                            "a first event that is not the value: {kind} {body}"
                        ))
                    };
                    self.advance(&uri, t);
                } else if kind == "changes" {
                    let delta = body["time:change"]
                        .as_str()
                        .and_then(|d| d.trim_start_matches('+').parse::<i64>().ok());
                    match delta {
                        Some(d) if d > 0 => {
                            *self.last.get_mut(&uri).unwrap() += d;
                        }
                        _ => self.fail(&format!(
                            "a changes event that changes nothing (the checkpoint did not advance): {body}"
                        )),
                    }
                } else {
                    self.fail(&format!("a {kind:?} event on a changes feed"));
                }
            }
            Shape::Chat => {
                if first {
                    if kind != "value" || !body.is_array() {
                        self.fail(&format!(
                            "the first event is not the listing (a value, a JSON list): {kind} {body}"
                        ));
                    }
                    self.listing.insert(uri.clone(), body);
                    self.messages.insert(uri, Vec::new());
                } else {
                    match body.as_array() {
                        Some(items) if kind == "changes" && !items.is_empty() => {
                            let items = items.clone();
                            self.messages.get_mut(&uri).unwrap().extend(items);
                        }
                        _ => self.fail(&format!(
                            "a {kind:?} event where a changes event with a non-empty list of new messages was expected: {body}"
                        )),
                    }
                }
            }
        }
    }

    /// Takes in a number reported for `uri`: never one older than, or equal to, one printed.
    fn advance(&mut self, uri: &str, n: i64) {
        if let Some(&before) = self.last.get(uri) {
            if n == before {
                self.fail(&format!("{uri}: {n} printed twice in a row"));
            }
            if n < before {
                self.fail(&format!(
                    "{uri}: {n} printed after {before}: an older value than one already printed"
                ));
            }
        }
        self.last.insert(uri.to_string(), n);
    }

    /// Reads events until `done`, at most `bound`; fails saying `what` did not happen.
    fn until(&mut self, what: &str, bound: Duration, done: impl Fn(&Watch) -> bool) {
        let deadline = Instant::now() + bound;
        while !done(self) {
            if !self.next(deadline) {
                self.fail(&format!("{what}: not within {bound:?}"));
            }
        }
    }

    /// Waits for the first event of every URI.
    fn initial(&mut self) {
        self.until("the initial value of each URL", BOUND, |w| {
            w.uris.iter().all(|u| w.changes.contains_key(u))
        });
    }

    /// At least one change (an event after the first) came over one of `allowed`.
    fn used(&mut self, allowed: &[&str]) {
        if !self
            .transports
            .iter()
            .any(|t| allowed.contains(&t.as_str()))
        {
            let seen = format!("{:?}", self.transports);
            self.fail(&format!(
                "no change came over {allowed:?}; transports of changes: {seen}"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The counter (form A, a value): strictly increasing integers, the last one the server's.

/// The counter `url` names (the example redirects `/counter/a` to `/counter/a/`): where to POST.
fn counter_post_url(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// After changes: every watch prints each counter's server value, and nothing beyond it.
fn settle_counts(watches: &mut [Watch]) {
    for w in watches.iter_mut() {
        let targets: Vec<(String, i64)> = w
            .uris
            .iter()
            .map(|u| (u.clone(), server_count(u)))
            .collect();
        w.until(
            &format!("the server's values {targets:?}"),
            Duration::from_secs(8),
            |w| targets.iter().all(|(u, t)| w.last.get(u) >= Some(t)),
        );
        for (u, t) in &targets {
            let printed = w.last[u];
            if printed != *t {
                w.fail(&format!("{u}: printed {printed}; the server has {t}"));
            }
        }
    }
}

/// One lrwatch process of a scenario: its name, arguments (besides `--json -v`), the paths it
/// follows, and the transports at least one of its changes must come over.
struct Spec {
    name: &'static str,
    args: Vec<&'static str>,
    paths: Vec<&'static str>,
    allowed: Vec<&'static str>,
}

fn spec(
    name: &'static str,
    args: &[&'static str],
    paths: &[&'static str],
    allowed: &[&'static str],
) -> Spec {
    Spec {
        name,
        args: args.to_vec(),
        paths: paths.to_vec(),
        allowed: allowed.to_vec(),
    }
}

/// Forced transport `t`, one or more resources.
fn forced(name: &'static str, t: &'static str, paths: &[&'static str]) -> Spec {
    Spec {
        name,
        args: vec!["--transport", t],
        paths: paths.to_vec(),
        allowed: vec![t],
    }
}

impl Spec {
    fn with(mut self, more: &[&'static str]) -> Spec {
        self.args.extend_from_slice(more);
        self
    }

    fn watch(&self, base: &str, shape: Shape) -> Watch {
        let uris: Vec<String> = self.paths.iter().map(|p| format!("{base}{p}")).collect();
        Watch::start(self.name, shape, &self.args, &uris)
    }
}

/// Each scenario on a set of servers of its own, all at once.
fn each_alone(specs: Vec<Spec>, scenario: fn(&Interop, Spec)) {
    let Some(dir) = interop_dir() else { return };
    scenarios(
        specs
            .into_iter()
            .map(|s| {
                let dir = dir.clone();
                let name = s.name;
                let f: Scenario = Box::new(move || {
                    let servers = Interop::start(&dir);
                    scenario(&servers, s)
                });
                (name, f)
            })
            .collect(),
    )
}

/// All scenarios at once on one set of servers (processes that do not disturb each other, or
/// that do on purpose); the servers, for more checks, or `None` when skipped.
fn together(specs: Vec<Spec>, scenario: fn(&Interop, Spec)) -> Option<Arc<Interop>> {
    let dir = interop_dir()?;
    let servers = Arc::new(Interop::start(&dir));
    scenarios(
        specs
            .into_iter()
            .map(|s| {
                let servers = Arc::clone(&servers);
                let name = s.name;
                let f: Scenario = Box::new(move || scenario(&servers, s));
                (name, f)
            })
            .collect(),
    );
    Some(servers)
}

/// The warning `--verify` gives when it finds a change the transport did not deliver.
const MISSED: &str = "missed a push";

impl Watch {
    /// Ends the process; whether it warned that the server missed a push.
    fn warned(&mut self) -> bool {
        self.run.stop();
        self.run.stderr_text().contains(MISSED)
    }
}

/// Which process lost its subscription depends on the order the server keeps listeners in:
/// at least one of them must have said so.
fn some_warned(watches: &mut [Watch]) {
    let mut any = false;
    for w in watches.iter_mut() {
        any |= w.warned();
    }
    assert!(
        any,
        "no process warned {MISSED:?}, though the server dropped a subscriber"
    );
}

/// Several lrwatch processes on one counter server: POSTs in rounds (one, then bursts); after
/// each round every process must print every counter's server value, and nothing newer.
fn counters(base: &str, specs: &[Spec]) -> Vec<Watch> {
    let mut watches: Vec<Watch> = specs.iter().map(|s| s.watch(base, Shape::Count)).collect();
    for w in &mut watches {
        w.initial();
    }
    let mut targets: Vec<String> = watches
        .iter()
        .flat_map(|w| w.uris.iter().map(|u| counter_post_url(u)))
        .collect();
    targets.sort();
    targets.dedup();
    for posts in [1, 3, 2, 1] {
        for target in &targets {
            for _ in 0..posts {
                assert_eq!(post(target), 200, "POST {target}");
            }
        }
        settle_counts(&mut watches);
    }
    for (w, s) in watches.iter_mut().zip(specs) {
        w.used(&s.allowed);
    }
    watches
}

fn counter_scenario(servers: &Interop, s: Spec) {
    counters(&servers.counter, &[s]);
}

const COUNTERS: [&str; 3] = ["/counter/a/", "/counter/b/", "/counter/c/"];

/// Every transport the counter offers, each on its own servers: forced `value-wait` for one
/// counter (several long-polls at once meet the server's listener bug: see the `--verify`
/// tests), `multiplex-ws`, `poll` and `auto` for three counters in one process.
#[test]
fn counter_each_transport() {
    each_alone(
        vec![
            forced("counter value-wait", "value-wait", &["/counter/a/"]),
            forced("counter multiplex-ws x3", "multiplex-ws", &COUNTERS),
            forced("counter poll x3", "poll", &COUNTERS).with(&["--interval", "0.3"]),
            spec(
                "counter auto x3",
                &[],
                &COUNTERS,
                &["multiplex-ws", "value-wait"],
            ),
        ],
        counter_scenario,
    );
}

/// The examples redirect `/counter/a` to `/counter/a/`: lrwatch follows the resource where it
/// lives, and its events keep the URL the user gave.
#[test]
fn counter_behind_a_redirect() {
    each_alone(
        vec![
            spec(
                "redirected auto",
                &[],
                &["/counter/a"],
                &["multiplex-ws", "value-wait"],
            ),
            forced("redirected value-wait", "value-wait", &["/counter/a"]),
            forced(
                "redirected multiplex-ws x2",
                "multiplex-ws",
                &["/counter/a", "/counter/b"],
            ),
        ],
        counter_scenario,
    );
}

/// One process long-polling three counters: each answered long-poll makes the plugin remove
/// another listener (its `splice(indexOf(l) = -1, 1)`), so a counter's long-poll silently stops
/// hearing of changes; `--verify 2` must notice within 2 s. Fails without `--verify`.
#[test]
fn counter_value_wait_for_several_counters_with_verify() {
    let Some(dir) = interop_dir() else { return };
    let servers = Interop::start(&dir);
    let mut watches = counters(
        &servers.counter,
        &[forced("counter value-wait x3", "value-wait", &COUNTERS).with(&["--verify", "2"])],
    );
    some_warned(&mut watches);
}

/// As users do: a forced long-poll beside a WebSocket client and `auto`, on one server. The
/// long-poll's end drops the WebSocket's listener; `--verify 2` must catch up and resubscribe.
#[test]
fn counter_value_wait_beside_multiplex_ws_with_verify() {
    let Some(dir) = interop_dir() else { return };
    let servers = Interop::start(&dir);
    let mut watches = counters(
        &servers.counter,
        &[
            forced("value-wait a", "value-wait", &["/counter/a/"]).with(&["--verify", "2"]),
            forced(
                "multiplex-ws a b",
                "multiplex-ws",
                &["/counter/a/", "/counter/b/"],
            )
            .with(&["--verify", "2"]),
            spec(
                "auto a b c",
                &["--verify", "2"],
                &COUNTERS,
                &["multiplex-ws", "value-wait"],
            ),
        ],
    );
    some_warned(&mut watches);
}

// ---------------------------------------------------------------------------------------------
// The chat (form A, a collection): the first listing, then every message exactly once, in order.

/// After messages were posted: every watch has reported exactly the messages posted to each
/// room since it started, in order, and its listing plus those is the server's listing.
fn settle_chat(watches: &mut [Watch], posted: &HashMap<String, Vec<Value>>) {
    for w in watches.iter_mut() {
        for u in w.uris.clone() {
            let want = &posted[&u];
            w.until(
                &format!("{u}: the {} messages posted", want.len()),
                Duration::from_secs(8),
                |w| w.messages[&u].len() >= want.len(),
            );
            if w.messages[&u] != *want {
                let got = serde_json::to_string(&w.messages[&u]).unwrap();
                let want = serde_json::to_string(want).unwrap();
                w.fail(&format!(
                    "{u}: the messages reported are not those posted:\n    got  {got}\n    want {want}"
                ));
            }
            // The listing is newest first; oldest first, it continues with what was reported.
            let mut server = get_json(&u).as_array().cloned().unwrap_or_default();
            server.reverse();
            let mut mine = w.listing[&u].as_array().cloned().unwrap_or_default();
            mine.reverse();
            mine.extend(w.messages[&u].iter().cloned());
            if mine != server {
                w.fail(&format!(
                    "{u}: the first listing and the messages reported are not the server's listing: {}",
                    serde_json::to_string(&server).unwrap()
                ));
            }
        }
    }
}

/// Several lrwatch processes on one chat server: rooms seeded with two messages; then messages
/// posted in rounds (one, a burst of three, one) to every room followed.
fn chats(base: &str, specs: &[Spec]) -> Vec<Watch> {
    let mut rooms: Vec<String> = specs
        .iter()
        .flat_map(|s| s.paths.iter().map(|p| format!("{base}{p}")))
        .collect();
    rooms.sort();
    rooms.dedup();
    for room in &rooms {
        post_message(room, "seed", "first");
        post_message(room, "seed", "second, newer");
    }
    let listings: HashMap<String, Value> = rooms.iter().map(|r| (r.clone(), get_json(r))).collect();
    let mut watches: Vec<Watch> = specs.iter().map(|s| s.watch(base, Shape::Chat)).collect();
    for w in &mut watches {
        w.initial();
        for u in w.uris.clone() {
            if w.listing[&u] != listings[&u] {
                let got = w.listing[&u].to_string();
                w.fail(&format!(
                    "{u}: the first event is not the listing: {got}, the server's {}",
                    listings[&u]
                ));
            }
        }
    }
    let mut posted: HashMap<String, Vec<Value>> =
        rooms.iter().map(|r| (r.clone(), Vec::new())).collect();
    let mut n = 0;
    for burst in [1, 3, 1] {
        for room in &rooms {
            for _ in 0..burst {
                n += 1;
                // Characters a form encoding must carry: & = + and non-ASCII.
                let text = format!("message {n}: fish & chips = 1+1, ünïcödé");
                post_message(room, "interop", &text);
                posted
                    .get_mut(room)
                    .unwrap()
                    .push(json!({"from": "interop", "text": text}));
            }
        }
        settle_chat(&mut watches, &posted);
    }
    for (w, s) in watches.iter_mut().zip(specs) {
        w.used(&s.allowed);
    }
    watches
}

fn chat_scenario(servers: &Interop, s: Spec) {
    chats(&servers.chat, &[s]);
}

const ROOM_A: &str = "/chat/a/message/";
const ROOM_B: &str = "/chat/b/message/";

/// Every transport the chat offers, each on its own servers, as a collection by default (it
/// has a weak ETag from Express, but its value is a list and it has `changes` links):
/// `changes` polled, `changes-wait` (one room: several long-polls meet the listener bug),
/// `multiplex-ws` and `auto` for two rooms in one process.
#[test]
fn chat_each_transport() {
    each_alone(
        vec![
            forced("chat changes", "changes", &[ROOM_A]).with(&["--interval", "0.3"]),
            forced("chat changes-wait", "changes-wait", &[ROOM_A]),
            forced("chat multiplex-ws x2", "multiplex-ws", &[ROOM_A, ROOM_B]),
            spec(
                "chat auto x2",
                &[],
                &[ROOM_A, ROOM_B],
                &["multiplex-ws", "changes-wait"],
            ),
        ],
        chat_scenario,
    );
}

/// As users do: a long-poll beside a WebSocket client on one chat server; the long-poll's end
/// drops the WebSocket's listener, and `--verify 2` must notice. Fails without `--verify`.
#[test]
fn chat_changes_wait_beside_multiplex_ws_with_verify() {
    let Some(dir) = interop_dir() else { return };
    let servers = Interop::start(&dir);
    let mut watches = chats(
        &servers.chat,
        &[
            forced("changes-wait a", "changes-wait", &[ROOM_A]).with(&["--verify", "2"]),
            forced("multiplex-ws a b", "multiplex-ws", &[ROOM_A, ROOM_B]).with(&["--verify", "2"]),
        ],
    );
    some_warned(&mut watches);
}

// ---------------------------------------------------------------------------------------------
// The test server (form B): `/test` changes every 3 s, `/test2` every 10 s; pushes of a time
// that is a multiple of 30 are dropped (unless `reliable`).

/// How long a resource of the test server may take to show a change: its period plus slack.
fn period(uri: &str) -> Duration {
    if uri.contains("/test2") {
        Duration::from_secs(14)
    } else {
        Duration::from_secs(7)
    }
}

/// Every URI's printed time reaches the server's, and is not newer than the server's.
fn settle_time(w: &mut Watch) {
    for u in w.uris.clone() {
        let target = server_time(&u);
        w.until(
            &format!("{u}: the server's time {target}"),
            period(&u),
            |w| w.last[&u] >= target,
        );
        let now = server_time(&u);
        let printed = w.last[&u];
        if printed > now {
            w.fail(&format!(
                "{u}: {printed} printed, but the server's time is {now}"
            ));
        }
    }
}

/// Follows the test server's resources: two changes of `/test`, one of `/test2` (times
/// strictly increasing; for a changes feed, deltas adding up), then the server's time.
fn follow_time(servers: &Interop, s: Spec, shape: Shape) {
    let mut w = s.watch(&servers.test, shape);
    w.initial();
    for u in w.uris.clone() {
        // `/test2` changes every 10 s and one push in three is dropped (noticed at the next):
        // its first change may take 20 s to show.
        let (n, bound) = if u.contains("/test2") {
            (1, Duration::from_secs(24))
        } else {
            (2, Duration::from_secs(14))
        };
        w.until(&format!("{u}: {n} changes"), bound, |w| w.changes[&u] >= n);
    }
    settle_time(&mut w);
    w.used(&s.allowed);
    if w.warned() {
        servers.warned.store(true, Ordering::SeqCst);
    }
}

fn time_scenario(servers: &Interop, s: Spec) {
    follow_time(servers, s, Shape::Time);
}

fn feed_scenario(servers: &Interop, s: Spec) {
    follow_time(servers, s, Shape::TimeFeed);
}

/// Time values or a changes feed, by the spec's `--changes`.
fn time_or_feed(servers: &Interop, s: Spec) {
    if s.args.contains(&"--changes") {
        feed_scenario(servers, s)
    } else {
        time_scenario(servers, s)
    }
}

/// Transports that keep no long-poll, side by side on one server (these do not disturb each
/// other): the streams, the socket, `changes` polled, and `auto`.
#[test]
fn test_server_streams_side_by_side() {
    together(
        vec![
            forced("value-stream", "value-stream", &["/test"]),
            forced("hint-stream", "hint-stream", &["/test"]),
            forced("multiplex-socket", "multiplex-socket", &["/test"]),
            forced("changes-stream", "changes-stream", &["/test"]).with(&["--changes"]),
            forced("changes polled", "changes", &["/test"]).with(&["--changes", "--interval", "1"]),
            spec(
                "auto",
                &[],
                &["/test"],
                &[
                    "value-stream",
                    "multiplex-socket",
                    "value-wait",
                    "hint-stream",
                    "multiplex-wait",
                ],
            ),
        ],
        time_or_feed,
    );
}

/// The long-polls, each on its own server (see the `--verify` test for them side by side);
/// `types=` makes the server offer only that mechanism. The test server keys multiplexed
/// answers by path: asked for `/test?types=multiplex-wait`, it answers `{"/test": …}`.
#[test]
fn test_server_long_polls_each_alone() {
    each_alone(
        vec![
            forced("value-wait", "value-wait", &["/test?types=value-wait"]),
            forced("changes-wait", "changes-wait", &["/test"]).with(&["--changes"]),
            forced(
                "multiplex-wait /test /test2",
                "multiplex-wait",
                &["/test?types=multiplex-wait", "/test2?types=multiplex-wait"],
            ),
            spec(
                "auto, only multiplex-wait offered",
                &[],
                &["/test?types=multiplex-wait"],
                &["multiplex-wait"],
            ),
        ],
        time_or_feed,
    );
}

/// Reliable streams (`?reliable`: the stream opens with the current value, which is no change),
/// and `/test` with `/test2` in one process (multiplexed when the transport allows).
#[test]
fn test_server_reliable_and_two_resources() {
    together(
        vec![
            spec(
                "auto reliable",
                &[],
                &["/test?reliable"],
                &["value-stream", "multiplex-socket"],
            ),
            forced("value-stream reliable", "value-stream", &["/test?reliable"]),
            forced(
                "changes-stream reliable",
                "changes-stream",
                &["/test?reliable"],
            )
            .with(&["--changes"]),
            spec(
                "auto /test /test2",
                &[],
                &["/test", "/test2"],
                &[
                    "value-stream",
                    "multiplex-socket",
                    "value-wait",
                    "hint-stream",
                    "multiplex-wait",
                ],
            ),
            forced(
                "multiplex-socket /test /test2",
                "multiplex-socket",
                &["/test", "/test2"],
            ),
        ],
        time_or_feed,
    );
}

/// As users do: long-polls beside streams on one server. Each answered long-poll makes the
/// server remove another client's listener; `--verify 2` must notice. Fails without `--verify`.
#[test]
fn test_server_long_polls_beside_streams_with_verify() {
    let v = ["--verify", "2"];
    let servers = together(
        vec![
            forced("value-wait", "value-wait", &["/test"]).with(&v),
            forced("changes-wait", "changes-wait", &["/test"]).with(&[
                "--changes",
                "--verify",
                "2",
            ]),
            forced("multiplex-wait", "multiplex-wait", &["/test"]).with(&v),
            forced("value-stream", "value-stream", &["/test"]).with(&v),
            forced("multiplex-socket", "multiplex-socket", &["/test"]).with(&v),
        ],
        time_or_feed,
    );
    if let Some(servers) = servers {
        assert!(
            servers.warned.load(Ordering::SeqCst),
            "no process warned {MISSED:?}, though the server dropped a subscriber"
        );
    }
}

/// The one long scenario: across a time that is a multiple of 30, whose push the server drops
/// on every unreliable push transport. The gap must be noticed (`Previous-ETag` names a value
/// never received: `-v` says so) and nothing lost (a changes feed's deltas still add up).
#[test]
fn test_server_dropped_push_is_noticed() {
    fn across_a_drop(servers: &Interop, s: Spec) {
        let feed = s.args.contains(&"--changes");
        let mut w = s.watch(
            &servers.test,
            if feed { Shape::TimeFeed } else { Shape::Time },
        );
        w.initial();
        let u = w.uris[0].clone();
        let start = w.last[&u];
        let dropped = (start / 30 + 1) * 30;
        w.until(
            &format!("{u}: a time after the dropped push of {dropped}"),
            Duration::from_secs((dropped + 3 - start) as u64) + Duration::from_secs(8),
            |w| w.last[&u] > dropped,
        );
        if s.name == "value-stream" {
            // The push after the dropped one names it as its Previous-ETag: only a gap
            // noticed mentions that ETag, which was never received.
            let quoted = format!("\"{dropped}\"");
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut seen = false;
            while !seen && Instant::now() < deadline {
                let text = w.run.stderr_text();
                seen = text.contains(&quoted);
            }
            if !seen {
                w.fail(&format!(
                    "-v never mentions the dropped push's ETag {quoted}: the gap went unnoticed"
                ));
            }
        }
        settle_time(&mut w);
        w.used(&s.allowed);
    }
    together(
        vec![
            forced("value-stream", "value-stream", &["/test"]),
            forced("multiplex-socket", "multiplex-socket", &["/test"]),
            forced("hint-stream", "hint-stream", &["/test"]),
            forced("changes-stream", "changes-stream", &["/test"]).with(&["--changes"]),
        ],
        across_a_drop,
    );
}

// ---------------------------------------------------------------------------------------------
// `lrwatch check` against each server: no false FAIL on what they do right, and their real
// faults found at the level the texts give them, with the evidence.

/// `lrwatch check --json` against `url`, with `trigger`: its exit code and report.
fn check_report(url: &str, trigger: &str) -> (Option<i32>, Value) {
    let mut run = lrwatch(&[
        "check",
        "--json",
        "--budget",
        "50",
        "--trigger",
        trigger,
        url,
    ]);
    let line = run
        .try_line(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("check {url}: no report in 60 s: {}", run.stderr_text()));
    let code = run.wait().code();
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (code, report)
}

/// The (requirement, mechanism) pairs with this outcome.
fn outcomes(report: &Value, outcome: &str) -> HashSet<(String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| {
            (
                r["requirement"].as_str().unwrap().to_string(),
                r["mechanism"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> HashSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The one finding for `requirement` over `mechanism`.
fn finding<'a>(report: &'a Value, requirement: &str, mechanism: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["requirement"] == requirement && r["mechanism"].as_str().unwrap_or("") == mechanism
        })
        .unwrap_or_else(|| panic!("no {requirement} over {mechanism:?}: {report:#}"))
}

/// Each server once, all three at once (separate processes that share no listeners): what
/// check finds must be exactly their known faults (see ../shared/interop/README.md), each at
/// its level and with its evidence, and every transport each does right must deliver.
#[test]
fn check_finds_exactly_the_servers_real_faults() {
    let Some(dir) = interop_dir() else { return };
    let servers = Arc::new(Interop::start(&dir));
    let counter = format!("{}/counter/check/", servers.counter);
    let chat = format!("{}/chat/check/message/", servers.chat);
    let test = format!("{}/test", servers.test);
    // A room with a message already: the plugin holds a value-wait only on an empty one.
    post_message(&chat, "check", "first");
    let runs = vec![
        (counter.clone(), format!("curl -s -X POST {counter}")),
        (
            chat.clone(),
            format!("curl -s -X POST -d from=check -d text=hello {chat}"),
        ),
        // /test changes by itself every 3 s: the trigger only marks when to listen.
        (test.clone(), "true".to_string()),
    ];
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(url, trigger)| std::thread::spawn(move || check_report(&url, &trigger)))
        .collect();
    let mut results = handles.into_iter().map(|h| h.join().unwrap());
    let (counter_code, counter_report) = results.next().unwrap();
    let (chat_code, chat_report) = results.next().unwrap();
    let (test_code, test_report) = results.next().unwrap();

    // Every server loses a push subscriber when another client's long-poll ends: a MUST
    // broken, shown with both clients' exchanges.
    for (name, code, report, over) in [
        ("counter", counter_code, &counter_report, "multiplex-ws"),
        ("chat", chat_code, &chat_report, "multiplex-ws"),
        ("test", test_code, &test_report, "multiplex-socket"),
    ] {
        assert_eq!(code, Some(1), "{name}: {report:#}");
        assert_eq!(
            outcomes(report, "fail"),
            pairs(&[("survives-other-clients", over)]),
            "{name}: {report:#}"
        );
        let lost = finding(report, "survives-other-clients", over);
        assert_eq!(lost["level"], "MUST", "{lost:#}");
        assert!(
            lost["request"].as_str().unwrap().contains("another client"),
            "{lost:#}"
        );
        assert!(
            lost["response"].as_str().unwrap().contains("HTTP "),
            "{lost:#}"
        );
        // ... while alone, the same transport delivered.
        assert_eq!(
            finding(report, "change-delivered", over)["outcome"],
            "pass",
            "{name}: {report:#}"
        );
        assert!(
            report["took"].as_f64().unwrap() < 50.0,
            "{name}: {report:#}"
        );
    }

    // The counter: nothing else wrong; every transport delivers.
    assert!(
        outcomes(&counter_report, "warn").is_empty(),
        "{counter_report:#}"
    );
    let delivered = outcomes(&counter_report, "pass");
    for m in ["value-wait", "multiplex-ws"] {
        assert!(
            delivered.contains(&("change-delivered".into(), m.into())),
            "{counter_report:#}"
        );
    }

    // The chat: pushes one message, not the list, to a value subscription (a SHOULD at most),
    // and answers its value-wait at once with 304 (curl shows the same: the plugin holds a
    // value-wait only on an empty collection). Its changes long-poll is held and delivers.
    assert_eq!(
        outcomes(&chat_report, "warn"),
        pairs(&[
            ("push-is-value", "multiplex-ws"),
            ("long-poll-held", "value-wait")
        ]),
        "{chat_report:#}"
    );
    let single = finding(&chat_report, "push-is-value", "multiplex-ws");
    assert!(
        single["response"]
            .as_str()
            .unwrap()
            .contains("\"text\":\"hello\""),
        "{single:#}"
    );
    let delivered = outcomes(&chat_report, "pass");
    for (r, m) in [
        ("change-delivered", "changes-wait"),
        ("change-delivered", "multiplex-ws"),
        ("long-poll-held", "changes-wait"),
        ("changes-advance", "changes"),
    ] {
        assert!(
            delivered.contains(&(r.into(), m.into())),
            "{r} {m}: {chat_report:#}"
        );
    }

    // The test server: labels its JSON text/html (a SHOULD), on the resource and the
    // multiplexed answer; every push transport delivers (a dropped push is allowed: the
    // next one, 3 s later, carries Previous-ETag), and so does every long-poll.
    assert_eq!(
        outcomes(&test_report, "warn"),
        pairs(&[("content-type", ""), ("content-type", "multiplex-wait")]),
        "{test_report:#}"
    );
    let label = finding(&test_report, "content-type", "");
    assert!(
        label["response"].as_str().unwrap().contains("text/html"),
        "{label:#}"
    );
    let delivered = outcomes(&test_report, "pass");
    for m in [
        "value-wait",
        "changes-wait",
        "multiplex-wait",
        "value-stream",
        "hint-stream",
        "changes-stream",
        "multiplex-socket",
    ] {
        assert!(
            delivered.contains(&("change-delivered".into(), m.into())),
            "{m}: {test_report:#}"
        );
    }
    assert!(delivered.contains(&("multiplex-body".into(), "multiplex-wait".into())));
    // Asked before its 3 s tick, its changes link answers `{"time:change":"+0"}` with a link
    // back to the same checkpoint: "nothing since", then the change with the next checkpoint.
    assert!(
        delivered.contains(&("changes-advance".into(), "changes".into())),
        "{test_report:#}"
    );
    // What makes its dropped pushes allowed: every update names the one before it.
    for m in ["value-stream", "changes-stream"] {
        assert!(
            delivered.contains(&("gap-markers".into(), m.into())),
            "{m}: {test_report:#}"
        );
    }
}
