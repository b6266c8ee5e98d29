//! HTTP requests for followers: redirects followed by hand (so user headers never leave their
//! origin), bounded bodies, per-request timeouts, and one retry on a stale pooled connection.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use ureq::http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::error::LookupFailed;
pub use crate::error::TransportError;
use crate::ErrorKind;

/// The largest response head (status line and headers) read by default: 32 KiB, twice what
/// Node.js's HTTP client accepts. Every open connection holds an input buffer this large, so
/// it is most of what a held long-poll costs (1,000 long-polls: 134 MB at 64 KiB, BENCHMARKS.md).
pub const DEFAULT_MAX_HEADER: usize = 32 * 1024;
/// The largest response body read by default: 16 MiB.
pub const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;
/// The largest head limit the HTTP client can take: ureq 3 reads a response head into one
/// input buffer of `max_header` bytes, and panics ("ConsumeBuf grown to unreasonable size")
/// when that buffer would be over 100 MiB. Each open connection holds such a buffer.
pub const MAX_HEADER_LIMIT: usize = 100 * 1024 * 1024;
/// The largest body limit: 4 GiB (less where memory addresses are 32-bit). A body, event or
/// socket message is held in memory whole, and the WebSocket client reserves a frame's
/// declared length at once: with a limit of exabytes, a 10-byte frame header from any server
/// made lrwatch abort on the failed allocation.
pub const MAX_BODY_LIMIT: u64 = if (isize::MAX as u64) < (4 << 30) {
    isize::MAX as u64
} else {
    4 << 30
};
/// How many redirects one request may follow.
const MAX_REDIRECTS: usize = 10;
/// Time allowed to set up a connection (DNS + TCP + TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The URL that answered, after redirects: the base for relative links.
    pub url: Url,
    /// Whether every redirect followed to get here (if any) was permanent (301, 308): the
    /// final URL may then be remembered in place of the one asked.
    pub moved_permanently: bool,
    /// All response headers.
    pub headers: HeaderMap,
    /// The body (empty for HEAD and 304).
    pub body: Vec<u8>,
}

impl Response {
    /// A header as text, if present and UTF-8 (see [`header_text`] for one that is not).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }
}

/// A header value as text: UTF-8 when it is, else Latin-1 (what HTTP/1.1 allowed before RFC
/// 7230 and what servers still send). Never fails, so a value is never dropped for its bytes;
/// it may hold control characters, which whoever shows it escapes.
pub fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(value.as_bytes().iter().map(|&b| char::from(b)).collect()),
    }
}

/// Why a request got no usable response.
#[derive(Debug)]
pub enum FetchError {
    /// DNS, connect, TLS, reset, timeout: the server could not be talked to.
    Transport(TransportError),
    /// The body was larger than the limit.
    TooLarge(u64),
    /// The response head (status line and headers) was larger than this limit, in bytes.
    HeadTooLarge(usize),
    /// The server answered with redirects that cannot be followed: too many (a loop), or to
    /// a URL that is not http or https. The text says which.
    Redirect(String),
}

impl FetchError {
    /// The library error for a request about `url` that failed so; a failure to connect
    /// names the proxy the connection went through, as the HTTP client decided it.
    pub fn into_error(self, url: &Url) -> crate::Error {
        let proxy = crate::proxy::Route::to(url)
            .proxy()
            .map(ToString::to_string);
        let url = url.to_string();
        match self {
            FetchError::Transport(cause) => crate::Error::Unreachable { url, proxy, cause },
            FetchError::TooLarge(limit) => crate::Error::BodyTooLarge { url, limit },
            FetchError::HeadTooLarge(limit) => crate::Error::HeadTooLarge { url, limit },
            FetchError::Redirect(reason) => crate::Error::Redirect { url, reason },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::Transport(cause) => cause.kind(),
            FetchError::TooLarge(_) | FetchError::HeadTooLarge(_) => ErrorKind::Limit,
            FetchError::Redirect(_) => ErrorKind::Redirect,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transport(cause) => cause.fmt(f),
            FetchError::Redirect(reason) => f.write_str(reason),
            FetchError::TooLarge(limit) => write!(f, "body larger than {limit} bytes"),
            FetchError::HeadTooLarge(limit) => {
                write!(f, "response head larger than {limit} bytes")
            }
        }
    }
}

// As with `crate::Error`: the words include the cause, `source()` is the cause itself.
impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Transport(cause) => Some(cause),
            _ => None,
        }
    }
}

/// ureq's default resolver, with its I/O errors marked as failed lookups (see
/// [`crate::error::LookupFailed`]).
#[derive(Debug, Default)]
struct Resolver(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for Resolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        self.0
            .resolve(uri, config, timeout)
            .map_err(|error| match error {
                ureq::Error::Io(e) => ureq::Error::Other(Box::new(LookupFailed(e))),
                other => other,
            })
    }
}

/// A blocking HTTP client shared by every follower.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    user_headers: Vec<(HeaderName, HeaderValue)>,
    max_body: u64,
    /// When every request must be over, bodies and streams read to the end included (see
    /// [`HttpClient::until`]); `None`: each request is bounded by its own timeouts only.
    deadline: Option<std::time::Instant>,
}

impl HttpClient {
    /// Builds a client. `user_headers` are sent only to URLs with the same origin as the
    /// resource a request is made for; see [`HttpClient::get`].
    pub fn new(
        user_headers: Vec<(HeaderName, HeaderValue)>,
        max_body: u64,
        ca_certs: Option<&[Vec<u8>]>,
    ) -> HttpClient {
        HttpClient::with_trust(user_headers, max_body, ca_certs, false, DEFAULT_MAX_HEADER)
    }

    /// Like [`HttpClient::new`]; with `insecure`, certificates are not verified at all
    /// (`--insecure`: the caller warns).
    pub fn with_trust(
        user_headers: Vec<(HeaderName, HeaderValue)>,
        max_body: u64,
        ca_certs: Option<&[Vec<u8>]>,
        insecure: bool,
        max_header: usize,
    ) -> HttpClient {
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(insecure);
        if let Some(certs) = ca_certs {
            let certs: Vec<_> = certs
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            // Redirects are followed in `get`, so that each hop decides afresh which headers
            // may go to it.
            .max_redirects(0)
            .user_agent(concat!("lrwatch/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // Each open connection owns these buffers, and a held long-poll is an open
            // connection: ureq's 128 KiB defaults would cost 256 KiB per followed resource.
            // Requests are small; the input buffer holds a response head (`max_header`), and
            // one byte more: ureq notices a head over the limit only once it holds more than
            // the limit; with a buffer of exactly the limit it can read no further and
            // reports "Peer disconnected" instead. (At the very maximum ureq takes, the buffer
            // stays at the limit: a head of exactly that size is then misreported.)
            .max_response_header_size(max_header)
            .input_buffer_size(max_header.saturating_add(1).min(MAX_HEADER_LIMIT))
            .output_buffer_size(8 * 1024)
            .build();
        // ureq's default connectors, but TCP sockets that acknowledge at once (see `tcp`).
        let agent = ureq::Agent::with_parts(config, crate::tcp::connector(), Resolver::default());
        HttpClient {
            agent,
            user_headers,
            max_body,
            deadline: None,
        }
    }

    /// This client, with every request over by `deadline`, whatever the server does: a body
    /// dripped a byte at a time (each read in time, the whole never done) is cut there too.
    /// For `lrwatch check`, whose `--budget` bounds the whole run.
    pub fn until(mut self, deadline: std::time::Instant) -> HttpClient {
        self.deadline = Some(deadline);
        self
    }

    /// `GET url` on behalf of `resource`, with `extra` headers; the response (any status) or
    /// why there is none. `timeout` bounds the wait for the response head and, separately,
    /// each read of the body.
    pub fn get(
        &self,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        self.request(Method::Get, url, resource, extra, timeout)
    }

    /// `HEAD url`, like [`HttpClient::get`] (the body is empty).
    pub fn head(
        &self,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        self.request(Method::Head, url, resource, extra, timeout)
    }

    fn request(
        &self,
        method: Method,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let (url, moved_permanently, mut response) =
            self.follow_redirects(method, url, resource, extra, timeout)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge(self.max_body),
                other => fetch_error(other),
            })?;
        Ok(Response {
            status,
            url,
            moved_permanently,
            headers,
            body,
        })
    }

    /// `GET url` for a stream: the response head, and the body as a reader without a size
    /// limit (the caller's parser bounds what it keeps). `idle` bounds each wait for bytes, so
    /// a silent peer is noticed: the server's keep-alives must come more often.
    pub fn open(
        &self,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        idle: Duration,
    ) -> Result<Stream, FetchError> {
        let (url, moved_permanently, response) =
            self.follow_redirects(Method::Get, url, resource, extra, idle)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Ok(Stream {
            status,
            url,
            moved_permanently,
            headers,
            body: Box::new(response.into_body().into_reader()),
        })
    }

    /// Sends the request, following redirects here so each hop decides which headers it gets.
    /// Also says whether every redirect followed was permanent.
    fn follow_redirects(
        &self,
        method: Method,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<(Url, bool, ureq::http::Response<ureq::Body>), FetchError> {
        let mut url = url.clone();
        let mut permanent = true;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.send(method, &url, resource, extra, timeout)?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let next = response
                    .headers()
                    .get("location")
                    .and_then(|v| url.join(&header_text(v)).ok());
                if let Some(next) = next {
                    // Asking ureq for `file:` (or any other scheme) fails with words about
                    // URI syntax; say what the server did instead.
                    if !matches!(next.scheme(), "http" | "https") {
                        return Err(FetchError::Redirect(format!(
                            "redirected ({status}) to {next}, which is not an http or https URL"
                        )));
                    }
                    url = next;
                    permanent &= matches!(status, 301 | 308);
                    continue;
                }
            }
            return Ok((url, permanent, response));
        }
        Err(FetchError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects in a row (a redirect loop?), the last to {url}"
        )))
    }

    fn send(
        &self,
        method: Method,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
        // A pooled connection the server closed since its last use fails at once with a
        // reset or EOF before any response head (ureq does not retry); a GET is safe to repeat.
        match self.try_send(method, url, resource, extra, timeout) {
            Err(Attempt::Stale(_)) => self.try_send(method, url, resource, extra, timeout),
            other => other,
        }
        .map_err(|(Attempt::Stale(e) | Attempt::Failed(e))| e)
    }

    fn try_send(
        &self,
        method: Method,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, Attempt> {
        let request = match method {
            Method::Get => self.agent.get(url.as_str()),
            Method::Head => self.agent.head(url.as_str()),
        };
        let left = self.deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_millis(1))
        });
        let mut request = request
            .config()
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            // ureq's global timeout runs on while the body is read, to its end.
            .timeout_global(left)
            .build();
        for (name, value) in self.headers_for(url, resource) {
            request = request.header(name, value);
        }
        for (name, value) in extra {
            request = request.header(*name, value.as_str());
        }
        request.call().map_err(classify)
    }

    /// A webhook subscription request: `POST` with a form body, or `DELETE` without one. No
    /// redirects are followed; the answer's body is bounded like any other.
    pub fn submit(
        &self,
        method: &str,
        url: &Url,
        resource: &Url,
        form: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let post = method == "POST";
        let builder = if post {
            self.agent.post(url.as_str())
        } else {
            self.agent.delete(url.as_str()).force_send_body()
        };
        let mut request = builder
            .config()
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build();
        for (name, value) in self.headers_for(url, resource) {
            request = request.header(name, value);
        }
        if post {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        let result = request.send(form.unwrap_or("").as_bytes());
        let mut response = result.map_err(fetch_error)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .unwrap_or_default();
        Ok(Response {
            status: response.status().as_u16(),
            url: url.clone(),
            moved_permanently: true,
            headers: response.headers().clone(),
            body,
        })
    }

    /// The user's headers, for a URL on `resource`'s behalf: none unless same origin.
    pub fn headers_for(&self, url: &Url, resource: &Url) -> &[(HeaderName, HeaderValue)] {
        if url.origin() == resource.origin() {
            &self.user_headers
        } else {
            &[]
        }
    }
}

/// The methods a follower (or `inspect`, `check`) sends: both safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
}

/// Checks user headers (`-H`) and turns them into header names and values.
pub fn user_headers(headers: &[(String, String)]) -> crate::Result<Vec<(HeaderName, HeaderValue)>> {
    headers
        .iter()
        .map(|(name, value)| {
            let n = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| crate::Error::Setup(format!("invalid header name '{name}'")))?;
            let v = HeaderValue::from_str(value.trim())
                .map_err(|_| crate::Error::Setup(format!("invalid value for header '{name}'")))?;
            Ok((n, v))
        })
        .collect()
}

/// The certificates of a PEM file's text, in DER (what `--cacert` reads); an error says why
/// there are none.
pub fn pem_certificates(pem: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert.der().to_vec()),
            Ok(_) => {}
            Err(e) => return Err(format!("not a PEM file: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("it holds no certificate".to_string());
    }
    Ok(certs)
}

/// The rustls client configuration for wss: `ca_certs` (DER) as the roots when given, else
/// the bundled Mozilla roots; the ring provider, as for https.
pub(crate) fn wss_tls_config(
    ca_certs: Option<&[Vec<u8>]>,
    insecure: bool,
) -> crate::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_certs {
        Some(certs) => {
            for der in certs {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| crate::Error::Setup(format!("unusable CA certificate: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Setup(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if insecure {
        config
            .dangerous()
            .set_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)));
    }
    Ok(config)
}

/// `--insecure`: accepts any certificate (signatures are still checked, so the handshake
/// itself stays sound; only the identity of the server goes unverified).
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An open response whose body is read as it arrives.
pub struct Stream {
    /// The status code.
    pub status: u16,
    /// The URL that answered, after redirects.
    pub url: Url,
    /// Whether every redirect followed to get here (if any) was permanent.
    pub moved_permanently: bool,
    /// All response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Box<dyn io::Read + Send>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("status", &self.status)
            .field("url", &self.url)
            .finish()
    }
}

enum Attempt {
    Stale(FetchError),
    Failed(FetchError),
}

fn classify(error: ureq::Error) -> Attempt {
    let stale = matches!(&error, ureq::Error::Io(e) if matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    ));
    if stale {
        Attempt::Stale(fetch_error(error))
    } else {
        Attempt::Failed(fetch_error(error))
    }
}

/// A failed read of a [`Stream`]'s body (or a failed connect of our own), classified like
/// ureq's failures. ureq hands its own errors out of a body's reader wrapped in an I/O error
/// (a per-read timeout among them): unwrapped first, so a timeout is classified as one.
pub(crate) fn io_failure(error: io::Error) -> FetchError {
    fetch_error(ureq::Error::from(error))
}

/// ureq's error as a [`FetchError`]: a head over the limit is the caller's to report as
/// such; every other failure is classified by [`TransportError::new`].
fn fetch_error(error: ureq::Error) -> FetchError {
    match error {
        ureq::Error::LargeResponseHeader(_, limit) => FetchError::HeadTooLarge(limit),
        other => FetchError::Transport(TransportError::new(other)),
    }
}

#[cfg(test)]
mod tests {
    //! Each kind of failure classified from a real one, over loopback (a `.invalid` name
    //! fails in the local resolver: RFC 6761), with its cause as `source()`.

    use std::error::Error as _;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    fn client(max_header: usize) -> HttpClient {
        HttpClient::with_trust(Vec::new(), 1024, None, false, max_header)
    }

    /// `GET url` that must fail; the failure.
    fn failure(url: &str, timeout: Duration) -> FetchError {
        let url: Url = url.parse().unwrap();
        match client(DEFAULT_MAX_HEADER).get(&url, &url, &[], timeout) {
            Ok(r) => panic!("an answer: {}", r.status),
            Err(e) => e,
        }
    }

    /// A listener on 127.0.0.1 that answers each connection's first bytes with `answer`
    /// (nothing, when `None`: it holds the connection and stays silent).
    fn listener(answer: Option<&'static [u8]>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut stream in listener.incoming().flatten() {
                if let Some(answer) = answer {
                    let _ = stream.read(&mut [0; 4096]);
                    let _ = stream.write_all(answer);
                }
                held.push(stream);
            }
        });
        port
    }

    /// The transport failure's kind, and that its `source()` is there and the library
    /// error made of it has the same kind and gives it as its own `source()`.
    fn transport_kind(error: FetchError) -> (ErrorKind, String) {
        let kind = error.kind();
        let text = error.to_string();
        let FetchError::Transport(cause) = &error else {
            panic!("not a transport failure: {error:?}");
        };
        assert!(cause.source().is_some(), "{error:?}");
        assert!(error.source().is_some(), "{error:?}");
        let library = error.into_error(&"http://h/".parse().unwrap());
        assert_eq!(library.kind(), kind);
        let cause = library.source().expect("the library error's source");
        assert!(cause.downcast_ref::<TransportError>().is_some());
        (kind, text)
    }

    #[test]
    fn a_refused_connection() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = failure(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5));
        let FetchError::Transport(cause) = &error else {
            panic!("{error:?}")
        };
        let io = cause.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        let (kind, text) = transport_kind(error);
        assert_eq!(
            (kind, text.as_str()),
            (ErrorKind::ConnectionRefused, "connection refused")
        );
    }

    #[test]
    fn a_name_that_does_not_resolve() {
        let error = failure("http://nonexistent.invalid/", Duration::from_secs(5));
        let (kind, text) = transport_kind(error);
        assert_eq!(kind, ErrorKind::HostNotFound);
        assert!(text.starts_with("host not found"), "{text}");
    }

    #[test]
    fn a_listener_that_never_answers() {
        let port = listener(None);
        let error = failure(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        );
        let (kind, text) = transport_kind(error);
        assert_eq!(kind, ErrorKind::TimedOut);
        assert!(text.starts_with("timed out"), "{text}");
    }

    #[test]
    fn a_body_that_stops_coming_is_a_timeout() {
        // A head, the start of a chunked body, then silence past the per-read timer.
        let port = listener(Some(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
        ));
        let url: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let stream = client(DEFAULT_MAX_HEADER)
            .open(&url, &url, &[], Duration::from_millis(300))
            .unwrap();
        let mut body = Vec::new();
        let error = stream.body.take(1024).read_to_end(&mut body).unwrap_err();
        assert_eq!(body, b"{}");
        let error = io_failure(error);
        let (kind, text) = transport_kind(error);
        assert_eq!(kind, ErrorKind::TimedOut, "{text}");
        assert!(text.starts_with("timed out"), "{text}");
    }

    #[test]
    fn plain_http_on_an_https_url() {
        let port = listener(Some(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        ));
        let error = failure(
            &format!("https://127.0.0.1:{port}/"),
            Duration::from_secs(5),
        );
        let FetchError::Transport(cause) = &error else {
            panic!("{error:?}")
        };
        assert!(cause.source().unwrap().is::<rustls::Error>(), "{error:?}");
        let (kind, text) = transport_kind(error);
        assert_eq!(kind, ErrorKind::Tls);
        assert!(text.starts_with("TLS failed ("), "{text}");
    }

    #[test]
    fn a_head_over_the_limit() {
        let port = listener(Some(
            b"HTTP/1.1 200 OK\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 0\r\n\r\n",
        ));
        let url: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let error = client(64)
            .get(&url, &url, &[], Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(error, FetchError::HeadTooLarge(64)), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Limit);
        assert_eq!(error.into_error(&url).kind(), ErrorKind::Limit);
    }
}
