//! How to follow (`Options`): the parts of the command line the engine needs, and their
//! defaults.

use std::time::Duration;

use url::Url;

use crate::http::DEFAULT_MAX_BODY;
use crate::mechanism::Mechanism;

/// The default wait of a long-poll, in seconds: below common 60 s proxy limits.
pub const DEFAULT_WAIT: u64 = 55;
/// The default period of the safety-net check of push and long-poll transports (`--verify`).
pub const DEFAULT_VERIFY: Duration = Duration::from_secs(60);
/// The default plain-polling period, when neither the user nor the server sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long `auto` stays away from a mechanism it fell back from before trying it again.
pub const DEFAULT_FALL_BACK_FOR: Duration = Duration::from_secs(60);

/// How to follow: the parts of the command line the engine needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// A forced mechanism, or `None` for `auto`.
    pub transport: Option<Mechanism>,
    /// The wait for long-polls, in seconds.
    pub wait: u64,
    /// The plain-polling period chosen by the user (else the server's, else 5 s).
    pub interval: Option<Duration>,
    /// Extra request headers, sent only to each resource's own origin.
    pub headers: Vec<(String, String)>,
    /// The largest response body, event-stream event or socket message accepted, in bytes;
    /// at most [`crate::http::MAX_BODY_LIMIT`].
    pub max_body: u64,
    /// The largest response head (status line and headers) accepted, in bytes; from 1 to
    /// [`crate::http::MAX_HEADER_LIMIT`].
    pub max_header: usize,
    /// How often a quiet WebSocket is pinged. A socket silent for 2.5 times this, or a stream
    /// silent for 3 times this (servers send keep-alives), is presumed dead and reconnected.
    pub keepalive: Duration,
    /// How long `auto` stays away from a mechanism that failed repeatedly before it climbs
    /// back to it.
    pub fall_back_for: Duration,
    /// Where to listen for webhook notifications (`--callback-listen`); loopback on a free
    /// port by default.
    pub callback_listen: Option<String>,
    /// The URL servers should POST notifications to (`--callback-url`), when it is not the
    /// listener's own (behind a tunnel or NAT). Either setting lets `auto` use webhooks.
    pub callback_url: Option<Url>,
    /// Follow the resource's changes feed instead of its value (`--changes`); `auto` does so
    /// anyway for a collection ([`crate::auto::collection`]).
    pub changes: bool,
    /// Follow the resource's value even when it is a collection (`--value`).
    pub value: bool,
    /// How often push and long-poll transports check each resource with a conditional GET
    /// (`--verify`), so a server that silently forgot a subscription is noticed; `None`: never.
    pub verify: Option<Duration>,
    /// Certificate authorities (DER) to trust for https and wss instead of the bundled
    /// Mozilla roots, like curl's `--cacert`.
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// Do not verify certificates at all (`--insecure`). Only for testing: anyone on the path
    /// can then read and change what is followed.
    pub insecure: bool,
    /// How live URLs given directly are followed (event streams, JSON lines, WebSockets).
    pub live: crate::live::LiveOptions,
}

/// The default keep-alive period: the reference server's, and common proxies'.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

impl Options {
    /// An event-stream parser bounded by `max_body`: a line or an event over it is an error.
    pub(crate) fn sse_parser(&self) -> crate::wire::sse::Parser {
        let max = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        crate::wire::sse::Parser::with_limits(max, max)
    }

    /// The `Wait` of a long-poll: the user's, but no longer than the `--verify` period (rounded
    /// up to whole seconds): each long-poll is itself a conditional GET, and a server that
    /// forgot a held long-poll answers the next one at once.
    pub(crate) fn long_poll_wait(&self) -> u64 {
        match self.verify {
            Some(period) => self.wait.min(period.as_secs_f64().ceil().max(1.0) as u64),
            None => self.wait,
        }
    }

    /// How long a stream may stay silent before it is presumed dead.
    pub(crate) fn stream_idle(&self) -> Duration {
        self.keepalive * 3
    }

    /// How long a WebSocket may stay silent (pings unanswered) before it is presumed dead.
    pub(crate) fn socket_dead_after(&self) -> Duration {
        self.keepalive * 5 / 2
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            transport: None,
            wait: DEFAULT_WAIT,
            interval: None,
            headers: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_header: crate::http::DEFAULT_MAX_HEADER,
            keepalive: DEFAULT_KEEPALIVE,
            fall_back_for: DEFAULT_FALL_BACK_FOR,
            ca_certs: None,
            insecure: false,
            changes: false,
            value: false,
            verify: Some(DEFAULT_VERIFY),
            callback_listen: None,
            callback_url: None,
            live: crate::live::LiveOptions::default(),
        }
    }
}
