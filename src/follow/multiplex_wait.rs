//! The `multiplex-wait` / `multiplex-request` hub: one long-poll for every resource that shares
//! the endpoint. Resources are named in both request forms for `multiplex-wait` (form A's
//! query, forms B/C's `Uri` headers) and in the header form for `multiplex-request`; the
//! answer's members carry JSON bodies (A) or content strings (B, C); a 304 member is no news.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::hub::{HubEvent, HubInput, Members};
use super::{Push, Shared, DEFAULT_INTERVAL};
use crate::backoff::Backoff;
use crate::wire::multiplex::{encode_uri_header, parse_answer, Member, Target};

/// How long to gather subscribers that arrive together before the first request.
const GATHER: Duration = Duration::from_millis(20);

/// Runs the hub until following stops.
pub(super) fn run(shared: &Shared, rel: &str, endpoint: &Url, input: &Receiver<HubInput>) {
    let mut members = Members::new(endpoint);
    let mut backoff = Backoff::default();
    let wait = shared.options.long_poll_wait();
    let requested = Duration::from_secs(wait);
    let pace = shared.options.interval.unwrap_or(DEFAULT_INTERVAL);
    loop {
        if shared.shutdown.is_set() {
            return;
        }
        if members.by_url.is_empty() {
            match input.recv() {
                Ok(input) => take(&mut members, input),
                Err(_) => return,
            }
            // Resources discovered together join within moments: gather them into the first
            // request rather than making the late ones wait out a whole long-poll.
            while let Ok(input) = input.recv_timeout(GATHER) {
                take(&mut members, input);
            }
        }
        while let Ok(input) = input.try_recv() {
            take(&mut members, input);
        }
        if members.by_url.is_empty() {
            continue;
        }
        let targets: Vec<Target> = members
            .by_url
            .values()
            .map(|m| Target {
                uri: m.name.clone(),
                // A changes URI names its own checkpoint: no validator.
                if_none_match: if m.changes { None } else { m.etag.clone() },
            })
            .collect();
        let mut url = endpoint.clone();
        if rel != "multiplex-request" {
            super::hub::set_targets(&mut url, &targets);
        }
        let mut headers: Vec<(&str, String)> = targets
            .iter()
            .map(|t| ("Uri", encode_uri_header(t)))
            .collect();
        headers.push(("Wait", wait.to_string()));
        headers.push(("Prefer", format!("wait={wait}")));
        let origin = members.on_behalf_of();
        let started = Instant::now();
        let answer = shared.http.get(
            &url,
            &origin,
            &headers,
            requested + super::wait_slack(requested),
        );
        let took = started.elapsed();
        let news = match answer {
            Ok(response) if response.status == 200 => {
                let delivered = parse_answer(&String::from_utf8_lossy(&response.body))
                    .map_err(|e| e.to_string())
                    .and_then(|answer| deliver(&mut members, endpoint, answer));
                match delivered {
                    Ok(news) => {
                        backoff.reset();
                        news
                    }
                    Err(reason) => {
                        fail(shared, &mut members, &mut backoff, &reason);
                        continue;
                    }
                }
            }
            Ok(response) if response.status == 304 => {
                backoff.reset();
                false
            }
            Ok(response) => {
                fail(
                    shared,
                    &mut members,
                    &mut backoff,
                    &format!("HTTP {} from {endpoint}", response.status),
                );
                continue;
            }
            Err(e) => {
                fail(shared, &mut members, &mut backoff, &e.to_string());
                continue;
            }
        };
        // A server that answers at once with no news must not make this spin.
        if !news && (wait == 0 || took < requested / 2) && !shared.shutdown.sleep(pace) {
            return;
        }
    }
}

fn take(members: &mut Members, input: HubInput) {
    match input {
        HubInput::Subscribe(sub) => {
            // Joining is being connected: the next long-poll includes this resource, and the
            // follower catches up now for anything between its discovery and that poll.
            let member = members.add(sub);
            let _ = Arc::clone(&member.inbox).send(HubEvent::Connected);
        }
        HubInput::Unsubscribe(url) => {
            members.remove(url.as_str());
        }
        _ => {}
    }
}

/// Hands each member of an answer to its follower; whether there was news. An answer
/// whose members all name something not asked for is an error: asking again would get the
/// same answer, again and again, while the followers hear nothing.
fn deliver(
    members: &mut Members,
    endpoint: &Url,
    answer: Vec<(String, Member)>,
) -> Result<bool, String> {
    let mut unknown = Vec::new();
    let matched: Vec<(String, Member)> = answer
        .into_iter()
        .filter_map(|(uri, member)| match members.key_for(&uri) {
            Some(key) => Some((key, member)),
            None => {
                // Shown in a message: a server's name is kept short.
                unknown.push(uri.chars().take(200).collect::<String>());
                None
            }
        })
        .collect();
    if matched.is_empty() && !unknown.is_empty() {
        const SHOWN: usize = 3;
        let more = unknown.len().saturating_sub(SHOWN);
        unknown.truncate(SHOWN);
        let mut named = unknown.join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        return Err(format!(
            "{endpoint} answered for {named}, which names nothing asked ({})",
            members.asked()
        ));
    }
    let mut news = false;
    for (key, member) in matched {
        let push = match member.code {
            200..=299 => {
                let etag = member.header("ETag").map(str::to_string);
                let content_type = member.header("Content-Type").map(str::to_string);
                let bytes = match &member.body {
                    // Forms B and C carry the content as a string; form A the value itself.
                    Value::String(content) => content.clone().into_bytes(),
                    value => value.to_string().into_bytes(),
                };
                let changes = members.by_url.get(&key).is_some_and(|m| m.changes);
                if changes {
                    // Ask from the next checkpoint from now on.
                    let links = member
                        .headers
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case("link"))
                        .map(|(_, v)| v.as_str());
                    if let Some(next) =
                        crate::link::parse_link_headers(links, endpoint).find("changes")
                    {
                        members.rename(&key, super::hub::uri_for(endpoint, &next.target));
                    }
                } else if let Some(m) = members.by_url.get_mut(&key) {
                    m.etag.clone_from(&etag);
                }
                Push {
                    etag,
                    previous_etag: None,
                    body: Some((bytes, content_type)),
                    headers: member.headers.clone(),
                }
            }
            404 | 410 => {
                if let Some(m) = members.by_url.get_mut(&key) {
                    m.etag = None;
                }
                Push::default()
            }
            _ => continue,
        };
        news = true;
        members.send(&key, HubEvent::Push(Box::new(push)));
    }
    Ok(news)
}

fn fail(shared: &Shared, members: &mut Members, backoff: &mut Backoff, reason: &str) {
    let delay = backoff.next_delay();
    let failures = backoff.failures();
    members.broadcast(|| HubEvent::Down {
        reason: reason.to_string(),
        failures,
    });
    shared.shutdown.sleep(delay);
}
