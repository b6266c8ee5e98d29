//! The command line, as clap definitions: the contract's options, grouped by purpose.

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXAMPLES: &str = "\
Examples:
  Follow a resource; the value, then every change:
    lrwatch http://127.0.0.1:8080/counter/a

  Each value on one line, for jq (one JSON event per line with --json):
    lrwatch http://127.0.0.1:8080/objects/stats | jq .count
    lrwatch --json http://127.0.0.1:8080/counter/a | jq -r '.event + \" \" + .etag'

  Show what changed, as a colored diff:
    lrwatch --diff http://127.0.0.1:8080/objects/config

  Run a command on each change (the body on stdin, facts in LRWATCH_*):
    lrwatch --no-initial --exec 'jq .count; echo \"$LRWATCH_ETAG\"' http://127.0.0.1:8080/objects/stats

  The same with the whole event as JSON on stdin (the --json envelope):
    lrwatch --json --exec 'jq -r \"\\(.uri) \\(.etag)\"' http://127.0.0.1:8080/objects/stats

  Many resources in one pipe, each line starting with its name (or URL) and a tab; the URLs
  from a file, one a line (URL or NAME=URL such as api=http://127.0.0.1:8080/counter/a):
    lrwatch --prefix --urls servers.txt | awk -F'\\t' '$1 == \"api\" { print $2 }'

  In a script, wait for the next change (and no longer than a minute):
    if lrwatch -q --no-initial -n 1 -t 60 URL >/dev/null; then echo changed; fi

  Any live URL: an event stream, JSON lines (NDJSON, a watch), a WebSocket:
    lrwatch --json 'http://127.0.0.1:8080/counter/a?stream=value'
    lrwatch --send '{\"op\":\"subscribe\"}' wss://example.com/feed

  Follow one field of a JSON value:
    lrwatch --select /time http://127.0.0.1:8080/time

  See the protocol at work (requests, links, the transport chosen and why):
    lrwatch -v http://127.0.0.1:8080/time

  Try it with nothing else running:
    lrwatch demo";

/// Follow web resources live: print each new value as it changes.
///
/// lrwatch discovers what the server offers (LiveResource streams, sockets, long-polls,
/// webhooks, change feeds) and follows the resource over the best transport it finds, falling
/// back to plain polling, so it works with any URL. A live URL given directly (an event
/// stream, JSON lines such as NDJSON or a watch, a ws:// or wss:// URL) is followed as it is:
/// each event, line or message is one event. stdout carries events only; status and errors go
/// to stderr.
#[derive(Debug, Parser)]
#[command(
    name = "lrwatch",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true,
    after_help = EXAMPLES,
    after_long_help = EXAMPLES
)]
pub struct Cli {
    /// Resources to follow: absolute http:// or https:// URLs (LiveResource, a document, an
    /// event stream, a JSON-lines stream), or ws:// or wss:// URLs; NAME=URL gives one a short
    /// name for --prefix and --json (NAME: letters, digits, _ - and ., so a URL is never taken
    /// for a name).
    #[arg(value_name = "URL", required_unless_present = "urls_file")]
    pub urls: Vec<String>,

    #[command(flatten)]
    pub follow: FollowArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands besides following.
// `Demo` carries every following option; the enum is built once per run, so its size is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference LiveResource server: every mechanism of the protocol, in all three forms.
    ///
    /// Resources:
    ///   /time             the current UTC time, a new value every second
    ///   /counter/{id}     a JSON value, 0 until set; POST adds 1, PUT sets any JSON, DELETE removes
    ///   /objects/{name}   any JSON value; PUT sets it, DELETE removes it (404 until set again)
    ///   /items/           a collection: POST {"text":..} adds an item (201, Location /items/{id});
    ///                     PUT /items/{id} changes one; DELETE marks it "deleted": true
    ///   /plain/{id}       bytes without ETag or links (PUT any body): the plain-polling path
    ///
    /// Mechanisms (each response's Link headers name the URIs):
    ///   value-wait        GET with If-None-Match and Wait: N or Prefer: wait=N (held, then 304)
    ///   value-stream      ?stream=value, or Accept: text/event-stream on the resource (form B);
    ///                     &mode=reliable adds event ids, retry: and Last-Event-ID resume
    ///   hint-stream       ?stream=hint: `update` events without data
    ///   changes           /items/?since=N (the checkpoint); with a wait it is held while empty
    ///   changes-stream    /items/?stream=changes[&since=N][&mode=reliable]
    ///   multiplex-wait    /multiplex/wait?u=URI&inm=ETAG... (form A, JSON bodies) or
    ///                     Uri: <URI>; If-None-Match="ETAG" headers (forms B/C, string bodies)
    ///   multiplex-stream  /multiplex/stream?u=URI... (events {"uri":..,"body":..})
    ///   multiplex-ws      /multiplex/ws: JSON subscribe/unsubscribe/ping messages (form A)
    ///   multiplex-socket  /multiplex/socket: GET /x, CANCEL /x; acks OK (B) or 200 (?form=c)
    ///   callbacks         POST /subscriptions/?uri=URI with callback_uri=URL (201, Location);
    ///                     DELETE it to unsubscribe; GET /subscriptions/ lists them all
    ///
    /// Forms: --dialect a, b or c speaks one form only. The default, mixed, offers all at once:
    /// short rel names plus form C's own (alternate, callbacks, multiplex-request, ...);
    /// where payloads clash form A wins (value-stream events, multiplex-ws), except where the
    /// request itself is in another form (Accept on the resource URI streams form B). Any
    /// request may add ?form=a|b|c, and ?types=value-wait,... to choose the mechanisms
    /// advertised; both are carried into every link. A request that shows its form is
    /// answered in it in every dialect: a multiplexed long-poll's query form gets JSON bodies,
    /// Uri headers string bodies; Accept: text/event-stream on a resource's own URI streams
    /// form B's events, ?stream=value form A's (?form= first, then the shape, then --dialect).
    ///
    /// Browsers: every answer allows any origin (--cors) and exposes the protocol's headers;
    /// preflights are answered. GET / with Accept: text/html (a browser) is a live page that
    /// follows /time, /counter/a and /items/ through EventSource, with buttons to change them.
    /// -v logs every request, push, WebSocket message and webhook delivery on stderr.
    ///
    /// Testing clients: --lossy N drops every Nth push on streams and sockets (not in reliable
    /// mode); --cut-after SECS ends every stream and socket after SECS; POST /_control/cut
    /// ends all of them now.
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Show what a resource offers, and which transport auto would pick and why.
    ///
    /// Validators, links, protocol forms, and every mechanism lrwatch could use and why (not).
    /// HEAD, or GET when HEAD fails or is refused (405, 501); after a HEAD, a GET whose head
    /// tells what kind of URL it is, as following does: a document, an event stream or a
    /// JSON-lines stream (a stream's body is not read); a ws:// or wss:// URL is a WebSocket
    /// (not connected to). Unknown link relations are listed, not hidden; malformed links are
    /// reported. Nothing is followed.
    ///
    /// Examples:
    ///   lrwatch inspect http://127.0.0.1:8080/counter/a
    ///   lrwatch inspect --json http://127.0.0.1:8080/items/ | jq .auto
    #[command(verbatim_doc_comment)]
    Inspect(InspectArgs),
    /// Probe a server's LiveResource support, requirement by requirement: PASS, FAIL, WARN or
    /// SKIP.
    ///
    /// Every requirement names its source (the 2014 specification, the form B page, the
    /// 2016 draft, or an RFC, by section) and its level there: breaking a MUST is a FAIL,
    /// breaking a SHOULD a WARN. Checks the ETag (present, stable, 304 on If-None-Match),
    /// content types, long-polls (held while nothing changes, ended by the wait plus slack, a
    /// malformed wait rejected or ignored, the multiplexed answer's shape), event streams
    /// (content type, framing), WebSockets (the liveresource subprotocol, acks, value pushes),
    /// changes links (they advance), that a subscription survives another client's long-poll
    /// ending, and, with --callback-listen or --callback-url, webhooks (201 and Location,
    /// the notification's Location, DELETE stops notifications).
    ///
    /// With --trigger, CMD is run (sh -c) once per phase when every mechanism of the phase is
    /// listening (long-polls; pushes; survival; webhooks, and again after their DELETE), and
    /// the change must arrive over each; without it, those checks are SKIP. Every FAIL and
    /// WARN shows the request and an excerpt of the response. The whole run is bounded by
    /// --budget and says how long it took.
    ///
    /// Exit status: 0 when no MUST failed and the trigger (if given) ran (with --strict: and
    /// no SHOULD warned), 1 otherwise (2 for a usage error); --json's "ok" says the same.
    ///
    /// Examples:
    ///   lrwatch check --trigger 'curl -s -X POST http://127.0.0.1:8080/counter/a' \
    ///       http://127.0.0.1:8080/counter/a
    ///   lrwatch check --strict --callback-listen 127.0.0.1:0 \
    ///       --trigger 'curl -s -X POST http://127.0.0.1:8080/counter/a' \
    ///       http://127.0.0.1:8080/counter/a
    ///   lrwatch check --json http://127.0.0.1:8080/time | jq '.results[] | select(.outcome=="fail")'
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
    /// Start the reference server in-process on loopback and follow its /time.
    Demo {
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Print a completion script for a shell.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// `lrwatch serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Forms spoken: a, b, c, or mixed (all three at once).
    #[arg(long, value_name = "FORM", default_value = "mixed", value_parser = parse_dialect)]
    pub dialect: lrwatch::server::Dialect,

    /// Drop every Nth push on unreliable streams and sockets, so clients must recover.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lossy: Option<u32>,

    /// Cut every stream and socket SECS seconds after it opens (a simulated disconnect).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub cut_after: Option<f64>,

    /// Collection changes remembered; older checkpoints expire (404).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub history: u64,

    /// Seconds between keep-alive comments (streams) and pings (sockets) when idle.
    #[arg(long, value_name = "SECS", default_value_t = 15.0, value_parser = parse_secs)]
    pub keepalive: f64,

    /// Commit a deliberate protocol fault, repeatable, to see a checker catch it: wait-now
    /// (answer long-polls at once), no-subprotocol (no liveresource in the WebSocket
    /// handshake), wrong-content-type (event streams as text/plain), stale-changes (the
    /// changes link does not advance), unstable-etag (a new ETag text on every GET), no-304
    /// (ignore If-None-Match), accept-bad-wait (no 400 for a malformed wait: allowed, so
    /// check passes it).
    #[arg(long, value_name = "NAME", value_parser = parse_fault)]
    pub fault: Vec<lrwatch::server::Fault>,

    /// Which origins' pages may read the answers: * (any), one origin such as
    /// http://localhost:3000, or off (no CORS headers: only pages of this server's origin).
    /// Every answer then carries Access-Control-Allow-Origin and exposes the protocol's
    /// headers (ETag, Link, ...) to scripts; preflights are answered for a day.
    #[arg(long, value_name = "ORIGIN|off", default_value = "*", value_parser = parse_cors)]
    pub cors: lrwatch::server::Cors,

    /// Log on stderr, for debugging a client: one line per request (time, peer, method,
    /// target, the protocol headers, status, how long it was held; a request refused before
    /// routing, such as a malformed one, with what could be read of it and why), one per push
    /// on a stream, per WebSocket message in or out and per webhook delivery. Without it, only
    /// start-up and errors.
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_dialect(s: &str) -> Result<lrwatch::server::Dialect, String> {
    s.parse()
}

fn parse_cors(s: &str) -> Result<lrwatch::server::Cors, String> {
    s.parse()
}

fn parse_fault(s: &str) -> Result<lrwatch::server::Fault, String> {
    s.parse()
}

/// What `inspect` and `check` share: how to make requests and how to print.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The resource: an absolute http:// or https:// URL.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Print one JSON document instead of the readable report.
    #[arg(short, long)]
    pub json: bool,

    /// Extra request header "NAME: VALUE", repeatable; sent only to the resource's own origin.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Trust the certificate authorities in this PEM file for https and wss, instead of the
    /// bundled Mozilla roots (as curl's --cacert does).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,

    /// When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `lrwatch inspect` options.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// The largest response head (status line and headers) accepted, in bytes (K, M
    /// suffixes), as when following.
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_size)]
    pub max_header: u64,
}

/// `lrwatch check` options.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// A shell command (run with sh -c) that changes the resource, e.g. a curl POST; without
    /// it, the checks that need a change are SKIP.
    #[arg(long, value_name = "CMD")]
    pub trigger: Option<String>,

    /// The most time the whole run may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    pub budget: f64,

    /// The wait of the long-polls that check holding, in seconds (at least the server's
    /// minimum).
    #[arg(long, value_name = "SECS", default_value_t = lrwatch::check::DEFAULT_WAIT, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub wait: u64,

    /// Exit 1 on a WARN too (a SHOULD broken), not only on a FAIL (a MUST broken).
    #[arg(long)]
    pub strict: bool,

    /// Exercise webhooks: receive their notifications on a listener at ADDR (port 0 picks a
    /// free one); without this or --callback-url, webhooks are SKIP.
    #[arg(long, value_name = "ADDR")]
    pub callback_listen: Option<String>,

    /// The URL the server should POST webhook notifications to, when it must reach another
    /// address than the listener's own (a tunnel, NAT); the listener is --callback-listen, or
    /// 127.0.0.1 on a free port.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<url::Url>,
}

/// Options that shape how resources are followed and printed.
#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// One JSON envelope per event, one per line (NDJSON).
    ///
    /// {"event":..,"uri":..,"etag":..,"transport":..,"time":..,"body":..}; an event of an event
    /// stream given directly adds "sse":{"event":..,"id":..}, and a binary WebSocket message's
    /// body is base64 with "encoding":"base64".
    #[arg(short, long, help_heading = "Output")]
    pub json: bool,

    /// After the first value, print a diff against the previous value (JSON pretty-printed
    /// with sorted keys, so diffs are by line; a unified diff without color).
    #[arg(short, long, help_heading = "Output", conflicts_with = "json")]
    pub diff: bool,

    /// Run CMD with `sh -c` for each event instead of printing it.
    ///
    /// The body goes to CMD's stdin (with --json, the event's --json envelope instead, the
    /// same line --json would print); LRWATCH_EVENT, LRWATCH_URI, LRWATCH_ETAG (empty when
    /// none), LRWATCH_TRANSPORT, LRWATCH_NAME (the NAME of a NAME=URL argument, empty when
    /// none), for a collection's items LRWATCH_ID, and for an event stream's events
    /// LRWATCH_SSE_EVENT and LRWATCH_SSE_ID describe the event (those from the server with
    /// NUL bytes replaced by U+FFFD and cut to 4 KiB). The content is never put on the
    /// command line. One run at a time: events arriving during a run are coalesced, so the
    /// next run sees the latest value of each resource (a live URL's events each get their
    /// run). A failing CMD is reported on stderr and
    /// following goes on; with --count, lrwatch exits when the last run has finished (within
    /// --timeout). Each run is a process group of its own: when lrwatch stops early
    /// (--timeout, an error, a signal), the running CMD and whatever it started get SIGTERM,
    /// then SIGKILL 2 seconds later.
    #[arg(
        short = 'x',
        long,
        value_name = "CMD",
        help_heading = "Output",
        conflicts_with = "diff"
    )]
    pub exec: Option<String>,

    /// Start each line with the resource's URL, or the NAME of a NAME=URL argument, and a
    /// tab, as grep -H does: lines from several resources can be told apart in a pipe.
    ///
    /// In a pipe every line is prefixed (each line of a --diff too); on a terminal, the header
    /// line of each event. With --json lines stay JSON: every envelope has the uri, and a
    /// NAME=URL argument's name is the envelope's "name" member (with or without --prefix).
    #[arg(long, help_heading = "Output", conflicts_with = "exec")]
    pub prefix: bool,

    /// Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0;
    /// an event is emitted only when that part changes.
    #[arg(long, value_name = "POINTER", help_heading = "Output")]
    pub select: Option<String>,

    /// Exit 0 after N events (the initial value counts).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Output")]
    pub count: Option<u64>,

    /// Do not emit the initial value; emit changes only.
    #[arg(long, help_heading = "Output")]
    pub no_initial: bool,

    /// When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, help_heading = "Output")]
    pub color: ColorChoice,

    /// Protocol trace on stderr: requests, links found, transport chosen and why, retries, and
    /// the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
    #[arg(short, long, help_heading = "Output", conflicts_with = "quiet")]
    pub verbose: bool,

    /// No status or warning lines on stderr (errors are still reported).
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,

    /// Give up after SECS seconds and exit 124; a running --exec command is stopped.
    #[arg(short, long, value_name = "SECS", value_parser = parse_secs, help_heading = "Following")]
    pub timeout: Option<f64>,

    /// Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a
    /// line; blank lines and lines starting with # are skipped. Followed with those on the
    /// command line; a bad line is a usage error naming the line.
    #[arg(long = "urls", id = "urls_file", value_name = "FILE", value_hint = clap::ValueHint::FilePath, help_heading = "Following")]
    pub urls_file: Option<String>,

    /// Extra request header "NAME: VALUE", repeatable; sent only to the resource's own origin.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header, help_heading = "Following")]
    pub headers: Vec<(String, String)>,

    /// Follow the resource's changes feed instead of its value (the default for a collection:
    /// changes links, and no ETag or a value that is a JSON list). Items with ids become
    /// child-added, child-changed and child-removed events; other formats a changes event.
    #[arg(long, conflicts_with = "value", help_heading = "Following")]
    pub changes: bool,

    /// Follow the resource's value, even when it is a collection with a changes feed.
    #[arg(long, help_heading = "Following")]
    pub value: bool,

    /// On push and long-poll transports, a conditional GET of each resource every SECS
    /// (fractions allowed; 0 turns it off), so that a server that silently forgot a
    /// subscription is noticed: the change is reported, a warning says the server missed a
    /// push, and the transport is resubscribed.
    #[arg(long, value_name = "SECS", default_value_t = lrwatch::follow::DEFAULT_VERIFY.as_secs_f64(), value_parser = parse_verify, help_heading = "Following")]
    pub verify: f64,

    /// Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a
    /// free port]; lets auto use value-callback / changes-callback.
    #[arg(long, value_name = "ADDR", help_heading = "Following")]
    pub callback_listen: Option<String>,

    /// The URL servers should POST webhook notifications to, when it is not the listener's own
    /// (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when
    /// lrwatch exits, however it exits.
    #[arg(long, value_name = "URL", help_heading = "Following")]
    pub callback_url: Option<String>,

    /// Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can
    /// then read and change what is followed. lrwatch warns when it is used.
    #[arg(long, help_heading = "Following")]
    pub insecure: bool,

    /// The largest response body, event-stream event or socket message accepted, in bytes
    /// (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops
    /// with exit 1.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_max_body, help_heading = "Following")]
    pub max_body: u64,

    /// The largest response head (status line and headers) accepted, in bytes (K, M suffixes),
    /// at most 100M. Each open connection holds a buffer this large.
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_max_header, help_heading = "Following")]
    pub max_header: u64,

    /// Trust the certificate authorities in this PEM file for https and wss, instead of the
    /// bundled Mozilla roots (as curl's --cacert does).
    #[arg(long, value_name = "FILE", help_heading = "Following")]
    pub cacert: Option<std::path::PathBuf>,

    /// Transport: auto (the best one offered), or force one; forcing one that the resource
    /// does not advertise is an error naming what it does advertise.
    ///
    /// auto tries, in order: a stream (value-stream), a socket (multiplex-ws,
    /// multiplex-socket), a long-poll (value-wait), hint-stream, plain polling; several
    /// resources sharing a multiplex endpoint use its multiplexed form (one connection). A
    /// mechanism that fails repeatedly is left for the next one for a minute. Draft-form
    /// mechanisms go by their equivalent names (an alternate event-stream link is
    /// value-stream, LiveResource-Property: wait is value-wait, multiplex-request is
    /// multiplex-wait).
    #[arg(long, value_name = "T", default_value = "auto", value_parser = TRANSPORTS, help_heading = "Following")]
    pub transport: String,

    /// The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`).
    #[arg(long, value_name = "SECS", default_value_t = lrwatch::follow::DEFAULT_WAIT, value_parser = clap::value_parser!(u64).range(0..=3600), help_heading = "Following")]
    pub wait: u64,

    /// Plain-polling period in seconds, fractions allowed [default: the server's
    /// X-Poll-Interval, else 5].
    #[arg(long, value_name = "SECS", value_parser = parse_interval, help_heading = "Following")]
    pub interval: Option<f64>,

    /// Ask a JSON-lines URL again after its response ends, with a backoff (a watch that
    /// times out); without it, a response that ends cleanly means that URL is done.
    #[arg(long, help_heading = "Live URLs")]
    pub reconnect: bool,

    /// For ws:// and wss:// URLs: offer this subprotocol in the handshake.
    #[arg(long, value_name = "NAME", help_heading = "Live URLs")]
    pub subprotocol: Option<String>,

    /// For ws:// and wss:// URLs: send TEXT as a text message after each connect,
    /// repeatable, in order (nothing is sent otherwise).
    #[arg(long, value_name = "TEXT", help_heading = "Live URLs")]
    pub send: Vec<String>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color on a terminal, unless NO_COLOR is set or TERM is dumb.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// `--transport` values: `auto` and every mechanism name of the contract.
const TRANSPORTS: [&str; 14] = [
    "auto",
    "poll",
    "value-wait",
    "value-stream",
    "hint-stream",
    "multiplex-wait",
    "multiplex-stream",
    "multiplex-ws",
    "multiplex-socket",
    "value-callback",
    "changes",
    "changes-wait",
    "changes-stream",
    "changes-callback",
];

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

fn parse_verify(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        Ok(v) if v.is_finite() && (0.01..=1e9).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds (at least 0.01; 0 turns verifying off)"
        )),
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let v = parse_secs(s)?;
    if v < 0.01 {
        return Err("the interval must be at least 0.01 seconds".to_string());
    }
    Ok(v)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("'{s}' is not a size (use bytes, or K, M, G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (use bytes, or K, M, G)"))?;
    match n.checked_mul(factor) {
        Some(v) if v >= 64 => Ok(v),
        Some(_) => Err("the size must be at least 64 bytes".to_string()),
        None => Err(format!("'{s}' is too large")),
    }
}

/// `--max-header`: a size the HTTP client can take (see `lrwatch::http::MAX_HEADER_LIMIT`).
pub fn parse_max_header(s: &str) -> Result<u64, String> {
    let max = lrwatch::http::MAX_HEADER_LIMIT as u64;
    match parse_size(s)? {
        v if v <= max => Ok(v),
        _ => Err(format!(
            "at most {} ({max} bytes), the largest response head the HTTP client can buffer",
            size_name(max)
        )),
    }
}

/// `--max-body`: a size every reader can hold (see `lrwatch::http::MAX_BODY_LIMIT`).
pub fn parse_max_body(s: &str) -> Result<u64, String> {
    let max = lrwatch::http::MAX_BODY_LIMIT;
    match parse_size(s)? {
        v if v <= max => Ok(v),
        _ => Err(format!(
            "at most {} ({max} bytes): a body or message is held in memory whole, and a WebSocket frame's announced length is reserved at once",
            size_name(max)
        )),
    }
}

/// A size in the largest unit that divides it: "100M", "4G", "1000".
fn size_name(bytes: u64) -> String {
    for (unit, factor) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= factor && bytes % factor == 0 {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not of the form 'NAME: VALUE'"))?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("'{name}' is not a valid header name"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(format!(
            "the value of header '{name}' contains control characters"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn headers_parse() {
        assert_eq!(parse_header("X-A: b c"), Ok(("X-A".into(), "b c".into())));
        assert_eq!(parse_header("X-A:"), Ok(("X-A".into(), "".into())));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
        assert!(parse_header("bad name: v").is_err());
        assert!(parse_header("X: a\r\nInjected: 1").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("2kib"), Ok(2048));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for bad in ["", "x", "10Q", "12", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_what_the_clients_take() {
        assert_eq!(parse_max_header("100M"), Ok(100 << 20));
        assert_eq!(parse_max_header("104857600"), Ok(100 << 20));
        for over in ["104857601", "101M", "512M", "1G"] {
            let err = parse_max_header(over).unwrap_err();
            assert!(err.starts_with("at most 100M (104857600 bytes)"), "{err}");
        }
        assert_eq!(parse_max_body("4G"), Ok(4 << 30));
        for over in ["4294967297", "5G", "8000000000G"] {
            let err = parse_max_body(over).unwrap_err();
            assert!(err.starts_with("at most 4G (4294967296 bytes)"), "{err}");
        }
        assert!(parse_max_body("99999999999999999999G").is_err());
        assert_eq!(size_name(1000), "1000");
        assert_eq!(size_name(32 << 10), "32K");
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_secs("1.5"), Ok(1.5));
        for bad in ["0", "-1", "nan", "inf", "x", ""] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("0.001").is_err());
    }
}
