//! Headless Chromium driven over its DevTools protocol with tungstenite (no WebDriver, no new
//! dependency): start it, load pages, evaluate JavaScript, every wait bounded. The browser runs
//! in a process group of its own, killed whole when the driver is dropped, so no renderer is
//! left behind by a failing test.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::harness::{have, BOUND};

/// Chromium's start-up on a loaded machine can take a while; longer than any other wait.
const STARTUP: Duration = Duration::from_secs(30);

/// One headless browser with one page, and the DevTools connection to that page.
pub struct Chromium {
    child: Child,
    dir: PathBuf,
    page: WebSocket<TcpStream>,
    next_id: u64,
}

impl Chromium {
    /// Starts the browser, or `None` (with a message, or a failure under CI) when there is none.
    pub fn start(needed_for: &str) -> Option<Chromium> {
        if !have("chromium", needed_for) {
            return None;
        }
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lrwatch-chromium-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("start chromium");
        // From here on a panic drops the half-built driver's parts: kill by hand until built.
        let mut guard = Guard(Some(child), dir.clone());
        let port = wait_for_port(&dir, guard.0.as_mut().unwrap());
        let page_url = page_socket(port);
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("DevTools' port");
        tcp.set_read_timeout(Some(BOUND)).unwrap();
        let (page, _) = tungstenite::client(page_url.as_str(), tcp)
            .unwrap_or_else(|e| panic!("the page's DevTools socket: {e}"));
        let child = guard.0.take().unwrap();
        Some(Chromium {
            child,
            dir,
            page,
            next_id: 0,
        })
    }

    /// Sends one DevTools command and returns its result, skipping events in between.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.page.send(Message::text(message)).unwrap();
        let deadline = Instant::now() + BOUND * 2;
        loop {
            let reply = self.read(deadline, method);
            if reply["id"] == json!(id) {
                if let Some(error) = reply.get("error") {
                    panic!("{method}: {error}");
                }
                return reply["result"].clone();
            }
        }
    }

    fn read(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer to {waiting_for} within the bound"
            );
            match self.page.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(&t).unwrap(),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("the DevTools socket failed waiting for {waiting_for}: {e}"),
            }
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.enable", json!({}));
        let result = self.call("Page.navigate", json!({ "url": url }));
        assert!(result.get("errorText").is_none(), "{url}: {result}");
        let deadline = Instant::now() + BOUND;
        loop {
            let event = self.read(deadline, "Page.loadEventFired");
            if event["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting it when it is a promise); its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits, inside the page, until `condition` (a JavaScript expression) is truthy, at most
    /// `within`; its value then, or `None` when the time ran out. The page checks on its own
    /// timers, so the test sleeps on one answer rather than polling over the socket.
    pub fn wait_for(&mut self, condition: &str, within: Duration) -> Option<Value> {
        let ms = within.as_millis();
        let script = format!(
            "new Promise(ok => {{ const end = Date.now() + {ms}; (function check() {{ \
             let v; try {{ v = ({condition}); }} catch (e) {{ v = undefined; }} \
             if (v) ok(v); else if (Date.now() > end) ok(null); else setTimeout(check, 10); \
             }})(); }})"
        );
        let value = self.eval(&script);
        (!value.is_null()).then_some(value)
    }
}

/// Waits for Chromium to write the port it listens on (`DevToolsActivePort`, first line).
fn wait_for_port(dir: &std::path::Path, child: &mut Child) -> u16 {
    let file = dir.join("DevToolsActivePort");
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return port;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("chromium exited at start-up: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "chromium wrote no DevToolsActivePort within {STARTUP:?}"
        );
        // The file is written once, by another process: there is no event to wait on.
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The DevTools WebSocket URL of the browser's first page.
fn page_socket(port: u16) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(BOUND))
        .build()
        .into();
    let list: Value = serde_json::from_str(
        &agent
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .call()
            .expect("the DevTools target list")
            .into_body()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    list.as_array()
        .and_then(|targets| targets.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .unwrap_or_else(|| panic!("no page among the DevTools targets: {list}"))
        .to_owned()
}

/// Kills the browser's whole process group (by its id: the group is the browser's own) and
/// reaps it, then removes its profile.
fn kill(child: &mut Child, dir: &std::path::Path) {
    #[cfg(unix)]
    if let Ok(group) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative id signals that process group; no memory involved.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

/// The browser while the driver is being built.
struct Guard(Option<Child>, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            kill(child, &self.1);
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        kill(&mut self.child, &self.dir);
    }
}
