//! The reference server in a real browser (headless Chromium, see `chromium.rs`): the live page
//! follows changes made over HTTP, and a page of another origin follows `/counter/a` and
//! `/items/` through `EventSource` and `fetch` long-polls, which only CORS allows. Skipped
//! with a message when Chromium is missing; a failure under CI.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::chromium::Chromium;
use crate::harness::{agent, lrwatch, read_head, reference_server, respond, Run, BOUND};

/// How soon a change must show on a page: the issue's "within a second".
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

fn add_item(base: &str, text: &str) {
    let r = agent()
        .post(format!("{base}/items/"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({ "text": text }).to_string())
        .unwrap();
    assert_eq!(r.status(), 201);
}

fn increment(base: &str) {
    let r = agent()
        .post(format!("{base}/counter/a"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A JavaScript expression for one section of the live page.
fn section(uri: &str) -> String {
    format!("document.querySelector('section[data-uri=\"{uri}\"]')")
}

#[test]
fn the_live_page_follows_changes_made_over_http() {
    let Some(mut browser) = Chromium::start("the live page's test") else {
        return;
    };
    let base = reference_server();
    browser.navigate(&format!("{base}/"));
    let (counter, items, time) = (section("/counter/a"), section("/items/"), section("/time"));
    let live = |s: &str| format!("{s}.querySelector('.state').classList.contains('live')");
    let value = |s: &str| format!("{s}.querySelector('.value').textContent");
    let ready = format!(
        "{} && {} && {} && {} === '0'",
        live(&counter),
        live(&items),
        live(&time),
        value(&counter)
    );
    assert!(
        browser.wait_for(&ready, BOUND).is_some(),
        "the page did not go live: {}",
        browser.eval("document.body.innerText")
    );
    let offers = browser.eval(&format!(
        "{counter}.querySelector('.mechanisms').textContent"
    ));
    let offers = offers.as_str().unwrap();
    for rel in [
        "value-wait",
        "value-stream",
        "multiplex-ws",
        "LiveResource-Property",
    ] {
        assert!(offers.contains(rel), "{rel} in {offers}");
    }

    // A change made over HTTP, as with curl, shows within a second.
    let started = Instant::now();
    increment(&base);
    let shown = browser.wait_for(&format!("{} === '1'", value(&counter)), SHOWN_WITHIN);
    assert!(
        shown.is_some(),
        "/counter/a did not show 1 within {SHOWN_WITHIN:?}: {}",
        browser.eval(&value(&counter))
    );
    eprintln!("a change showed on the page after {:?}", started.elapsed());
    add_item(&base, "from curl <b>not bold</b>");
    let listed = format!(
        "{items}.querySelector('ul.items').textContent.includes('from curl <b>not bold</b>')"
    );
    assert!(
        browser.wait_for(&listed, SHOWN_WITHIN).is_some(),
        "the item did not show: {}",
        browser.eval(&format!("{items}.textContent"))
    );
    // Markup from a client is text, never HTML.
    assert_eq!(
        browser.eval(&format!("{items}.querySelectorAll('ul.items b').length")),
        0
    );

    // The page's own buttons change the server, and the change comes back through the stream.
    browser.eval("document.getElementById('increment').click()");
    assert!(browser
        .wait_for(&format!("{} === '2'", value(&counter)), BOUND)
        .is_some());
    let counter_now: u64 = agent()
        .get(format!("{base}/counter/a"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counter_now, 2);
    browser.eval(
        "(() => { const f = document.getElementById('add'); f.elements.text.value = 'typed'; \
         f.requestSubmit(); return true; })()",
    );
    let typed = format!("{items}.querySelector('ul.items').textContent.includes('typed')");
    assert!(browser.wait_for(&typed, BOUND).is_some());
    let list = agent()
        .get(format!("{base}/items/"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(list.contains("\"typed\""), "{list}");
    // The clock ticks on its own.
    let first = browser.eval(&value(&time));
    let ticked = format!("{} !== {first}", value(&time));
    assert!(browser.wait_for(&ticked, Duration::from_secs(3)).is_some());
}

#[test]
fn the_live_page_follows_forms_b_and_c_too() {
    let Some(mut browser) = Chromium::start("the live page's test") else {
        return;
    };
    let base = reference_server();
    let counter = section("/counter/a");
    let value = format!("{counter}.querySelector('.value').textContent");
    for (n, form) in ["b", "c"].into_iter().enumerate() {
        browser.navigate(&format!("{base}/?form={form}"));
        let ready = format!(
            "{counter}.querySelector('.state').textContent === 'live: EventSource' && {value} === '{n}'"
        );
        assert!(
            browser.wait_for(&ready, BOUND).is_some(),
            "form {form}: {}",
            browser.eval("document.body.innerText")
        );
        increment(&base);
        let shown = format!("{value} === '{}'", n + 1);
        assert!(
            browser.wait_for(&shown, BOUND).is_some(),
            "form {form}: {}",
            browser.eval(&value)
        );
    }
}

/// A page of another origin that follows `/counter/a` and `/items/` of the server named by its
/// `?base=`: through `EventSource` on the streams its `Link` headers name, and through `fetch`
/// long-polls (`If-None-Match` and `Wait`; the changes link with `Wait`). What it sees goes
/// into `window.seen`.
const OTHER_ORIGIN_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>a client</title>
<script>
"use strict";
const base = new URLSearchParams(location.search).get("base");
const seen = window.seen = { counterStream: [], counterPoll: [], itemsStream: [], itemsPoll: [],
  errors: [], etag: null, linksRead: 0, open: 0, closed: 0 };
function linkTarget(header, rel) {
  for (const part of (header || "").split(/,\s*(?=<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && new RegExp('rel="([^"]* )?' + rel + '( [^"]*)?"').test(m[2]) && !/mode=/.test(m[2]))
      return new URL(m[1], base).href;
  }
  return null;
}
function stream(url, list) {
  const s = new EventSource(url);
  s.onopen = () => seen.open++;
  s.onerror = () => { if (s.readyState === EventSource.CLOSED) seen.closed++; };
  s.onmessage = e => list.push(JSON.parse(e.data));
}
async function counter() {
  let r;
  try { r = await fetch(base + "/counter/a"); }
  catch (e) { seen.errors.push("counter: " + e); stream(base + "/counter/a?stream=value", seen.counterStream); return; }
  let etag = seen.etag = r.headers.get("ETag");
  const valueStream = linkTarget(r.headers.get("Link"), "value-stream");
  if (valueStream) seen.linksRead++;
  stream(valueStream || base + "/counter/a?stream=value", seen.counterStream);
  for (let i = 0; i < 50; i++) {
    const r = await fetch(base + "/counter/a", { headers: { "If-None-Match": etag, "Wait": "20" } });
    if (r.status === 200) { etag = r.headers.get("ETag"); seen.counterPoll.push(await r.json()); }
  }
}
async function items() {
  let r;
  try { r = await fetch(base + "/items/"); }
  catch (e) { seen.errors.push("items: " + e); stream(base + "/items/?stream=changes", seen.itemsStream); return; }
  const link = r.headers.get("Link");
  const changesStream = linkTarget(link, "changes-stream");
  let next = linkTarget(link, "changes-wait");
  if (changesStream && next) seen.linksRead++;
  stream(changesStream, seen.itemsStream);
  for (let i = 0; i < 50 && next; i++) {
    const r = await fetch(next, { headers: { "Wait": "20" } });
    const changes = await r.json();
    if (changes.length) seen.itemsPoll.push(changes);
    next = linkTarget(r.headers.get("Link"), "changes-wait");
  }
}
counter().catch(e => seen.errors.push("counter: " + e));
items().catch(e => seen.errors.push("items: " + e));
</script>"#;

/// A tiny server on another loopback port that serves only `OTHER_ORIGIN_PAGE`; its origin.
fn other_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some(seen) = read_head(&stream) else {
                continue;
            };
            if seen.path.starts_with("/?") {
                let headers = [("Content-Type", "text/html; charset=utf-8")];
                respond(&stream, 200, &headers, OTHER_ORIGIN_PAGE);
            } else {
                respond(&stream, 404, &[], "");
            }
        }
    });
    origin
}

/// `lrwatch serve` (the binary) with `extra` options; the run and its base URL.
fn serve(extra: &[&str]) -> (Run, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut run = lrwatch(&args);
    let line = run.line();
    let base = line.strip_prefix("listening on ").unwrap().to_owned();
    (run, base)
}

fn open_client(browser: &mut Chromium, base: &str) {
    let origin = other_origin();
    assert_ne!(origin, base);
    browser.navigate(&format!("{origin}/?base={base}"));
}

#[test]
fn a_page_of_another_origin_follows_the_server() {
    let Some(mut browser) = Chromium::start("the cross-origin test") else {
        return;
    };
    let (_server, base) = serve(&[]);
    open_client(&mut browser, &base);
    let both_open = browser.wait_for("seen.open === 2 && seen.linksRead === 2", BOUND);
    assert!(
        both_open.is_some(),
        "{}",
        browser.eval("JSON.stringify(seen)")
    );
    // The protocol's headers are readable by the script.
    assert_eq!(browser.eval("seen.etag"), "\"0\"");
    increment(&base);
    add_item(&base, "cross-origin");
    let all = "seen.counterStream.includes(1) && seen.counterPoll.includes(1) \
               && JSON.stringify(seen.itemsStream).includes('cross-origin') \
               && JSON.stringify(seen.itemsPoll).includes('cross-origin')";
    assert!(
        browser.wait_for(all, BOUND).is_some(),
        "{}",
        browser.eval("JSON.stringify(seen)")
    );
    assert_eq!(browser.eval("seen.errors.length"), 0);
}

#[test]
fn without_cors_the_same_page_is_refused() {
    let Some(mut browser) = Chromium::start("the cross-origin test") else {
        return;
    };
    let (_server, base) = serve(&["--cors", "off"]);
    open_client(&mut browser, &base);
    let refused = browser.wait_for("seen.errors.length === 2 && seen.closed === 2", BOUND);
    assert!(
        refused.is_some(),
        "{}",
        browser.eval("JSON.stringify(seen)")
    );
    // The server itself is fine and changes; the page just may not read it.
    increment(&base);
    add_item(&base, "unseen");
    let seen = browser.eval("JSON.stringify(seen)");
    let seen: serde_json::Value = serde_json::from_str(seen.as_str().unwrap()).unwrap();
    for list in ["counterStream", "counterPoll", "itemsStream", "itemsPoll"] {
        assert_eq!(seen[list], serde_json::json!([]), "{list}: {seen}");
    }
    assert_eq!(seen["open"], 0, "{seen}");
}
