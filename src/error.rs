//! The library's error type: one variant per way following a resource can fail for good; and
//! `TransportError`, a request that got no HTTP answer (here, below the HTTP client that
//! makes it, so that the two do not import each other).

use std::fmt;
use std::io;

/// Why following a resource stopped (or could not start).
///
/// Transient trouble (a dropped connection, a 503 during following) is not an error: the
/// follower backs off and retries, and says so through [`crate::Notice`]s. These are the
/// failures recovery cannot absorb.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or its scheme is not `http` or `https`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The first request for the resource failed before any HTTP answer: DNS, connection, TLS.
    Unreachable {
        /// The resource URL.
        url: String,
        /// The proxy the connection went through (`socks5://HOST:PORT (from ALL_PROXY)`), if
        /// any: its failures (a refused login, a refused tunnel) surface here too.
        proxy: Option<String>,
        /// What failed, as data: its [`TransportError::kind`] and the underlying
        /// error as its `source()`.
        cause: TransportError,
    },
    /// The user forced a transport that the resource does not advertise.
    TransportNotOffered {
        /// The resource URL.
        url: String,
        /// The transport that was asked for (its link relation name).
        wanted: String,
        /// What the resource does advertise, by link relation name (always ends with `poll`).
        offered: Vec<String>,
    },
    /// The user forced a transport on a live URL given directly (an event stream, JSON lines,
    /// a WebSocket): such a URL is followed as it is and offers no LiveResource transport.
    TransportOnLiveUrl {
        /// The URL.
        url: String,
        /// The transport that was asked for (its link relation name).
        wanted: String,
        /// What the URL is, in words ("an event stream (text/event-stream)").
        what: String,
    },
    /// The server refused a subscription over a forced transport.
    Refused {
        /// The resource URL.
        url: String,
        /// The transport.
        transport: String,
        /// What the server said.
        reason: String,
    },
    /// A response body exceeded the configured size limit.
    BodyTooLarge {
        /// The URL whose body was too large.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A response head (status line and headers) exceeded the configured size limit.
    HeadTooLarge {
        /// The URL whose response head was too large.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The server answered with redirects that cannot be followed: a loop, or a redirect to
    /// a URL that is not http or https.
    Redirect {
        /// The URL asked for.
        url: String,
        /// What the redirects did, in words.
        reason: String,
    },
    /// The server answered with an HTTP error status where a resource was expected
    /// (`inspect`; following retries instead, as the server may be starting).
    Status {
        /// The URL that answered.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A stream event or socket message exceeded the configured size limit.
    TooLarge {
        /// The resource URL.
        url: String,
        /// What was too large, in words.
        what: String,
    },
    /// The HTTP client could not be set up (for example an invalid header given by the user).
    Setup(String),
}

// Each message says what happened, as one sentence without a final stop; what to try (which
// flag to change, what to check) is the binary's to add: it knows its command line. (A bad
// URL is the exception: what a good one looks like is no flag, and the message is all the
// binary shows of it.)
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(
                f,
                "invalid URL '{url}': {reason}. Give an absolute http:// or https:// URL."
            ),
            Error::Unreachable {
                url,
                proxy: None,
                cause,
            } => write!(f, "cannot reach {url}: {cause}"),
            Error::Unreachable {
                url,
                proxy: Some(proxy),
                cause,
            } => write!(f, "cannot reach {url} through proxy {proxy}: {cause}"),
            Error::TransportNotOffered { url, wanted, offered } => write!(
                f,
                "{url} does not offer the {wanted} transport; it offers: {}",
                offered.join(", ")
            ),
            Error::TransportOnLiveUrl { url, wanted, what } => write!(
                f,
                "{url} is {what}, followed as it is: it offers no {wanted} transport"
            ),
            Error::Refused { url, transport, reason } => write!(
                f,
                "the server refused to follow {url} over {transport}: {reason}"
            ),
            Error::BodyTooLarge { url, limit } => write!(
                f,
                "the response from {url} is larger than the {limit}-byte limit"
            ),
            Error::HeadTooLarge { url, limit } => write!(
                f,
                "the response head (status line and headers) from {url} is larger than the {limit}-byte limit"
            ),
            Error::Redirect { url, reason } => {
                write!(f, "cannot follow the redirects of {url}: {reason}")
            }
            Error::Status { url, status } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                write!(f, "{url} answered HTTP {status}{reason}")
            }
            Error::TooLarge { url, what } => write!(f, "following {url} stopped: {what}"),
            Error::Setup(reason) => write!(f, "{reason}"),
        }
    }
}

// An unreachable server's message says what failed in words (so `{error}` alone is useful);
// `source()` gives the failure itself, for a program that wants more than words. A printer
// of whole chains stops at this error (the binary does), or the cause is said twice.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Unreachable { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

/// What kind of failure an [`Error`] (or a request's [`crate::http::FetchError`]) is: what
/// a program tells apart without reading the words (retry after a timeout, report a name
/// that does not resolve, raise a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL is not an absolute http or https URL.
    InvalidUrl,
    /// The host name does not resolve.
    HostNotFound,
    /// The server's address refused the connection: nothing listens there.
    ConnectionRefused,
    /// No answer in time: the connection, the response head or a read of the body.
    TimedOut,
    /// The TLS handshake failed: an untrusted certificate, or no TLS on that port.
    Tls,
    /// The connection failed otherwise: reset, closed before an answer, unreachable network.
    Connection,
    /// The server answered something that is not valid HTTP.
    Protocol,
    /// The server answered with an HTTP error status.
    Status,
    /// A response head, body, event or message exceeded the configured size limit.
    Limit,
    /// Redirects that cannot be followed: a loop, or to a URL that is not http or https.
    Redirect,
    /// A forced transport the resource does not offer, or does not accept, or this build
    /// does not implement.
    Transport,
    /// The HTTP client could not be set up (an invalid header, an unusable certificate).
    Setup,
    /// Anything else.
    Other,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidUrl { .. } => ErrorKind::InvalidUrl,
            Error::Unreachable { cause, .. } => cause.kind(),
            Error::TransportNotOffered { .. }
            | Error::TransportOnLiveUrl { .. }
            | Error::Refused { .. } => ErrorKind::Transport,
            Error::BodyTooLarge { .. } | Error::HeadTooLarge { .. } | Error::TooLarge { .. } => {
                ErrorKind::Limit
            }
            Error::Redirect { .. } => ErrorKind::Redirect,
            Error::Status { .. } => ErrorKind::Status,
            Error::Setup(_) => ErrorKind::Setup,
        }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A request that got no HTTP answer: what kind of failure, and the HTTP client's error.
#[derive(Debug)]
pub struct TransportError {
    kind: ErrorKind,
    error: ureq::Error,
}

impl TransportError {
    /// Classifies the HTTP client's error by its variant and, for I/O errors, by
    /// [`io::ErrorKind`] (never by its words, which change between versions and systems).
    pub(crate) fn new(error: ureq::Error) -> TransportError {
        let kind = match &error {
            ureq::Error::HostNotFound => ErrorKind::HostNotFound,
            ureq::Error::Other(e) if e.is::<LookupFailed>() => ErrorKind::HostNotFound,
            ureq::Error::Timeout(_) => ErrorKind::TimedOut,
            ureq::Error::Io(e) if tls_error(e).is_some() => ErrorKind::Tls,
            ureq::Error::Io(e) => match e.kind() {
                io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::TimedOut,
                _ => ErrorKind::Connection,
            },
            ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Pem(_)
            | ureq::Error::TlsRequired => ErrorKind::Tls,
            ureq::Error::Protocol(_) => ErrorKind::Protocol,
            ureq::Error::ConnectionFailed => ErrorKind::Connection,
            ureq::Error::LargeResponseHeader(..) | ureq::Error::BodyExceedsLimit(_) => {
                ErrorKind::Limit
            }
            _ => ErrorKind::Other,
        };
        TransportError { kind, error }
    }

    /// A failure with no error of the HTTP client's behind it (a worker that stopped).
    pub(crate) fn other(why: &'static str) -> TransportError {
        TransportError {
            kind: ErrorKind::Other,
            error: ureq::Error::Other(why.into()),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The TLS library's error inside an I/O error, where rustls reports a failed handshake.
fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

// ureq's errors in words a user can act on, one line, no flags (the binary adds those).
impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, self.kind) {
            (ureq::Error::HostNotFound, _) => f.write_str("host not found"),
            // The resolver's own words ("failed to lookup address information") are less
            // clear alone.
            (ureq::Error::Other(e), ErrorKind::HostNotFound) => write!(f, "host not found ({e})"),
            (ureq::Error::Other(e), _) => write!(f, "{e}"),
            (ureq::Error::ConnectionFailed, _) => f.write_str("connection failed"),
            (ureq::Error::Io(_), ErrorKind::ConnectionRefused) => f.write_str("connection refused"),
            (ureq::Error::Io(e), ErrorKind::Tls) => match tls_error(e) {
                Some(tls) => write!(f, "TLS failed ({tls})"),
                None => write!(f, "TLS failed ({e})"),
            },
            (ureq::Error::Io(e), ErrorKind::TimedOut) => write!(f, "timed out ({e})"),
            (ureq::Error::Io(e), _) => write!(f, "connection error ({e})"),
            (ureq::Error::Protocol(e), _) => write!(f, "the answer is not valid HTTP ({e})"),
            (ureq::Error::Timeout(t), _) => write!(f, "timed out ({t})"),
            (other, _) => write!(f, "{other}"),
        }
    }
}

// The cause itself, as deep as it is known: the I/O error (its kind says what the system
// reported), the TLS library's error, the resolver's error; else the HTTP client's.
impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match &self.error {
            ureq::Error::Io(e) => match tls_error(e) {
                Some(tls) => tls,
                None => e,
            },
            ureq::Error::Other(e) => match e.downcast_ref::<LookupFailed>() {
                Some(LookupFailed(io)) => io,
                None => &**e,
            },
            ureq::Error::Rustls(e) => e,
            other => other,
        })
    }
}

/// A name that did not resolve: the system resolver's error, kept whole. ureq reports it as
/// a bare I/O error whose kind the standard library leaves unnamed (`Uncategorized`), so
/// the HTTP client's resolver (`crate::http`) marks it with this type while it still knows
/// where it came from.
#[derive(Debug)]
pub(crate) struct LookupFailed(pub(crate) io::Error);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LookupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
