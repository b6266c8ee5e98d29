//! What every resource should get right before any mechanism: well-formed links, an `ETag`
//! that names the content (stable while it does not change), and 304 on a matching
//! `If-None-Match`; JSON labelled as JSON.

use super::{json_label, Exchange, Finding, Probe, ProbeEnv, Requirement, REQUEST_TIMEOUT};
use crate::mechanism::Mechanism;

/// Links, `ETag` present and stable, 304.
pub(super) fn probe(env: &ProbeEnv, _probe: &mut Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let discovery = Exchange::new("GET", &env.url, &[]).with_response(&env.first);
    let errors = &env.caps.links.errors;
    out.push(if errors.is_empty() {
        Finding::pass(
            Requirement::Links,
            None,
            format!("{} links", env.caps.links.links.len()),
        )
    } else {
        Finding::fail(
            Requirement::Links,
            None,
            format!(
                "{} malformed: {}",
                errors.len(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Some(&discovery),
        )
    });
    out.push(json_label(&env.first, None, &discovery));
    let Some(etag) = env.caps.etag.clone() else {
        let collection = env.caps.offer(Mechanism::Changes).is_some();
        if collection {
            let why = "no ETag: the resource is followed by its changes links";
            out.push(Finding::skip(Requirement::EtagPresent, None, why));
            out.push(Finding::skip(Requirement::EtagStable, None, why));
            out.push(Finding::skip(Requirement::NotModified, None, why));
        } else {
            out.push(Finding::fail(
                Requirement::EtagPresent,
                None,
                "the response has no ETag: long-polls and conditional requests need one",
                Some(&discovery),
            ));
            let why = "no ETag";
            out.push(Finding::skip(Requirement::EtagStable, None, why));
            out.push(Finding::skip(Requirement::NotModified, None, why));
        }
        return out;
    };
    out.push(Finding::pass(Requirement::EtagPresent, None, etag.clone()));
    out.push(stable(env, &etag));
    out.push(not_modified(env, &etag));
    out
}

/// Two GETs of unchanged content carry the same ETag. Content that changed in between is a
/// change, not instability: asked again, a few times.
fn stable(env: &ProbeEnv, first: &str) -> Finding {
    let mut previous = (first.to_string(), env.first.body.clone());
    for _ in 0..3 {
        let (result, exchange) = env.get(&env.url, &[], REQUEST_TIMEOUT);
        let response = match result {
            Ok((r, _)) => r,
            Err(why) if env.out_of_budget() => {
                return super::cut_short(Requirement::EtagStable, None, &why, &exchange)
            }
            Err(why) => {
                return Finding::fail(
                    Requirement::EtagStable,
                    None,
                    format!("the second GET failed: {why}"),
                    Some(&exchange),
                )
            }
        };
        let etag = response.header("etag").unwrap_or("").trim().to_string();
        if response.body != previous.1 {
            previous = (etag, response.body);
            continue;
        }
        return Finding::judge(
            Requirement::EtagStable,
            None,
            etag == previous.0,
            if etag == previous.0 {
                format!("{etag} both times")
            } else {
                format!(
                    "the same content came with ETag {} and then {}",
                    previous.0,
                    if etag.is_empty() { "none" } else { &etag }
                )
            },
            Some(&exchange),
        );
    }
    Finding::skip(
        Requirement::EtagStable,
        None,
        "the content changed between every two GETs",
    )
}

/// A GET with `If-None-Match: <etag>` is 304 (unless the content changed in between).
fn not_modified(env: &ProbeEnv, etag: &str) -> Finding {
    let mut etag = etag.to_string();
    for _ in 0..3 {
        let headers = [("If-None-Match", etag.clone())];
        let (result, exchange) = env.get(&env.url, &headers, REQUEST_TIMEOUT);
        let response = match result {
            Ok((r, _)) => r,
            Err(why) if env.out_of_budget() => {
                return super::cut_short(Requirement::NotModified, None, &why, &exchange)
            }
            Err(why) => {
                return Finding::fail(
                    Requirement::NotModified,
                    None,
                    format!("no answer: {why}"),
                    Some(&exchange),
                )
            }
        };
        if response.status == 304 {
            return Finding::pass(Requirement::NotModified, None, "304");
        }
        let now = response.header("etag").unwrap_or("").trim().to_string();
        let changed = response.status == 200 && response.body != env.first.body && now != etag;
        if changed {
            etag = now;
            continue;
        }
        return Finding::fail(
            Requirement::NotModified,
            None,
            format!(
                "answered {} to If-None-Match {etag} for unchanged content",
                response.status
            ),
            Some(&exchange),
        );
    }
    Finding::skip(
        Requirement::NotModified,
        None,
        "the content changed before every conditional GET",
    )
}
