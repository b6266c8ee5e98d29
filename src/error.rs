//! The library's error type: one variant per way following a resource can fail for good.

use std::fmt;

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
        /// The underlying failure, in words.
        reason: String,
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
    /// The server refused a subscription over a forced transport.
    Refused {
        /// The resource URL.
        url: String,
        /// The transport.
        transport: String,
        /// What the server said.
        reason: String,
    },
    /// The user forced a transport this build of lrwatch does not implement yet.
    TransportUnsupported {
        /// The transport that was asked for.
        wanted: String,
    },
    /// A response body exceeded the configured size limit.
    BodyTooLarge {
        /// The URL whose body was too large.
        url: String,
        /// The limit in bytes.
        limit: u64,
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => {
                write!(f, "invalid URL '{url}': {reason}. Give an absolute http:// or https:// URL.")
            }
            Error::Unreachable { url, reason } => write!(
                f,
                "cannot reach {url}: {reason}. Check that the server is running and the address is right."
            ),
            Error::TransportNotOffered { url, wanted, offered } => write!(
                f,
                "{url} does not offer the {wanted} transport; it offers: {}. Use --transport auto or one of those.",
                offered.join(", ")
            ),
            Error::Refused { url, transport, reason } => write!(
                f,
                "the server refused to follow {url} over {transport}: {reason}. Try --transport auto."
            ),
            Error::TransportUnsupported { wanted } => write!(
                f,
                "the {wanted} transport is not supported by this version of lrwatch. Use --transport auto."
            ),
            Error::BodyTooLarge { url, limit } => write!(
                f,
                "the response from {url} is larger than the {limit}-byte limit. Raise it with --max-body if that is expected."
            ),
            Error::TooLarge { url, what } => write!(
                f,
                "following {url} stopped: {what}. Raise the limit with --max-body if that is expected."
            ),
            Error::Setup(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
