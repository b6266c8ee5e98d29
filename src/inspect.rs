//! `lrwatch inspect`: one request, and everything its answer says about following the
//! resource — validators, links with their relations, the protocol forms they belong to, every
//! mechanism with whether lrwatch could use it, and what `auto` would pick and why. Returns
//! data; the binary renders it.

use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use crate::auto::{self, Situation};
use crate::discovery::Capabilities;
use crate::error::{Error, Result};
use crate::http::{header_text, HttpClient, Response, DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER};
use crate::live::{Answer, Kind};
use crate::mechanism::Mechanism;

/// How long the request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How to make the request.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// Extra request headers (`-H`), sent only to the resource's origin.
    pub headers: Vec<(String, String)>,
    /// Certificate authorities (DER) to trust instead of the bundled roots (`--cacert`).
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// The largest response head accepted, in bytes (`None`: the default, as when following).
    pub max_header: Option<usize>,
}

/// What one response says about following the resource.
#[derive(Debug, Clone)]
pub struct Report {
    /// The URL asked about.
    pub url: Url,
    /// The URL that answered, after redirects: the base of relative links.
    pub final_url: Url,
    /// `HEAD`, or `GET` when HEAD failed.
    pub method: &'static str,
    /// Why GET was used instead of HEAD, when it was.
    pub fallback: Option<String>,
    /// The status of the answer.
    pub status: u16,
    /// Everything the headers advertise.
    pub caps: Capabilities,
    /// Every link, with what each of its relations means.
    pub links: Vec<LinkReport>,
    /// The protocol forms recognised, with the evidence for each.
    pub forms: Vec<FormEvidence>,
    /// Every mechanism lrwatch knows, offered or not, with whether `auto` could use it.
    pub mechanisms: Vec<MechanismReport>,
    /// What `auto` would pick for this resource alone.
    pub auto: AutoReport,
    /// What the URL is: a document (followed over LiveResource or polling), or a live URL
    /// that is followed directly (an event stream, JSON lines).
    pub kind: Kind,
}

/// One link of the answer.
#[derive(Debug, Clone)]
pub struct LinkReport {
    /// The target, resolved against the final URL.
    pub target: Url,
    /// Each relation, with its meaning.
    pub rels: Vec<RelReport>,
    /// The other parameters, as given.
    pub params: Vec<(String, String)>,
}

/// One relation of a link.
#[derive(Debug, Clone)]
pub struct RelReport {
    /// The relation, as the parser normalised it (long form C names reduced to their leaf).
    pub rel: String,
    /// What lrwatch makes of it: the mechanism it advertises, a gap marker, or nothing.
    pub meaning: RelMeaning,
}

/// What a relation means to lrwatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelMeaning {
    /// It advertises this mechanism.
    Mechanism(Mechanism),
    /// A LiveResource relation that is not a mechanism of its own (`prev-changes`), or a
    /// registered one lrwatch ignores here (`alternate` of another type); the text says which.
    Known(&'static str),
    /// Not a relation lrwatch knows: ignored.
    Unknown,
}

/// One of the protocol's three published forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// The 2014 specification.
    A,
    /// The public test server and web page (2016).
    B,
    /// The 2016 draft.
    C,
}

impl Form {
    /// The letter.
    pub fn letter(self) -> &'static str {
        match self {
            Form::A => "A",
            Form::B => "B",
            Form::C => "C",
        }
    }

    /// What the form is.
    pub fn description(self) -> &'static str {
        match self {
            Form::A => "the 2014 specification",
            Form::B => "the 2016 test server and web page",
            Form::C => "the 2016 draft",
        }
    }
}

/// A sign of the forms a response is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormEvidence {
    /// The forms this sign belongs to (one, or several when the forms share it).
    pub forms: Vec<Form>,
    /// The sign, in words.
    pub why: String,
}

/// One mechanism, offered or not.
#[derive(Debug, Clone)]
pub struct MechanismReport {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// Where it is offered (`None` when it is not).
    pub target: Option<Url>,
    /// The relation or property that offered it.
    pub rel: Option<String>,
    /// `mode=reliable` (form B streams).
    pub reliable: bool,
    /// Whether lrwatch could follow the resource over it (with `--transport`, or `auto`).
    pub usable: bool,
    /// Why (not).
    pub reason: String,
    /// Why `auto` may not use it, as data (for a program to say which of its options helps).
    pub unusable: Option<auto::Unusable>,
}

/// `auto`'s pick.
#[derive(Debug, Clone)]
pub struct AutoReport {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// Where its requests go.
    pub target: Url,
    /// Why: the mechanisms passed over, then the pick.
    pub reasons: Vec<String>,
    /// The pick when several resources on this server are followed together.
    pub with_several: Mechanism,
    /// Whether the changes feed is followed rather than the value.
    pub changes: bool,
}

/// Makes one request (HEAD, falling back to GET when HEAD fails or is not answered 2xx) and
/// reports what the answer offers; after a HEAD, a GET tells what kind of URL it is, as
/// following does (a stream's body is not read). An answer that is not 2xx has nothing to report: it is
/// [`Error::Status`].
pub fn inspect(url: &Url, options: &InspectOptions) -> Result<Report> {
    let headers = crate::http::user_headers(&options.headers)?;
    let http = HttpClient::with_trust(
        headers,
        DEFAULT_MAX_BODY,
        options.ca_certs.as_deref(),
        false,
        options.max_header.unwrap_or(DEFAULT_MAX_HEADER),
    );
    let ((response, kind), method, fallback) = match http.head(url, url, &[], TIMEOUT) {
        Ok(r) if (200..300).contains(&r.status) => ((r, Kind::Document), "HEAD", None),
        // Some servers refuse HEAD (405, 501) or route only GET: GET has the last word.
        Ok(r) => {
            let why = format!("HEAD was answered {}", r.status);
            (get(&http, url)?, "GET", Some(why))
        }
        Err(e) => {
            let why = format!("HEAD failed: {e}");
            (get(&http, url)?, "GET", Some(why))
        }
    };
    // With changes links and an ETag, only the value tells a collection (a JSON list) from a
    // value with a feed of deltas: read it when HEAD did not.
    let caps = Capabilities::from_headers(&response.headers, &response.url);
    let undecided = caps.etag.is_some() && auto::collection(&caps, Some(b"[]"));
    // Following tells a live URL by its GET's head (a server may answer HEAD as for a
    // document), so inspect does too; a stream's body is not read. With changes links and an
    // ETag, that GET's value also tells a collection.
    let (kind, read) = match method {
        "HEAD" => match get(&http, url) {
            Ok((got, kind)) => (kind, (undecided && !kind.is_stream()).then_some(got.body)),
            Err(_) if !undecided => (kind, None),
            Err(e) => return Err(e),
        },
        _ => (kind, None),
    };
    let value = if method == "GET" {
        Some(response.body.as_slice())
    } else {
        read.as_deref()
    };
    let situation = Situation {
        changes: auto::collection(&caps, value),
        ..Situation::default()
    };
    let mut report = report(
        url,
        &response,
        method,
        fallback,
        raw_links(&response),
        situation,
    );
    report.kind = kind;
    Ok(report)
}

/// `GET url`: a 2xx answer, or why there is none, and what kind of URL it is. A stream's body
/// is not read (it may never end).
fn get(http: &HttpClient, url: &Url) -> Result<(Response, Kind)> {
    let stream = http
        .open(url, url, &[], TIMEOUT)
        .map_err(|e| e.into_error(url))?;
    if !(200..300).contains(&stream.status) {
        return Err(Error::Status {
            url: stream.url.to_string(),
            status: stream.status,
        });
    }
    let (status, final_url, headers) = (stream.status, stream.url.clone(), stream.headers.clone());
    match crate::live::answer(stream, DEFAULT_MAX_BODY, TIMEOUT).map_err(|e| e.into_error(url))? {
        Answer::Document(response) => Ok((response, Kind::Document)),
        Answer::Stream { kind, .. } => Ok((
            Response {
                status,
                url: final_url,
                moved_permanently: false,
                headers,
                body: Vec::new(),
            },
            kind,
        )),
    }
}

fn raw_links(response: &Response) -> Vec<String> {
    response
        .headers
        .get_all("link")
        .iter()
        .map(|v| header_text(v).into_owned())
        .collect()
}

/// The report for a response already made (`raw_links`: its `Link` header values as sent).
pub fn report(
    url: &Url,
    response: &Response,
    method: &'static str,
    fallback: Option<String>,
    raw_links: Vec<String>,
    situation: Situation,
) -> Report {
    let caps = Capabilities::from_headers(&response.headers, &response.url);
    let links = caps
        .links
        .links
        .iter()
        .map(|link| LinkReport {
            target: link.target.clone(),
            rels: link
                .rels
                .iter()
                .map(|rel| RelReport {
                    rel: rel.clone(),
                    meaning: meaning(rel, link.param("type")),
                })
                .collect(),
            params: link.params.clone(),
        })
        .collect();
    let forms = forms(&caps, response, &raw_links);
    let mechanisms = mechanisms(&caps, situation);
    let auto = auto_report(&caps, situation);
    Report {
        url: url.clone(),
        final_url: response.url.clone(),
        method,
        fallback,
        status: response.status,
        caps,
        links,
        forms,
        mechanisms,
        auto,
        kind: Kind::Document,
    }
}

fn meaning(rel: &str, link_type: Option<&str>) -> RelMeaning {
    if rel == "alternate" {
        return if link_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream")) {
            RelMeaning::Mechanism(Mechanism::ValueStream)
        } else {
            RelMeaning::Known("another representation; not an event stream, so not used")
        };
    }
    if rel == "prev-changes" {
        return RelMeaning::Known("the checkpoint before this changes set (gap detection)");
    }
    match Mechanism::from_rel(rel) {
        Some(m) => RelMeaning::Mechanism(m),
        None => RelMeaning::Unknown,
    }
}

/// Which forms each relation name belongs to (the names differ between the forms).
fn rel_forms(rel: &str) -> &'static [Form] {
    match rel {
        "value-wait" | "value-stream" | "changes-wait" | "changes-stream" | "multiplex-wait" => {
            &[Form::A, Form::B]
        }
        "changes" => &[Form::A, Form::B, Form::C],
        "value-callback" | "changes-callback" | "multiplex-ws" | "multiplex-stream"
        | "prev-changes" => &[Form::A],
        "hint-stream" => &[Form::B],
        "multiplex-socket" => &[Form::B, Form::C],
        "callbacks" | "changes-callbacks" | "multiplex-request" | "multiplex-callbacks" => {
            &[Form::C]
        }
        _ => &[],
    }
}

fn forms(caps: &Capabilities, response: &Response, raw_links: &[String]) -> Vec<FormEvidence> {
    let mut evidence: Vec<FormEvidence> = Vec::new();
    let mut add = |forms: &[Form], why: String| {
        if !evidence.iter().any(|e| e.why == why) {
            evidence.push(FormEvidence {
                forms: forms.to_vec(),
                why,
            });
        }
    };
    for link in &caps.links.links {
        for rel in &link.rels {
            if rel == "alternate" {
                if matches!(meaning(rel, link.param("type")), RelMeaning::Mechanism(_)) {
                    add(
                        &[Form::C],
                        "an alternate link of type text/event-stream".into(),
                    );
                }
                continue;
            }
            let forms = rel_forms(rel);
            if !forms.is_empty() {
                add(forms, format!("a {rel} link"));
            }
        }
        if link
            .param("mode")
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("reliable"))
        {
            add(&[Form::B], "mode=reliable on a stream link".into());
        }
        if link.param("wait-min").is_some() {
            add(&[Form::C], "wait-min on a changes link".into());
        }
    }
    if raw_links.iter().any(|l| {
        l.to_ascii_lowercase()
            .contains("liveresource.org/protocol/")
    }) {
        add(
            &[Form::C],
            "long relation names (http://liveresource.org/protocol/...)".into(),
        );
    }
    if !caps.properties.is_empty() {
        add(&[Form::C], "a LiveResource-Property header".into());
    }
    if response.header("x-poll-interval").is_some() {
        add(&[Form::B, Form::C], "an X-Poll-Interval header".into());
    }
    if response.header("changes-id").is_some() {
        add(&[Form::B, Form::C], "a Changes-Id header".into());
    }
    evidence
}

impl Report {
    /// The forms recognised: those with a sign of their own; when every sign is shared, all
    /// the forms that share them.
    pub fn recognised_forms(&self) -> Vec<Form> {
        let mut own: Vec<Form> = self
            .forms
            .iter()
            .filter(|e| e.forms.len() == 1)
            .map(|e| e.forms[0])
            .collect();
        if own.is_empty() {
            own = self.forms.iter().flat_map(|e| e.forms.clone()).collect();
        }
        own.sort();
        own.dedup();
        own
    }

    /// The report as JSON, for scripts.
    pub fn to_json(&self) -> Value {
        let caps = &self.caps;
        json!({
            "url": self.url.as_str(),
            "kind": self.kind.name(),
            "final_url": self.final_url.as_str(),
            "method": self.method,
            "fallback": self.fallback,
            "status": self.status,
            "etag": caps.etag,
            "last_modified": caps.last_modified,
            "poll_interval": caps.poll_interval.map(|d| d.as_secs_f64()),
            "properties": caps.properties.iter().map(|(name, params)| json!({
                "name": name,
                "params": params_json(params),
            })).collect::<Vec<_>>(),
            "links": self.links.iter().map(|l| json!({
                "target": l.target.as_str(),
                "rels": l.rels.iter().map(|r| json!({
                    "rel": r.rel,
                    "known": r.meaning != RelMeaning::Unknown,
                    "mechanism": match &r.meaning {
                        RelMeaning::Mechanism(m) => Some(m.as_str()),
                        _ => None,
                    },
                    "meaning": match &r.meaning {
                        RelMeaning::Mechanism(_) => None,
                        RelMeaning::Known(text) => Some(*text),
                        RelMeaning::Unknown => Some("unknown relation: ignored"),
                    },
                })).collect::<Vec<_>>(),
                "params": params_json(&l.params),
            })).collect::<Vec<_>>(),
            "link_errors": caps.links.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "forms": self.recognised_forms().iter().map(|f| f.letter()).collect::<Vec<_>>(),
            "form_evidence": self.forms.iter().map(|e| json!({
                "forms": e.forms.iter().map(|f| f.letter()).collect::<Vec<_>>(),
                "why": e.why,
            })).collect::<Vec<_>>(),
            "mechanisms": self.mechanisms.iter().map(|m| json!({
                "mechanism": m.mechanism.as_str(),
                "offered": m.target.is_some(),
                "target": m.target.as_ref().map(Url::as_str),
                "rel": m.rel,
                "reliable": m.reliable,
                "usable": m.usable,
                "reason": m.reason,
            })).collect::<Vec<_>>(),
            "auto": {
                "mechanism": self.auto.mechanism.as_str(),
                "follows": if self.auto.changes { "changes" } else { "value" },
                "target": self.auto.target.as_str(),
                "reasons": self.auto.reasons,
                "with_several": self.auto.with_several.as_str(),
            },
        })
    }
}

fn params_json(params: &[(String, String)]) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn mechanisms(caps: &Capabilities, alone: Situation) -> Vec<MechanismReport> {
    Mechanism::ALL
        .into_iter()
        .map(|mechanism| {
            let offer = caps.offer(mechanism);
            let usable = offer.map(|_| auto::usable(caps, mechanism, alone));
            let reason = match (&usable, mechanism) {
                (None, _) => "not advertised".to_string(),
                (Some(Err(why)), _) => why.to_string(),
                (Some(Ok(())), Mechanism::Poll) => poll_reason(caps),
                (Some(Ok(())), Mechanism::MultiplexWait | Mechanism::MultiplexStream) => {
                    "usable; auto prefers it when several resources of this server are followed together"
                        .to_string()
                }
                (Some(Ok(())), Mechanism::MultiplexWs | Mechanism::MultiplexSocket) => {
                    "usable; one connection carries every resource on the endpoint".to_string()
                }
                (Some(Ok(())), _) => "usable".to_string(),
            };
            MechanismReport {
                mechanism,
                target: offer.map(|o| o.target.clone()),
                rel: offer.map(|o| o.rel.clone()),
                reliable: offer.is_some_and(|o| o.reliable),
                usable: matches!(usable, Some(Ok(()))),
                reason,
                unusable: usable.and_then(|u| u.err()),
            }
        })
        .collect()
}

fn poll_reason(caps: &Capabilities) -> String {
    let how = if caps.etag.is_some() {
        "conditional GETs with If-None-Match"
    } else if caps.last_modified.is_some() {
        "conditional GETs with If-Modified-Since"
    } else {
        "GETs, comparing bodies (no ETag or Last-Modified)"
    };
    let every = match caps.poll_interval {
        Some(d) => format!("every {}s (X-Poll-Interval)", d.as_secs_f64()),
        None => format!(
            "every {}s by default",
            crate::follow::DEFAULT_INTERVAL.as_secs()
        ),
    };
    format!("always possible: {how}, {every}")
}

fn auto_report(caps: &Capabilities, situation: Situation) -> AutoReport {
    let choice = auto::choose(caps, situation);
    let changes = choice.changes;
    let several = auto::choose(
        caps,
        Situation {
            several: true,
            ..situation
        },
    );
    let mut reasons = Vec::new();
    for weighed in &choice.considered {
        if weighed.mechanism == choice.mechanism {
            break;
        }
        if let Err(why) = &weighed.usable {
            reasons.push(format!("not {}: {why}", weighed.mechanism));
        }
    }
    let offered_others = caps.offers.len() > 1;
    if changes {
        let why = if caps.etag.is_none() {
            "the changes feed is followed: the resource offers changes links and no ETag"
        } else {
            "the changes feed is followed: the resource offers changes links and its value is a JSON list (a collection)"
        };
        reasons.insert(0, why.into());
    }
    reasons.push(match choice.mechanism {
        Mechanism::Poll if !offered_others => {
            "poll: the resource advertises no LiveResource mechanism".to_string()
        }
        Mechanism::Poll => "poll: nothing better is usable".to_string(),
        m if changes => format!(
            "{m}: the first usable mechanism in auto's order for changes (changes-stream, socket, long-poll, webhooks, changes)"
        ),
        m => format!(
            "{m}: the first usable mechanism in auto's order (stream, socket, long-poll, hint-stream, webhooks, poll)"
        ),
    });
    let target = caps
        .offer(choice.mechanism)
        .map(|o| o.target.clone())
        .or_else(|| caps.offers.last().map(|o| o.target.clone()))
        .expect("poll is always offered");
    AutoReport {
        changes,
        mechanism: choice.mechanism,
        target,
        reasons,
        with_several: several.mechanism,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::{HeaderMap, HeaderValue};

    fn response(headers: &[(&'static str, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        Response {
            status: 200,
            url: Url::parse("http://h/r").unwrap(),
            moved_permanently: true,
            headers: map,
            body: Vec::new(),
        }
    }

    fn report_of(headers: &[(&'static str, &str)]) -> Report {
        let r = response(headers);
        let raw = raw_links(&r);
        report(&r.url.clone(), &r, "HEAD", None, raw, Situation::default())
    }

    #[test]
    fn forms_and_unknown_rels() {
        let r = report_of(&[
            ("etag", "\"1\""),
            (
                "link",
                "</r>; rel=\"value-wait hub\", </ws>; rel=multiplex-ws, <x>; rel=\"http://liveresource.org/protocol/multiplex-request\"",
            ),
        ]);
        assert_eq!(r.recognised_forms(), [Form::A, Form::C]);
        let rels: Vec<_> = r.links[0].rels.iter().map(|x| x.meaning.clone()).collect();
        assert_eq!(
            rels,
            [
                RelMeaning::Mechanism(Mechanism::ValueWait),
                RelMeaning::Unknown
            ]
        );
        assert_eq!(r.auto.mechanism, Mechanism::MultiplexWs);
        assert_eq!(r.auto.with_several, Mechanism::MultiplexWs);
        let json = r.to_json();
        assert_eq!(json["links"][0]["rels"][1]["known"], false);
        assert_eq!(json["forms"], json!(["A", "C"]));
    }

    #[test]
    fn shared_signs_name_every_form_sharing_them() {
        let r = report_of(&[("etag", "\"1\""), ("link", "</r>; rel=value-wait")]);
        assert_eq!(r.recognised_forms(), [Form::A, Form::B]);
        assert_eq!(r.auto.mechanism, Mechanism::ValueWait);
        let none = report_of(&[]);
        assert!(none.recognised_forms().is_empty());
        assert_eq!(none.auto.mechanism, Mechanism::Poll);
        assert!(none.auto.reasons[0].contains("no LiveResource mechanism"));
    }
}
