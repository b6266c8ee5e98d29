//! HTTP/1.1 served over one `TcpStream`: bounded request heads and bodies, responses,
//! keep-alive. The reference server ([`crate::server`]) and the followers' webhook receiver
//! (`follow::callbacks`) both serve with it, so it sits below both and imports neither.
//!
//! Framing problems (a head too large, a body too large, `Transfer-Encoding`, bytes that are not
//! HTTP) are answered here and end the connection, because after them the next request cannot be
//! found in the byte stream. Everything else is the handler's business.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The largest request head read: request line and headers, with their line ends.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The largest request body accepted.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// The most of a refused request's first line looked at for its method and target: enough
/// for any target worth showing, and a bound when the line never ended.
const MAX_LINE_SEEN: usize = 8 * 1024;
/// More header lines than this answers 431 too; httparse needs a fixed-size array.
const MAX_HEADERS: usize = 128;
/// A client that does not read its response within this time is dropped, so it cannot hold a
/// thread forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection closed after an error keeps swallowing what the client still sends,
/// so that the error response is not destroyed by a TCP reset.
const LINGER: Duration = Duration::from_secs(1);

/// One request, head and body, as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The method, case-sensitive as HTTP says (`GET`, not `get`).
    pub(crate) method: String,
    /// The path of the request target, without the query.
    pub(crate) path: String,
    /// The query, without the `?`.
    pub(crate) query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) version: u8,
    /// Header fields in order, names lower-cased, values as sent (lossily decoded as UTF-8).
    pub(crate) headers: Vec<(String, String)>,
    /// The body, exactly `Content-Length` bytes.
    pub(crate) body: Vec<u8>,
    /// The request head as received, for handing a WebSocket upgrade to tungstenite.
    pub(crate) raw_head: Vec<u8>,
}

impl Request {
    /// A request as the reader would hand it over, for the server's unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Self {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            raw_head: Vec::new(),
        }
    }

    /// The first value of a header field, by lower-case name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header field, by lower-case name, in order.
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client lets the connection stay open after this request.
    fn keep_alive(&self) -> bool {
        let mut tokens = self
            .header_values("connection")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase());
        if self.version >= 1 {
            !tokens.any(|t| t == "close")
        } else {
            // HTTP/1.0 closes unless the client asked for keep-alive (and did not also say close).
            let tokens: Vec<String> = tokens.collect();
            tokens.iter().any(|t| t == "keep-alive") && !tokens.iter().any(|t| t == "close")
        }
    }
}

/// A response to write. `Content-Length`, `Date`, `Server`, `Cache-Control` and `Connection`
/// are added when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// Header fields in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The representation. For HEAD and 304 only its length is sent.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// An empty response with this status.
    pub(crate) fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header field.
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub(crate) fn body(self, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        let mut response = self.header("Content-Type", content_type);
        response.body = body.into();
        response
    }

    /// A JSON error body: `{"error":"..."}`.
    pub(crate) fn error(status: u16, message: &str) -> Response {
        let body = serde_json::json!({ "error": message }).to_string();
        Response::new(status).body("application/json", body)
    }

    /// The first value of a header field, by case-insensitive name (for tests and the writer).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A connection taken over after a request: SSE streams and WebSockets. It gets the stream and
/// the bytes already read past the request (a pipelining client's next request, or WebSocket
/// frames sent early).
pub(crate) type Takeover = Box<dyn FnOnce(TcpStream, Vec<u8>)>;

/// What a handler answers: a response, or a function that takes the connection over.
pub(crate) enum Reply {
    /// An ordinary response; the connection may be kept alive.
    Full(Response),
    /// A response, and what to do once it has been written (or could not be): a handler
    /// that must know its answer left (the webhook receiver, before lrwatch exits).
    Then(Response, Box<dyn FnOnce() + Send>),
    /// The connection is handed over and not used for HTTP again.
    Takeover(Takeover),
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Full(response)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Full(r) | Reply::Then(r, _) => r.fmt(f),
            Reply::Takeover(_) => f.write_str("Takeover"),
        }
    }
}

impl Reply {
    /// The response, for tests that expect one.
    #[cfg(test)]
    pub(crate) fn response(self) -> Response {
        match self {
            Reply::Full(r) | Reply::Then(r, _) => r,
            Reply::Takeover(_) => panic!("expected a response, got a takeover"),
        }
    }
}

/// A request refused before any handler saw it (a framing error), as far as it could be read,
/// for whoever wants to hear of it (the reference server's `-v` log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// The request line's first word, if any arrived (lossily decoded, not checked).
    pub(crate) method: Option<String>,
    /// The request line's second word, if any arrived (lossily decoded, not checked).
    pub(crate) target: Option<String>,
    /// The status answered.
    pub(crate) status: u16,
    /// Why, as the answer's body says it.
    pub(crate) why: String,
}

/// Told of every request refused before routing; the reader stays ignorant of who listens.
pub(crate) type OnRejected = Arc<dyn Fn(&Rejected) + Send + Sync>;

/// How connections are served, beyond what the handler answers.
#[derive(Clone)]
pub(crate) struct Serving {
    /// How long a connection may idle before a request head, and the most a head or a body
    /// may take to arrive.
    pub(crate) idle: Duration,
    /// Header fields added to the answers written here, before any handler sees a request
    /// (the framing errors: 400, 408, 411, 413, 417, 431), so that they carry what the
    /// handler's answers carry (the reference server's CORS headers: a page must be able to
    /// read why its request failed).
    pub(crate) error_headers: Vec<(String, String)>,
    /// Called with each request refused before the handler could see it, before its answer is
    /// written: those never reach the handler, yet they are what a client's author most needs
    /// to see.
    pub(crate) on_rejected: Option<OnRejected>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("idle", &self.idle)
            .field("error_headers", &self.error_headers)
            .field("on_rejected", &self.on_rejected.is_some())
            .finish()
    }
}

impl Serving {
    /// Serving with this idle timeout, nothing added to errors, and nobody told of them.
    pub(crate) fn new(idle: Duration) -> Serving {
        Serving {
            idle,
            error_headers: Vec::new(),
            on_rejected: None,
        }
    }
}

/// Serves requests on one connection until it closes, fails, idles out or breaks framing.
pub(crate) fn serve_connection(
    stream: TcpStream,
    idle: Duration,
    handle: &dyn Fn(&Request) -> Reply,
) {
    serve_connection_with(stream, &Serving::new(idle), handle);
}

/// [`serve_connection`], served as `serving` says.
pub(crate) fn serve_connection_with(
    mut stream: TcpStream,
    serving: &Serving,
    handle: &dyn Fn(&Request) -> Reply,
) {
    let idle = serving.idle;
    // Small responses go out at once instead of waiting on Nagle for the client's ACK.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    // Bytes read but not yet used: the start of the next pipelined request, if any.
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let (request, used) = match read_request(&mut stream, &mut buf, idle) {
            Ok(read) => read,
            Err(ReadError::Closed) => return,
            Err(ReadError::Reject(refusal)) => {
                if let Some(tell) = &serving.on_rejected {
                    let (method, target) = request_line_words(&buf);
                    tell(&Rejected {
                        method,
                        target,
                        status: refusal.status,
                        why: refusal.why.clone(),
                    });
                }
                let mut response = refusal.response();
                response
                    .headers
                    .extend(serving.error_headers.iter().cloned());
                let _ = write_response(&mut stream, &response, false, Connection::Close);
                linger_close(stream);
                return;
            }
        };
        buf.drain(..used);
        let keep_alive = request.keep_alive();
        let (response, then) = match handle(&request) {
            Reply::Full(response) => (response, None),
            Reply::Then(response, then) => (response, Some(then)),
            Reply::Takeover(run) => {
                let _ = stream.set_read_timeout(None);
                run(stream, buf);
                return;
            }
        };
        let connection = match (keep_alive, request.version) {
            (false, _) => Connection::Close,
            (true, 0) => Connection::KeepAlive,
            (true, _) => Connection::Default,
        };
        let head_only = request.method == "HEAD";
        let written = write_response(&mut stream, &response, head_only, connection);
        if let Some(then) = then {
            then();
        }
        if written.is_err() {
            return;
        }
        if !keep_alive {
            // Lingering, because bytes the client pipelined after this request would otherwise
            // turn the close into a reset that can destroy the response in flight.
            linger_close(stream);
            return;
        }
    }
}

/// What could be read of a refused request's line: its first two words. `buf` starts with
/// the refused request (leading empty lines are already dropped).
fn request_line_words(buf: &[u8]) -> (Option<String>, Option<String>) {
    let seen = &buf[..buf.len().min(MAX_LINE_SEEN)];
    let line = seen.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let mut words = line
        .split(|b| *b == b' ' || *b == b'\r')
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned());
    (words.next(), words.next())
}

/// Why no request came out of the connection.
#[derive(Debug)]
enum ReadError {
    /// The client went away or idled out between requests: nothing to answer.
    Closed,
    /// The bytes cannot be served: answer this, then close.
    Reject(Refusal),
}

/// A request refused by the reader: the status and why, answered as a JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    why: String,
}

impl Refusal {
    fn new(status: u16, why: &str) -> Refusal {
        Refusal {
            status,
            why: why.to_owned(),
        }
    }

    fn response(&self) -> Response {
        Response::error(self.status, &self.why)
    }
}

/// Reads one whole request; returns it with the number of bytes of `buf` it used.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    idle: Duration,
) -> Result<(Request, usize), ReadError> {
    // One deadline for the whole head: a client trickling bytes cannot hold the thread longer
    // than an idle one.
    let deadline = Instant::now() + idle;
    // Where the search for the blank line resumes, so a head trickling in byte by byte costs
    // linear time, not quadratic.
    let mut scanned: usize = 0;
    let head_len = loop {
        if skip_leading_newlines(buf) > 0 {
            scanned = 0;
        }
        match find_head_end(buf, scanned.saturating_sub(2)) {
            Some(end) if end > MAX_HEAD => return Err(ReadError::Reject(head_too_large())),
            Some(end) => break end,
            None if buf.len() >= MAX_HEAD => return Err(ReadError::Reject(head_too_large())),
            None => scanned = buf.len(),
        }
        match read_some(stream, buf, deadline) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !buf.is_empty() => {
                return Err(ReadError::Reject(Refusal::new(
                    408,
                    "the request head did not arrive in time",
                )))
            }
            Err(_) => return Err(ReadError::Closed),
        }
    };
    let mut request = parse_head(&buf[..head_len]).map_err(ReadError::Reject)?;
    request.raw_head = buf[..head_len].to_vec();
    let body_len = body_length(&request).map_err(ReadError::Reject)?;
    if body_len > 0 && request.version >= 1 {
        if let Some(expect) = request.header("expect") {
            if !expect.trim().eq_ignore_ascii_case("100-continue") {
                return Err(ReadError::Reject(Refusal::new(
                    417,
                    "only \"Expect: 100-continue\" is supported",
                )));
            }
            // The client waits for this before sending the body (curl does for large PUTs).
            if buf.len() == head_len {
                let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
    }
    let deadline = Instant::now() + idle;
    while buf.len() < head_len + body_len {
        match read_some(stream, buf, deadline) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                return Err(ReadError::Reject(Refusal::new(
                    408,
                    "the request body did not arrive in time",
                )))
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
    request.body = buf[head_len..head_len + body_len].to_vec();
    Ok((request, head_len + body_len))
}

fn head_too_large() -> Refusal {
    Refusal::new(
        431,
        "request head too large: at most 64 KiB and 128 header fields",
    )
}

/// Reads what is available into `buf`, waiting at most until `deadline`.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left))?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    // Linux reports an expired read timeout as WouldBlock, other systems as TimedOut.
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Drops the empty lines a sloppy client may send between requests (RFC 9112, 2.2), so that
/// they neither count as a head's end nor as garbage. Returns how many bytes went.
fn skip_leading_newlines(buf: &mut Vec<u8>) -> usize {
    let n = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buf.drain(..n);
    n
}

/// The length of the head, blank line included, once `buf` holds a whole one. Bare LF line ends
/// are accepted, as httparse accepts them. The search starts at `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.iter().enumerate().skip(from).find_map(|(i, b)| {
        if *b != b'\n' {
            return None;
        }
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

/// Parses a complete head (ending with its blank line) into a request without a body.
fn parse_head(head: &[u8]) -> Result<Request, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(malformed("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(head_too_large()),
        Err(e) => return Err(malformed(&e.to_string())),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(malformed("incomplete request line"));
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let (path, query) = split_target(target)?;
    let request = Request {
        method: method.to_owned(),
        path,
        query,
        version,
        headers,
        body: Vec::new(),
        raw_head: Vec::new(),
    };
    // RFC 9112, 3.2: a 1.1 request without exactly one Host is answered 400.
    if request.version >= 1 && request.header_values("host").count() != 1 {
        return Err(malformed(
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    Ok(request)
}

/// Splits a request target into path and query: origin form (`/a?b`) or absolute form
/// (`http://host/a?b`, which proxies send).
fn split_target(target: &str) -> Result<(String, Option<String>), Refusal> {
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        let url = url::Url::parse(target)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| malformed("the request target must be a path or an http URL"))?;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    };
    Ok(match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target, None),
    })
}

fn malformed(why: &str) -> Refusal {
    Refusal::new(400, &format!("malformed request: {why}"))
}

/// The body length the head announces, or the response refusing it.
fn body_length(request: &Request) -> Result<usize, Refusal> {
    if request.header("transfer-encoding").is_some() {
        return Err(Refusal::new(
            411,
            "Transfer-Encoding is not supported in requests: send Content-Length",
        ));
    }
    let mut length: Option<&str> = None;
    // Several Content-Length values (in one field or several) are fine only if they agree
    // (RFC 9112, 6.3): anything else could be a request-smuggling attempt.
    for value in request
        .header_values("content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("Content-Length is not a number"));
        }
        match length {
            Some(seen) if seen != value => {
                return Err(malformed("conflicting Content-Length values"));
            }
            _ => length = Some(value),
        }
    }
    let Some(length) = length else {
        return Ok(0);
    };
    // All digits: a parse failure can only be overflow, which is too large all the same.
    match length.parse::<usize>() {
        Ok(n) if n <= MAX_BODY => Ok(n),
        _ => Err(Refusal::new(413, "request body too large: at most 1 MiB")),
    }
}

/// The `Connection` header a response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// HTTP/1.1 keeps the connection open without saying so.
    Default,
    /// HTTP/1.0 keeps it open only when told so.
    KeepAlive,
    /// The connection closes after this response.
    Close,
}

/// Serializes a response head (and body unless `head_only`) into bytes.
fn encode_response(response: &Response, head_only: bool, connection: Connection) -> Vec<u8> {
    let status = response.status;
    let mut out = Vec::with_capacity(256 + response.body.len());
    let mut line = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    line("Date", &http_date(SystemTime::now()));
    line("Server", concat!("lrwatch/", env!("CARGO_PKG_VERSION")));
    if response.get("cache-control").is_none() {
        // Values change at any moment: caches must revalidate every time.
        line("Cache-Control", "no-cache");
    }
    for (name, value) in &response.headers {
        line(name, value);
    }
    // 204 and 1xx have no body and must not announce one (RFC 9110, 8.6). A 304 or a HEAD
    // response announces the length the 200 to a GET would have had.
    let bodiless = status == 204 || status < 200;
    if !bodiless {
        line("Content-Length", &response.body.len().to_string());
    }
    match connection {
        Connection::Default => {}
        Connection::KeepAlive => line("Connection", "keep-alive"),
        Connection::Close => line("Connection", "close"),
    }
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    head.extend_from_slice(&out);
    head.extend_from_slice(b"\r\n");
    if !(head_only || bodiless || status == 304) {
        head.extend_from_slice(&response.body);
    }
    head
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    connection: Connection,
) -> io::Result<()> {
    stream.write_all(&encode_response(response, head_only, connection))?;
    stream.flush()
}

/// Closes after an error without resetting: stop writing, then swallow what the client is
/// still sending for a moment, so the response is read before the socket goes away.
fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 16 * 1024];
    let mut swallowed = 0usize;
    while swallowed < 2 * MAX_BODY {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => swallowed += n,
        }
    }
}

/// The reason phrase for `status`: the `http` crate's table (re-exported by ureq), so this
/// server keeps no calendar or phrase list of its own. A status it does not know (none this
/// server sends) still gets a phrase, since the status line requires one.
pub(crate) fn reason(status: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the `Date` header, which RFC 9110
/// asks of every origin server with a clock.
pub(crate) fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn head(text: &str) -> Result<Request, Refusal> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_a_simple_get() {
        let r = head("GET /counter/a?x=1 HTTP/1.1\r\nHost: h\r\nWait:  10 \r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/counter/a");
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.version, 1);
        assert_eq!(r.header("wait"), Some("10"));
        assert!(r.keep_alive());
    }

    #[test]
    fn accepts_bare_lf_and_absolute_targets() {
        let r = head("GET http://example.com/time HTTP/1.1\nHost: example.com\n\n").unwrap();
        assert_eq!(r.path, "/time");
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nrest", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\nrest", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\nrest", 15), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\nHost: x\r\n", 0), None);
    }

    #[test]
    fn rejects_garbage_and_missing_host() {
        let rejected = |text: &str| head(text).map(|_| ()).map_err(|r| r.status);
        assert_eq!(rejected("hello there\r\n\r\n"), Err(400));
        assert_eq!(rejected("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), Err(400));
        assert_eq!(rejected("GET / HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(400)
        );
        assert_eq!(rejected("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), Err(400));
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"),
            Err(400)
        );
        assert_eq!(rejected("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), Err(400));
        // HTTP/1.0 has no Host requirement.
        assert!(head("GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut text = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for i in 0..MAX_HEADERS {
            text.push_str(&format!("X-{i}: v\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(head(&text).unwrap_err().status, 431);
    }

    #[test]
    fn body_length_rules() {
        let len = |extra: &str| {
            body_length(&head(&format!("PUT / HTTP/1.1\r\nHost: h\r\n{extra}\r\n")).unwrap())
                .map_err(|r| r.status)
        };
        assert_eq!(len(""), Ok(0));
        assert_eq!(len("Content-Length: 12\r\n"), Ok(12));
        assert_eq!(
            len("Content-Length: 12, 12\r\nContent-Length: 12\r\n"),
            Ok(12)
        );
        assert_eq!(
            len("Content-Length: 12\r\nContent-Length: 13\r\n"),
            Err(400)
        );
        assert_eq!(len("Content-Length: -1\r\n"), Err(400));
        assert_eq!(len("Content-Length: 0x10\r\n"), Err(400));
        assert_eq!(len("Content-Length:\r\n"), Err(400));
        assert_eq!(len("Content-Length: 1048576\r\n"), Ok(MAX_BODY));
        assert_eq!(len("Content-Length: 1048577\r\n"), Err(413));
        assert_eq!(len("Content-Length: 99999999999999999999999\r\n"), Err(413));
        assert_eq!(len("Transfer-Encoding: chunked\r\n"), Err(411));
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |text: &str| head(text).unwrap().keep_alive();
        assert!(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: te, close\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn a_refused_request_shows_what_could_be_read_of_its_line() {
        let words = |b: &[u8]| request_line_words(b);
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            words(b"GET /a?b HTTP/1.1\r\nHost: x\r\n"),
            (some("GET"), some("/a?b"))
        );
        assert_eq!(words(b"GET\r\n"), (some("GET"), None));
        assert_eq!(words(b"GE"), (some("GE"), None));
        assert_eq!(words(b""), (None, None));
        assert_eq!(words(b"GET /\xff x"), (some("GET"), some("/\u{fffd}")));
        // A line that never ends is looked at only so far.
        let long = [b"GET /".as_slice(), &[b'x'; 2 * MAX_LINE_SEEN]].concat();
        assert_eq!(words(&long).1.unwrap().len(), MAX_LINE_SEEN - 4);
    }

    #[test]
    fn skips_empty_lines_between_requests() {
        let mut buf = b"\r\n\r\nGET / HTTP/1.1\r\n".to_vec();
        assert_eq!(skip_leading_newlines(&mut buf), 4);
        assert!(buf.starts_with(b"GET"));
    }

    #[test]
    fn encodes_head_and_bodiless_responses() {
        let text = |r: &Response, head_only, c| {
            String::from_utf8(encode_response(r, head_only, c)).unwrap()
        };
        let ok = Response::new(200).body("application/json", "42");
        let full = text(&ok, false, Connection::Default);
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("\r\nCache-Control: no-cache\r\n"));
        assert!(full.contains("\r\nContent-Length: 2\r\n"));
        assert!(full.ends_with("\r\n\r\n42"));
        assert!(!full.contains("Connection"));
        let head_only = text(&ok, true, Connection::Close);
        assert!(head_only.contains("\r\nContent-Length: 2\r\n"));
        assert!(head_only.ends_with("Connection: close\r\n\r\n"));
        let not_modified = text(
            &Response {
                status: 304,
                ..ok.clone()
            },
            false,
            Connection::KeepAlive,
        );
        assert!(not_modified.ends_with("Connection: keep-alive\r\n\r\n"));
        let no_content = text(&Response::new(204), false, Connection::Default);
        assert!(!no_content.contains("Content-Length"));
    }

    #[test]
    fn formats_http_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(1_709_164_800); // 2024-02-29
        assert_eq!(http_date(leap), "Thu, 29 Feb 2024 00:00:00 GMT");
    }

    #[test]
    fn reason_phrases_for_the_statuses_this_server_sends() {
        for (status, phrase) in [
            (100, "Continue"),
            (101, "Switching Protocols"),
            (200, "OK"),
            (201, "Created"),
            (204, "No Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (406, "Not Acceptable"),
            (408, "Request Timeout"),
            (410, "Gone"),
            (411, "Length Required"),
            // RFC 9110 renamed it "Content Too Large"; the phrase is advisory (clients read
            // the code), and the `http` crate keeps the RFC 7231 name.
            (413, "Payload Too Large"),
            (417, "Expectation Failed"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
            (507, "Insufficient Storage"),
            (599, "Unknown"),
        ] {
            assert_eq!(reason(status), phrase, "{status}");
        }
        let head = String::from_utf8(encode_response(
            &Response::new(431),
            false,
            Connection::Default,
        ))
        .unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }
}
