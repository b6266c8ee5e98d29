//! Forms and switches: which of the protocol's three forms a request is answered in, which
//! mechanisms a response advertises, and how its `Link` headers are written.
//!
//! The server-wide `--dialect` picks a form, or (the default) mixes all three: every mechanism
//! is offered at once, and where two forms disagree on a payload, form A wins unless the request
//! itself asks another way (see [`Form`] and the README). A request may choose its form with
//! `?form=a|b|c` and the mechanisms advertised with `?types=...`; both are carried into every
//! link of the response, so a client that follows the links keeps the same view.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::cors::Cors;
use super::log::Log;
use crate::http1::{Request, Response};
use crate::link::format_link;

/// The long (form C) relation names: `http://liveresource.org/protocol/<leaf>`.
pub(crate) const LONG_REL_PREFIX: &str = "http://liveresource.org/protocol/";

/// Which forms the server speaks (`lrwatch serve --dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// All three at once where they do not clash; form A wins where they do.
    #[default]
    Mixed,
    /// Only the 2014 specification's form.
    A,
    /// Only the public test server's form (2016).
    B,
    /// Only the 2016 draft's form.
    C,
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Dialect, String> {
        match s.to_ascii_lowercase().as_str() {
            "mixed" | "all" => Ok(Dialect::Mixed),
            "a" => Ok(Dialect::A),
            "b" => Ok(Dialect::B),
            "c" => Ok(Dialect::C),
            _ => Err(format!("'{s}' is not a dialect: use a, b, c or mixed")),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Mixed => "mixed",
            Dialect::A => "a",
            Dialect::B => "b",
            Dialect::C => "c",
        })
    }
}

/// The form one request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// 2014: JSON bodies, unnamed SSE events, JSON WebSocket messages, `prev-changes` links.
    A,
    /// Test server: `Wait`, text socket with `OK` acks, `open`/`update` events with headers.
    B,
    /// Draft: long rel names, `LiveResource-Property`, `200` acks, `Changes-Id` headers.
    C,
}

impl Form {
    fn letter(self) -> &'static str {
        match self {
            Form::A => "a",
            Form::B => "b",
            Form::C => "c",
        }
    }
}

/// The reference server's switches (`lrwatch serve` options).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Which forms are spoken.
    pub dialect: Dialect,
    /// Skip every Nth push on unreliable streams and sockets (so clients must notice gaps).
    pub lossy: Option<u32>,
    /// Cut every stream and socket this long after it opened (a simulated disconnect).
    pub cut_after: Option<Duration>,
    /// How often an idle stream sends a keep-alive comment (or a socket a ping).
    pub keepalive: Duration,
    /// How many collection changes are kept; older checkpoints expire (404).
    pub history: usize,
    /// The `retry:` delay reliable streams ask for, in milliseconds.
    pub retry_ms: u64,
    /// How many times a webhook delivery is tried before it is dropped.
    pub callback_attempts: u32,
    /// The delay before the first retry of a webhook delivery; it doubles after each.
    pub callback_backoff: Duration,
    /// Deliberate protocol faults (`--fault`), so a checker's requirements can be seen to fail.
    pub faults: Vec<Fault>,
    /// Which origins may read the answers (`--cors`).
    pub cors: Cors,
    /// Where log lines go, and whether every request is logged (`-v`) or only errors.
    pub log: Log,
}

impl ServerConfig {
    /// Whether the server was told to commit this fault.
    pub fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

/// A deliberate protocol fault the server can commit (`lrwatch serve --fault NAME`), each
/// breaking exactly one requirement of `lrwatch check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `wait-now`: answer long-polls at once instead of holding them.
    WaitNow,
    /// `no-subprotocol`: do not echo `liveresource` in the WebSocket handshake.
    NoSubprotocol,
    /// `wrong-content-type`: serve event streams as `text/plain`.
    WrongContentType,
    /// `stale-changes`: the `changes` link of a changes response does not advance.
    StaleChanges,
    /// `unstable-etag`: the `ETag` text changes on every GET (any of them still matches).
    UnstableEtag,
    /// `no-304`: ignore `If-None-Match` on requests that do not wait.
    No304,
    /// `accept-bad-wait`: treat a malformed `Wait` or `Prefer: wait` as no wait, instead of 400.
    AcceptBadWait,
}

impl Fault {
    /// Every fault, in the order `--help` lists them.
    pub const ALL: [Fault; 7] = [
        Fault::WaitNow,
        Fault::NoSubprotocol,
        Fault::WrongContentType,
        Fault::StaleChanges,
        Fault::UnstableEtag,
        Fault::No304,
        Fault::AcceptBadWait,
    ];

    /// The name `--fault` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::WaitNow => "wait-now",
            Fault::NoSubprotocol => "no-subprotocol",
            Fault::WrongContentType => "wrong-content-type",
            Fault::StaleChanges => "stale-changes",
            Fault::UnstableEtag => "unstable-etag",
            Fault::No304 => "no-304",
            Fault::AcceptBadWait => "accept-bad-wait",
        }
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
                format!("'{s}' is not a fault: use one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            dialect: Dialect::Mixed,
            lossy: None,
            cut_after: None,
            keepalive: Duration::from_secs(15),
            history: 1000,
            retry_ms: 2000,
            callback_attempts: 4,
            callback_backoff: Duration::from_millis(500),
            faults: Vec::new(),
            cors: Cors::Any,
            log: Log::default(),
        }
    }
}

/// Every mechanism name `?types=` accepts, by its link relation (form C's names are aliases).
pub(crate) const MECHANISMS: [&str; 13] = [
    "value-wait",
    "value-stream",
    "hint-stream",
    "value-callback",
    "changes",
    "changes-wait",
    "changes-stream",
    "changes-callback",
    "multiplex-wait",
    "multiplex-stream",
    "multiplex-ws",
    "multiplex-socket",
    "multiplex-callbacks",
];

/// Form C's names for the same mechanisms.
fn canonical(name: &str) -> &str {
    match name {
        "alternate" => "value-stream",
        "callbacks" => "value-callback",
        "changes-callbacks" => "changes-callback",
        "multiplex-request" => "multiplex-wait",
        other => other,
    }
}

/// One request's view of the server: its form (or mixed), the mechanisms it may see, and the
/// query parameters carried into links.
#[derive(Debug, Clone)]
pub(crate) struct RequestView {
    /// The form asked for (`?form=`) or fixed by the dialect; `None` for mixed.
    pub(crate) form: Option<Form>,
    /// The form `?form=` asked for, which outranks what the request's shape says.
    explicit: Option<Form>,
    types: Option<Vec<String>>,
    carry: Vec<(String, String)>,
}

/// What a request's own shape says about the form it speaks: how a client built it (a
/// multiplexed long-poll) or which of this server's links it followed (a value stream). See
/// [`RequestView::answer_form`] for where a request shows its form and where it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Form A's: query parameters (`?u=…&inm=…`).
    A,
    /// Form B's: several resources comma-joined in one `Uri` field; `Accept:
    /// text/event-stream` on the resource's own URI (B's `value-stream` is that URI).
    B,
    /// Form C's: one `Uri` field per resource, several of them.
    C,
    /// A's or C's, no telling which: `?stream=value`, the target of form A's `value-stream`
    /// link and of form C's `alternate` link (which the mixed dialect pins with `form=c`).
    AOrC,
    /// B's or C's, no telling which (one `Uri` field naming one resource; a
    /// `multiplex-socket`, whose subprotocol and messages are the same in both).
    BOrC,
}

impl RequestView {
    /// Reads `?form=` and `?types=`; a bad value is a 400 naming the choices.
    pub(crate) fn new(dialect: Dialect, request: &Request) -> Result<RequestView, Response> {
        let mut form = match dialect {
            Dialect::Mixed => None,
            Dialect::A => Some(Form::A),
            Dialect::B => Some(Form::B),
            Dialect::C => Some(Form::C),
        };
        let mut explicit = None;
        let mut types = None;
        let mut carry = Vec::new();
        for (name, value) in query_pairs(request) {
            match name.as_str() {
                "form" => {
                    explicit = Some(match value.to_ascii_lowercase().as_str() {
                        "a" => Form::A,
                        "b" => Form::B,
                        "c" => Form::C,
                        _ => {
                            return Err(Response::error(
                                400,
                                &format!("form={value:?}: use form=a, form=b or form=c"),
                            ))
                        }
                    });
                    form = explicit;
                    carry.push((name, value.to_ascii_lowercase()));
                }
                "types" => {
                    let mut list = Vec::new();
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let t = canonical(&t.to_ascii_lowercase()).to_owned();
                        if !MECHANISMS.contains(&t.as_str()) {
                            return Err(Response::error(
                                400,
                                &format!(
                                    "types: {t:?} is not a mechanism; use a comma-separated list of {}",
                                    MECHANISMS.join(", ")
                                ),
                            ));
                        }
                        list.push(t);
                    }
                    types = Some(list);
                    carry.push((name, value));
                }
                _ => {}
            }
        }
        Ok(RequestView {
            form,
            explicit,
            types,
            carry,
        })
    }

    /// A context without switches, for payloads built outside a request (socket pushes).
    pub(crate) fn plain(form: Option<Form>) -> RequestView {
        RequestView {
            form,
            explicit: None,
            types: None,
            carry: Vec::new(),
        }
    }

    /// The form to answer a request whose shape says `shape`: `?form=` first, then the
    /// shape, then the dialect (which only chooses between the two forms a shape leaves
    /// open). So a client of form A gets JSON bodies from a server of dialect B, and a client
    /// of form B strings from one of dialect A.
    ///
    /// Where a request shows its form, and where it does not (issue 17):
    /// - Multiplexed long-poll: the query form is A's; `Uri` fields comma-joined are B's, one
    ///   per resource C's, a single one B's or C's. The query form wins when both are sent.
    /// - Value stream: `Accept: text/event-stream` on the resource's own URI is B's (`open`
    ///   and `update` events with a headers line, in every dialect); `?stream=value` is A's
    ///   `value-stream` link or C's `alternate` link, so A's framing unless the dialect is C.
    ///   Hint streams exist in form B only. The changes stream: `Accept` on `/items/` is B's;
    ///   `?stream=changes` is the `changes-stream` link of A and B alike, so the dialect says.
    /// - Not a sign: `Wait` and `Prefer: wait=N`. PROTOCOL.md has clients send both, and a
    ///   long-poll's body is the value itself in every form; what differs is the advertising
    ///   headers, which describe the resource: they must stay those the client discovered
    ///   with a plain GET (no wait header), or its view of the resource would flip between
    ///   requests. So `?form=` and the dialect decide them.
    /// - Not a sign: a socket's subprotocol (`liveresource` in every form) and first message
    ///   (`GET /x` in B and C alike). The endpoint is the form: `multiplex-ws` is A's (JSON),
    ///   `multiplex-socket` B's or C's, acking `OK` or `200` as `?form=` or the dialect says; a
    ///   message in the other endpoint's language is refused in this one's.
    /// - Not a sign: webhook subscriptions (`POST callback_uri=…`, the same in A and C); their
    ///   deliveries carry A's and C's gap markers both, whatever the dialect.
    pub(crate) fn answer_form(&self, shape: Shape) -> Form {
        if let Some(form) = self.explicit {
            return form;
        }
        match shape {
            Shape::A => Form::A,
            Shape::B => Form::B,
            Shape::C => Form::C,
            Shape::AOrC if self.form == Some(Form::C) => Form::C,
            Shape::AOrC => Form::A,
            Shape::BOrC if self.form == Some(Form::C) => Form::C,
            Shape::BOrC => Form::B,
        }
    }

    /// The same view answering in `form`: headers written for the answer (gap markers, rel
    /// names) then match its bodies. The carried switches stay as they are.
    pub(crate) fn answering(&self, form: Form) -> RequestView {
        RequestView {
            form: Some(form),
            ..self.clone()
        }
    }

    /// The form a payload is written in: the request's, else `mixed_default`.
    pub(crate) fn payload(&self, mixed_default: Form) -> Form {
        self.form.unwrap_or(mixed_default)
    }

    /// Whether this request's responses advertise `mechanism` (a canonical name): its form has
    /// it and `?types=` (if given) lists it.
    pub(crate) fn offers(&self, mechanism: &str) -> bool {
        let in_form = match self.form {
            None => true,
            Some(Form::A) => !matches!(
                mechanism,
                "hint-stream" | "multiplex-socket" | "multiplex-callbacks"
            ),
            Some(Form::B) => matches!(
                mechanism,
                "value-wait"
                    | "value-stream"
                    | "hint-stream"
                    | "changes"
                    | "changes-wait"
                    | "changes-stream"
                    | "multiplex-wait"
                    | "multiplex-socket"
            ),
            Some(Form::C) => matches!(
                mechanism,
                "value-wait"
                    | "value-stream"
                    | "value-callback"
                    | "changes"
                    | "changes-callback"
                    | "multiplex-wait"
                    | "multiplex-socket"
                    | "multiplex-callbacks"
            ),
        };
        in_form
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.iter().any(|m| m == mechanism))
    }

    /// A target on this server with `params` and the carried switches as its query.
    pub(crate) fn target(&self, path: &str, params: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (n, v) in params {
            query.append_pair(n, v);
        }
        for (n, v) in &self.carry {
            if !params.iter().any(|(p, _)| p == n) {
                query.append_pair(n, v);
            }
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }

    /// A relation name as this request's form writes it: long names in form C.
    pub(crate) fn rel(&self, leaf: &str) -> String {
        if self.form == Some(Form::C) && leaf != "alternate" {
            format!("{LONG_REL_PREFIX}{leaf}")
        } else {
            leaf.to_owned()
        }
    }

    /// One `Link` value: `target` (a path with its query) with the carried switches added.
    pub(crate) fn link(
        &self,
        path: &str,
        params: &[(&str, &str)],
        leaf: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let rel = self.rel(leaf);
        format_link(&self.target(path, params), &[rel.as_str()], extra)
    }

    /// `form=x` for a link in the mixed dialect that must pin a form other than A's.
    pub(crate) fn pin(&self, form: Form) -> Option<(&'static str, &'static str)> {
        match self.form {
            None => Some(("form", form.letter())),
            Some(_) => None,
        }
    }
}

/// The request's query parameters, decoded.
pub(crate) fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// One query parameter's first value.
pub(crate) fn query_param(request: &Request, name: &str) -> Option<String> {
    query_pairs(request)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/counter/a".into(),
            query: Some(query.into()),
            version: 1,
            headers: vec![],
            body: vec![],
            raw_head: vec![],
        }
    }

    #[test]
    fn form_and_types_from_the_query() {
        let ctx =
            RequestView::new(Dialect::Mixed, &req("form=B&types=value-wait,callbacks")).unwrap();
        assert_eq!(ctx.form, Some(Form::B));
        assert!(ctx.offers("value-wait"));
        // B has no callbacks, whatever types says.
        assert!(!ctx.offers("value-callback"));
        assert!(!ctx.offers("hint-stream"));
        assert_eq!(
            ctx.target("/counter/a", &[("stream", "value")]),
            "/counter/a?stream=value&form=b&types=value-wait%2Ccallbacks"
        );
        let c = RequestView::new(Dialect::C, &req("")).unwrap();
        assert_eq!(c.rel("changes"), "http://liveresource.org/protocol/changes");
        assert_eq!(c.rel("alternate"), "alternate");
        // Form C has streams of values but no hint streams.
        assert!(c.offers("value-stream"));
        assert!(!c.offers("hint-stream"));
        let mixed = RequestView::new(Dialect::Mixed, &req("")).unwrap();
        assert!(MECHANISMS.iter().all(|m| mixed.offers(m)));
        assert_eq!(mixed.pin(Form::C), Some(("form", "c")));
    }

    #[test]
    fn the_form_asked_outranks_the_shape_which_outranks_the_dialect() {
        let view = |dialect, query| RequestView::new(dialect, &req(query)).unwrap();
        for dialect in [Dialect::Mixed, Dialect::A, Dialect::B, Dialect::C] {
            let plain = view(dialect, "");
            assert_eq!(plain.answer_form(Shape::A), Form::A, "{dialect}");
            assert_eq!(plain.answer_form(Shape::B), Form::B, "{dialect}");
            assert_eq!(plain.answer_form(Shape::C), Form::C, "{dialect}");
            let asked = view(dialect, "form=b");
            assert_eq!(asked.answer_form(Shape::A), Form::B, "{dialect}");
            assert_eq!(asked.answer_form(Shape::C), Form::B, "{dialect}");
        }
        // Where the shape cannot tell B from C, the dialect does; A's and mixed get B.
        assert_eq!(view(Dialect::C, "").answer_form(Shape::BOrC), Form::C);
        assert_eq!(view(Dialect::B, "").answer_form(Shape::BOrC), Form::B);
        assert_eq!(view(Dialect::A, "").answer_form(Shape::BOrC), Form::B);
        assert_eq!(view(Dialect::Mixed, "").answer_form(Shape::BOrC), Form::B);
        // Nor A from C: only dialect C makes it C.
        assert_eq!(view(Dialect::C, "").answer_form(Shape::AOrC), Form::C);
        assert_eq!(view(Dialect::B, "").answer_form(Shape::AOrC), Form::A);
        assert_eq!(view(Dialect::A, "").answer_form(Shape::AOrC), Form::A);
        assert_eq!(view(Dialect::Mixed, "").answer_form(Shape::AOrC), Form::A);
        assert_eq!(view(Dialect::C, "form=b").answer_form(Shape::AOrC), Form::B);
        let answering = view(Dialect::B, "form=b").answering(Form::A);
        assert_eq!(answering.form, Some(Form::A));
        assert_eq!(answering.target("/x", &[]), "/x?form=b");
    }

    #[test]
    fn bad_switches_are_400() {
        assert_eq!(
            RequestView::new(Dialect::Mixed, &req("form=d"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            RequestView::new(Dialect::Mixed, &req("types=value-wait,teleport"))
                .unwrap_err()
                .status,
            400
        );
        assert!("x".parse::<Dialect>().is_err());
        assert_eq!("B".parse::<Dialect>(), Ok(Dialect::B));
    }
}
