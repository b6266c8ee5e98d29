//! The way out for connections the HTTP client does not make (WebSockets): the same proxy as
//! HTTP requests, decided by the same rules and spoken to as ureq speaks to it, so that where
//! only the proxy leads out, sockets work as requests do.
//!
//! The rules are ureq's (3.5, `ureq::Proxy::try_from_env`), whose decision for HTTP requests
//! this module asks for rather than re-implements: the first of `ALL_PROXY`, `all_proxy`,
//! `HTTPS_PROXY`, `https_proxy`, `HTTP_PROXY`, `http_proxy` that holds a proxy URL is the
//! proxy for every connection, whatever its scheme; `NO_PROXY` (else `no_proxy`) lists the hosts
//! that bypass it (names, addresses, `.suffix`, `*.suffix`, `*`).
//!
//! Every kind of proxy ureq takes, the way ureq takes it:
//! - `http://` (the default scheme): a CONNECT tunnel that names the target (the proxy resolves
//!   it), with `Proxy-Authorization: Basic` when the URL has a user or password;
//! - `https://`: the same inside TLS to the proxy, verified as wss servers are (`--cacert`,
//!   `--insecure`);
//! - `socks5://` (`socks://`), `socks5h://`, `socks4://`, `socks4a://`: a SOCKS CONNECT (RFC
//!   1928; a user and password by RFC 1929 when the URL has a user; SOCKS4 sends an empty user
//!   id). `socks5h` and `socks4a` hand the proxy the host's name; `socks5` and `socks4` resolve
//!   it here and send its first address, as ureq does (`ureq::Proxy::resolve_target`).
//!
//! The SOCKS handshake is written here, after ureq's own, which it keeps private; the `socks`
//! crate (which ureq no longer uses) connects and reads with no time bound. A host is also the
//! literal way round IPv6 addresses here: `[::1]` connects to `::1`, never to a resolver.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tungstenite::stream::MaybeTlsStream;
use ureq::ProxyProtocol;
use url::{Host, Url};

/// The variables ureq reads a proxy from, in its order.
const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The most a proxy's answer to CONNECT may take, status line and headers.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// How a connection to a URL goes out.
#[derive(Debug, Clone)]
pub enum Route {
    /// No proxy is configured.
    Direct,
    /// A proxy is configured, and the host is in `NO_PROXY`.
    Bypassed(Proxy),
    /// Through the proxy.
    Through(Proxy),
}

impl Route {
    /// The route for connections to `url`, as the HTTP client would take for a request to it.
    pub fn to(url: &Url) -> Route {
        let Some(proxy) = Proxy::from_env() else {
            return Route::Direct;
        };
        let bypassed = ureq::http::Uri::try_from(url.as_str())
            .map(|uri| proxy.inner.is_no_proxy(&uri))
            .unwrap_or(false);
        if bypassed {
            Route::Bypassed(proxy)
        } else {
            Route::Through(proxy)
        }
    }
}

impl Route {
    /// The proxy connections go through, if they do.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Through(proxy) => Some(proxy),
            Route::Direct | Route::Bypassed(_) => None,
        }
    }
}

impl fmt::Display for Route {
    /// What `-v` says: "directly", "directly (NO_PROXY)", "through proxy URL (from VAR)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct => f.write_str("directly"),
            Route::Bypassed(_) => f.write_str("directly (the host is in NO_PROXY)"),
            Route::Through(proxy) => write!(f, "through proxy {proxy}"),
        }
    }
}

/// The proxy of the environment, and the variable it came from.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: ureq::Proxy,
    var: &'static str,
}

impl Proxy {
    /// The proxy ureq would use (with its `NO_PROXY` list), if any.
    pub fn from_env() -> Option<Proxy> {
        let inner = ureq::Proxy::try_from_env()?;
        // ureq does not say which variable it took: the first that parses, as it does.
        let var = PROXY_VARS
            .into_iter()
            .find(|var| {
                std::env::var(var)
                    .ok()
                    .is_some_and(|v| ureq::Proxy::new(&v).is_ok())
            })
            .unwrap_or("the environment");
        Some(Proxy { inner, var })
    }
}

impl fmt::Display for Proxy {
    /// The proxy's scheme, host and port (never its credentials), and the variable it came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.inner.uri().scheme_str().unwrap_or("http");
        write!(
            f,
            "{scheme}://{}:{} (from {})",
            self.inner.host(),
            self.inner.port(),
            self.var
        )
    }
}

/// A connection [`open`] made: TCP (to the host, or a tunnel through an `http://` or SOCKS
/// proxy), or TLS to an `https://` proxy with the tunnel inside it.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection: directly, or a tunnel through the proxy.
    Tcp(TcpStream),
    /// TLS to an `https://` proxy, carrying the tunnel.
    ProxyTls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket under it, for its options and timeouts (which bound every layer).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(tcp) => tcp,
            Stream::ProxyTls(tls) => tls.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => tcp.read(buf),
            Stream::ProxyTls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(tcp) => tcp.write(buf),
            Stream::ProxyTls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(tcp) => tcp.flush(),
            Stream::ProxyTls(tls) => tls.flush(),
        }
    }
}

/// A stream whose reads fail (`TimedOut`) once `until` has passed, each read otherwise bounded
/// by the socket's own timeout: a peer that drips its answer a byte at a time, or sends frames
/// that never make a message, cannot hold a reader past `until` (and one read).
#[derive(Debug)]
pub struct Timed<S> {
    /// The stream read from and written to.
    pub inner: S,
    /// When reads stop.
    pub until: Instant,
}

impl<S: Read> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.until {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "out of time"));
        }
        self.inner.read(buf)
    }
}

impl<S: Write> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A connection to `url`'s host and port (the scheme's default port when it has none), by
/// `route`: directly (each address in turn), or through the proxy. `timeout` bounds each
/// connect and the proxy's answers; the socket's timeouts are left set to it. `tls` verifies
/// an `https://` proxy.
pub fn connect(
    url: &Url,
    route: &Route,
    timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Stream, String> {
    open(url, route, timeout, tls).map_err(|e| match e {
        OpenError::Unreachable(why) => format!("cannot connect to {url}: {why}"),
        OpenError::Proxy { proxy, why } => format!("cannot connect through proxy {proxy}: {why}"),
        OpenError::Other(why) => why,
    })
}

/// Why [`open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// Directly: the host's name did not resolve, or none of its addresses took the connection
    /// (the last one's error), kept as it is so that callers classify it as they classify the
    /// HTTP client's failures.
    Unreachable(std::io::Error),
    /// The proxy could not be reached, or failed or refused the tunnel.
    Proxy {
        /// Which proxy ([`Proxy`]'s words).
        proxy: String,
        /// What happened, in words that name the proxy as such ("the proxy refused ...").
        why: String,
    },
    /// Anything else, in words: the URL has no host or port.
    Other(String),
}

/// [`connect`], with a direct connection's failure kept as its I/O error.
pub fn open(
    url: &Url,
    route: &Route,
    timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Stream, OpenError> {
    let host = url
        .host()
        .ok_or_else(|| OpenError::Other(format!("{url} has no host")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| OpenError::Other(format!("{url} has no port")))?;
    match route {
        Route::Direct | Route::Bypassed(_) => {
            let tcp =
                connect_host(&host_name(&host), port, timeout).map_err(OpenError::Unreachable)?;
            set_timeouts(&tcp, timeout).map_err(OpenError::Other)?;
            Ok(Stream::Tcp(tcp))
        }
        Route::Through(proxy) => {
            let failed = |why: String| OpenError::Proxy {
                proxy: proxy.to_string(),
                why,
            };
            match proxy.inner.protocol() {
                ProxyProtocol::Http | ProxyProtocol::Https => {
                    tunnel(proxy, &host, port, timeout, tls).map_err(failed)
                }
                _ => socks(proxy, &host, port, timeout).map_err(failed),
            }
        }
    }
}

/// `stream`, with TLS to `url`'s host when its scheme is `wss` or `https`. Set up here rather
/// than by tungstenite, which takes the server name from the URL as written: an IPv6 address
/// in brackets is no name rustls accepts.
pub fn secure<S: Read + Write>(
    url: &Url,
    stream: S,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<MaybeTlsStream<S>, String> {
    if !matches!(url.scheme(), "wss" | "https") {
        return Ok(MaybeTlsStream::Plain(stream));
    }
    let conn = rustls::ClientConnection::new(Arc::clone(tls), server_name(url)?)
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(MaybeTlsStream::Rustls(rustls::StreamOwned::new(
        conn, stream,
    )))
}

/// The name TLS checks the certificate of `url`'s host against: a DNS name, or an address
/// (IPv6 without its brackets).
fn server_name(url: &Url) -> Result<rustls::pki_types::ServerName<'static>, String> {
    match url.host() {
        Some(host) => tls_name(&host),
        None => Err(format!("{url} has no host")),
    }
}

/// [`server_name`] of a host.
fn tls_name<S: AsRef<str>>(
    host: &Host<S>,
) -> Result<rustls::pki_types::ServerName<'static>, String> {
    use rustls::pki_types::ServerName;
    match host {
        Host::Domain(name) => ServerName::try_from(name.as_ref().to_string())
            .map_err(|e| format!("bad server name {}: {e}", name.as_ref())),
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
    }
}

/// A host as a name or an address, without the brackets an IPv6 address has in a URL.
fn host_name(host: &Host<&str>) -> String {
    match host {
        Host::Domain(name) => (*name).to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    }
}

/// Connects to `host` (a name, or an address with or without brackets) at `port`: each
/// address in turn, each given `timeout`. A failure keeps its kind (refused, timed out), in
/// words that say which step failed.
fn connect_host(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, io::Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        // An address is never handed to the resolver (which does not take brackets).
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (bare, port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {bare}: {e}")))?
            .collect(),
    };
    let mut last = io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("no address for {bare}"),
    );
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn set_timeouts(tcp: &TcpStream, timeout: Duration) -> Result<(), String> {
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())
}

/// A TCP connection to the proxy, with `timeout` set on it.
fn connect_proxy(proxy: &Proxy, timeout: Duration) -> Result<TcpStream, String> {
    let tcp = connect_host(proxy.inner.host(), proxy.inner.port(), timeout)
        .map_err(|e| format!("cannot connect to the proxy: {e}"))?;
    set_timeouts(&tcp, timeout)?;
    Ok(tcp)
}

/// Opens a tunnel to `host`:`port` through the `http://` or `https://` `proxy` with CONNECT
/// (the target named, not resolved here: the proxy resolves it, as for HTTP requests).
fn tunnel(
    proxy: &Proxy,
    host: &Host<&str>,
    port: u16,
    timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Stream, String> {
    // An IPv6 address keeps its brackets here: CONNECT names an authority.
    let authority = match host {
        Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        other => format!("{}:{port}", host_name(other)),
    };
    let tcp = connect_proxy(proxy, timeout)?;
    let mut stream = if proxy.inner.protocol() == ProxyProtocol::Https {
        let host = Host::parse(proxy.inner.host()).map_err(|e| format!("bad proxy host: {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::clone(tls), tls_name(&host)?)
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        Stream::ProxyTls(Box::new(rustls::StreamOwned::new(conn, tcp)))
    } else {
        Stream::Tcp(tcp)
    };
    let mut head = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: lrwatch/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if proxy.inner.username().is_some() || proxy.inner.password().is_some() {
        let credentials = format!(
            "{}:{}",
            proxy.inner.username().unwrap_or_default(),
            proxy.inner.password().unwrap_or_default()
        );
        head.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ));
    }
    head.push_str("\r\n");
    // Over TLS, the handshake happens here: its failure (an untrusted certificate) too.
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("cannot send CONNECT to the proxy: {e}"))?;
    let until = Instant::now() + timeout;
    let status = read_connect_answer(&mut Timed {
        inner: &mut stream,
        until,
    })?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "the proxy answered CONNECT {authority} with {status}"
        ));
    }
    Ok(stream)
}

/// Reads the proxy's answer to CONNECT, a byte at a time so that nothing of the tunnel after
/// it is consumed; its status.
fn read_connect_answer(stream: &mut impl Read) -> Result<u16, String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_HEAD {
            return Err(format!(
                "the proxy's answer is over {} KiB",
                MAX_CONNECT_HEAD / 1024
            ));
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err("the proxy closed the connection instead of answering".to_string()),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                return Err("the proxy did not answer CONNECT in time".to_string())
            }
            Err(e) => return Err(format!("no answer to CONNECT from the proxy: {e}")),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => response
            .code
            .ok_or_else(|| "the proxy's answer has no status".to_string()),
        _ => Err("the proxy's answer to CONNECT is not HTTP".to_string()),
    }
}

/// A socket timeout surfaces as `WouldBlock` on Unix and `TimedOut` on Windows (and from
/// [`Timed`]).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Where a SOCKS proxy is asked to connect: an address, or a name for it to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    Addr(SocketAddr),
    Name(&'a str, u16),
}

impl Target<'_> {
    /// The target of a connection to `host`:`port` through `proxy`: a name is resolved here
    /// (its first address, as ureq takes) when the proxy's scheme says so (`socks5`, `socks4`).
    fn of<'a>(proxy: &Proxy, host: &Host<&'a str>, port: u16) -> Result<Target<'a>, String> {
        match *host {
            Host::Ipv4(ip) => Ok(Target::Addr(SocketAddr::new(IpAddr::V4(ip), port))),
            Host::Ipv6(ip) => Ok(Target::Addr(SocketAddr::new(IpAddr::V6(ip), port))),
            Host::Domain(name) if proxy.inner.resolve_target() => (name, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {name}: {e}"))?
                .next()
                .map(Target::Addr)
                .ok_or_else(|| format!("no address for {name}")),
            Host::Domain(name) => Ok(Target::Name(name, port)),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Target::Addr(addr) => addr.port(),
            Target::Name(_, port) => *port,
        }
    }
}

/// Opens a connection to `host`:`port` through the SOCKS `proxy`; the whole handshake within
/// `timeout` of the proxy's accepting the connection.
fn socks(proxy: &Proxy, host: &Host<&str>, port: u16, timeout: Duration) -> Result<Stream, String> {
    let target = Target::of(proxy, host, port)?;
    let tcp = connect_proxy(proxy, timeout)?;
    let mut timed = Timed {
        inner: &tcp,
        until: Instant::now() + timeout,
    };
    let said = socks_handshake(&mut timed, proxy, target);
    said.map_err(|e| match e.kind() {
        _ if is_timeout(&e) => "the proxy did not answer the SOCKS handshake in time".to_string(),
        io::ErrorKind::UnexpectedEof => {
            "the proxy closed the connection during the SOCKS handshake".to_string()
        }
        _ => e.to_string(),
    })?;
    Ok(Stream::Tcp(tcp))
}

/// The SOCKS handshake for a connection to `target` through `proxy`, on `w`.
fn socks_handshake(w: &mut (impl Read + Write), proxy: &Proxy, target: Target) -> io::Result<()> {
    match proxy.inner.protocol() {
        ProxyProtocol::Socks4 | ProxyProtocol::Socks4A => socks4(w, target),
        _ => socks5(w, proxy.inner.username(), proxy.inner.password(), target),
    }
}

/// SOCKS4 CONNECT; SOCKS4a for a name (the address 0.0.0.1, the name after the user id). The
/// user id is empty, as ureq sends it.
fn socks4(w: &mut (impl Read + Write), target: Target) -> io::Result<()> {
    let mut request = vec![4, 1];
    request.extend_from_slice(&target.port().to_be_bytes());
    match target {
        Target::Addr(SocketAddr::V4(addr)) => {
            request.extend_from_slice(&addr.ip().octets());
            request.push(0);
        }
        Target::Addr(SocketAddr::V6(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SOCKS4 takes no IPv6 address",
            ))
        }
        Target::Name(name, _) => {
            request.extend_from_slice(&[0, 0, 0, 1, 0]);
            request.extend_from_slice(name.as_bytes());
            request.push(0);
        }
    }
    w.write_all(&request)?;
    // Version 0, the status, then a port and an address that CONNECT does not use.
    let mut reply = [0u8; 8];
    w.read_exact(&mut reply)?;
    if reply[0] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the proxy's answer is not SOCKS4",
        ));
    }
    match reply[1] {
        90 => Ok(()),
        91 => Err(io::Error::other(
            "the proxy refused the connection or could not make it",
        )),
        92 | 93 => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the proxy refused the connection (no identd answer for the user)",
        )),
        code => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the proxy answered with an unknown SOCKS4 status {code}"),
        )),
    }
}

/// SOCKS5 CONNECT (RFC 1928), with a user and password (RFC 1929) when the URL has a user.
fn socks5(
    w: &mut (impl Read + Write),
    user: Option<&str>,
    password: Option<&str>,
    target: Target,
) -> io::Result<()> {
    let not_socks5 = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the proxy's answer is not SOCKS5",
        )
    };
    // The methods offered: none (0), and a user and password (2) when there is a user.
    w.write_all(if user.is_some() {
        &[5, 2, 2, 0]
    } else {
        &[5, 1, 0]
    })?;
    let mut reply = [0u8; 2];
    w.read_exact(&mut reply)?;
    if reply[0] != 5 {
        return Err(not_socks5());
    }
    match (reply[1], user) {
        (0, _) => {}
        (2, Some(user)) => authenticate(w, user, password.unwrap_or_default())?,
        (0xff, None) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the proxy wants credentials (user:password@ in its URL)",
            ))
        }
        (0xff, Some(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the proxy accepts neither no authentication nor a user and password",
            ))
        }
        (method, _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the proxy chose authentication method {method}, which was not offered"),
            ))
        }
    }
    // Version, CONNECT, reserved, the address's type, the address, the port.
    let mut request = vec![5, 1, 0];
    match target {
        Target::Addr(SocketAddr::V4(addr)) => {
            request.push(1);
            request.extend_from_slice(&addr.ip().octets());
        }
        Target::Addr(SocketAddr::V6(addr)) => {
            request.push(4);
            request.extend_from_slice(&addr.ip().octets());
        }
        Target::Name(name, _) => {
            let len = u8::try_from(name.len()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the host name is over 255 bytes, too long for SOCKS5",
                )
            })?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&target.port().to_be_bytes());
    w.write_all(&request)?;
    // Version and status first: a proxy may close after them when it fails.
    w.read_exact(&mut reply)?;
    if reply[0] != 5 {
        return Err(not_socks5());
    }
    if reply[1] != 0 {
        return Err(io::Error::other(socks5_failure(reply[1])));
    }
    // Reserved, then the bound address (its type, itself, a port): unused by CONNECT, read past
    // so that the tunnel starts after it.
    w.read_exact(&mut reply)?;
    if reply[0] != 0 {
        return Err(not_socks5());
    }
    let len = match reply[1] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            w.read_exact(&mut len)?;
            usize::from(len[0])
        }
        kind => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the proxy answered with an unknown address type {kind}"),
            ))
        }
    };
    let mut bound = [0u8; 255 + 2];
    w.read_exact(&mut bound[..len + 2])
}

/// A SOCKS5 reply's status other than success (RFC 1928, section 6), in words.
fn socks5_failure(status: u8) -> String {
    let why = match status {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => return format!("the proxy failed the connection (status {status})"),
    };
    format!("the proxy failed the connection: {why}")
}

/// The user and password sub-negotiation (RFC 1929).
fn authenticate(w: &mut (impl Read + Write), user: &str, password: &str) -> io::Result<()> {
    // Each goes after its length in one byte, and may not be empty.
    let field = |value: &str, what: &str| {
        u8::try_from(value.len())
            .ok()
            .filter(|&len| len > 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("SOCKS5 takes a {what} of 1 to 255 bytes"),
                )
            })
    };
    let mut request = vec![1, field(user, "user name")?];
    request.extend_from_slice(user.as_bytes());
    request.push(field(password, "password")?);
    request.extend_from_slice(password.as_bytes());
    w.write_all(&request)?;
    let mut reply = [0u8; 2];
    w.read_exact(&mut reply)?;
    if reply[0] != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the proxy's answer to the user and password is not RFC 1929",
        ));
    }
    if reply[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the proxy refused the user name and password",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A TLS configuration for https:// proxies (none of these tests has one: no roots).
    fn tls() -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        Arc::new(config)
    }

    fn proxy(url: &str) -> Proxy {
        Proxy {
            inner: ureq::Proxy::new(url).unwrap(),
            var: "TEST",
        }
    }

    /// A SOCKS proxy that answers with `replies` (then the tunnel's first bytes) and keeps what
    /// it was sent.
    struct Script {
        replies: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The handshake through `url` to `target` against a proxy answering `replies`: its
    /// outcome, what was sent, and what was left unread.
    fn script(url: &str, target: Target, replies: &[&[u8]]) -> (io::Result<()>, Vec<u8>, Vec<u8>) {
        let mut script = Script {
            replies: io::Cursor::new([replies.concat(), b"TUNNEL".to_vec()].concat()),
            sent: Vec::new(),
        };
        let outcome = socks_handshake(&mut script, &proxy(url), target);
        let mut rest = Vec::new();
        script.replies.read_to_end(&mut rest).unwrap();
        (outcome, script.sent, rest)
    }

    #[test]
    fn socks_targets_follow_the_scheme() {
        // socks5h and socks4a: the proxy resolves the name.
        for scheme in ["socks5h", "socks4a"] {
            let target = Target::of(
                &proxy(&format!("{scheme}://p")),
                &Host::Domain("example.test"),
                80,
            );
            assert_eq!(target, Ok(Target::Name("example.test", 80)), "{scheme}");
        }
        // socks5 (socks) and socks4: resolved here, as ureq does; the proxy gets an address.
        for scheme in ["socks5", "socks", "socks4"] {
            match Target::of(
                &proxy(&format!("{scheme}://p")),
                &Host::Domain("localhost"),
                80,
            ) {
                Ok(Target::Addr(addr)) => {
                    assert!(
                        addr.ip().is_loopback() && addr.port() == 80,
                        "{scheme}: {addr}"
                    )
                }
                other => panic!("{scheme}: {other:?}"),
            }
        }
        // An address is sent as one, whatever the scheme: never to a resolver.
        let v6 = Host::Ipv6("2001:db8::1".parse().unwrap());
        for scheme in ["socks5", "socks5h", "socks4", "socks4a"] {
            let target = Target::of(&proxy(&format!("{scheme}://p")), &v6, 443);
            assert_eq!(
                target,
                Ok(Target::Addr("[2001:db8::1]:443".parse().unwrap()))
            );
        }
    }

    #[test]
    fn socks_handshakes_send_what_the_rfcs_say() {
        let v4 = Target::Addr("10.0.0.1:80".parse().unwrap());
        let v6 = Target::Addr("[::1]:80".parse().unwrap());
        let name = Target::Name("example.test", 443);
        let succeeded: &[u8] = &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        // The proxy URL, the target, the proxy's answers, what must be sent, each in parts.
        type Parts<'a> = &'a [&'a [u8]];
        let cases: [(&str, Target, Parts, Parts); 6] = [
            (
                "socks5://p",
                v4,
                &[&[5, 0], succeeded],
                &[&[5, 1, 0], &[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]],
            ),
            (
                // The proxy names its bound address by name: read past it, all of it.
                "socks5h://p",
                name,
                &[&[5, 0], &[5, 0, 0, 3, 4], b"host", &[0, 0]],
                &[&[5, 1, 0], &[5, 1, 0, 3, 12], b"example.test", &[1, 187]],
            ),
            (
                // The credentials decoded once from the URL, as ureq sends them.
                "socks5://us%40er:p%3Ass@p",
                v6,
                &[&[5, 2], &[1, 0], &[5, 0, 0, 4], &[0; 18]],
                &[
                    &[5, 2, 2, 0],
                    &[1, 5],
                    b"us@er",
                    &[4],
                    b"p:ss",
                    &[5, 1, 0, 4],
                    &[0; 15],
                    &[1, 0, 80],
                ],
            ),
            (
                // Offered a password, the proxy may still want none.
                "socks5://u:p@p",
                v4,
                &[&[5, 0], succeeded],
                &[&[5, 2, 2, 0], &[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]],
            ),
            (
                "socks4://p",
                v4,
                &[&[0, 90, 0, 0, 0, 0, 0, 0]],
                &[&[4, 1, 0, 80, 10, 0, 0, 1, 0]],
            ),
            (
                "socks4a://p",
                name,
                &[&[0, 90, 0, 0, 0, 0, 0, 0]],
                &[&[4, 1, 1, 187, 0, 0, 0, 1, 0], b"example.test", &[0]],
            ),
        ];
        for (url, target, replies, sent) in cases {
            let (outcome, was_sent, rest) = script(url, target, replies);
            outcome.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(was_sent, sent.concat(), "{url}");
            assert_eq!(
                rest, b"TUNNEL",
                "{url}: the tunnel's first bytes are left to it"
            );
        }
    }

    #[test]
    fn socks_failures_say_why() {
        let v4 = Target::Addr("10.0.0.1:80".parse().unwrap());
        let cases: [(&str, Target, &[&[u8]], &str); 7] = [
            (
                "socks5://u:wrong@p",
                v4,
                &[&[5, 2], &[1, 1]],
                "the proxy refused the user name and password",
            ),
            (
                "socks5://p",
                v4,
                &[&[5, 0xff]],
                "the proxy wants credentials (user:password@ in its URL)",
            ),
            (
                "socks5://p",
                v4,
                &[&[5, 2]],
                "the proxy chose authentication method 2, which was not offered",
            ),
            (
                "socks5://p",
                v4,
                &[&[5, 0], &[5, 5]],
                "the proxy failed the connection: connection refused",
            ),
            (
                "socks5://p",
                v4,
                &[&[4, 0]],
                "the proxy's answer is not SOCKS5",
            ),
            (
                "socks4://p",
                Target::Addr("[::1]:80".parse().unwrap()),
                &[],
                "SOCKS4 takes no IPv6 address",
            ),
            (
                "socks4://p",
                v4,
                &[&[0, 91, 0, 0, 0, 0, 0, 0]],
                "the proxy refused the connection or could not make it",
            ),
        ];
        for (url, target, replies, why) in cases {
            let (outcome, _, _) = script(url, target, replies);
            assert_eq!(outcome.unwrap_err().to_string(), why, "{url}");
        }
        // A reply cut short is no tunnel.
        let mut short = Script {
            replies: io::Cursor::new(vec![5, 0, 5, 0, 0, 1, 0, 0]),
            sent: Vec::new(),
        };
        let err = socks_handshake(&mut short, &proxy("socks5://p"), v4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// A SOCKS proxy on loopback that answers the greeting with `first`, then drips `then` a
    /// byte every 20 ms; its URL.
    fn slow_socks(first: &'static [u8], then: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else {
                return;
            };
            let mut greeting = [0u8; 3];
            let _ = peer.read_exact(&mut greeting);
            let _ = peer.write_all(first);
            for byte in then {
                std::thread::sleep(Duration::from_millis(20));
                if peer.write_all(&[byte]).is_err() {
                    return;
                }
            }
            let _ = peer.read(&mut greeting);
        });
        format!("socks5h://127.0.0.1:{port}")
    }

    #[test]
    fn a_silent_or_dripping_socks_proxy_is_given_up_on_in_time() {
        // Silent after the greeting; or an answer of 5 + 255 + 2 bytes that takes 5 s to come.
        let dripped = [&[5, 0, 0, 3, 255][..], &[b'x'; 257]].concat();
        for (url, what) in [
            (slow_socks(&[], Vec::new()), "silent"),
            (slow_socks(&[5, 0], dripped), "dripping"),
        ] {
            let route = Route::Through(proxy(&url));
            let target = Url::parse("ws://example.test/").unwrap();
            let started = Instant::now();
            let err = connect(&target, &route, Duration::from_millis(300), &tls()).unwrap_err();
            assert!(
                err.ends_with("(from TEST): the proxy did not answer the SOCKS handshake in time"),
                "{what}: {err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what}: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn an_ipv6_literal_never_reaches_the_resolver() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let url = Url::parse(&format!("ws://[::1]:{port}/x")).unwrap();
        let stream = connect(&url, &Route::Direct, Duration::from_secs(5), &tls()).unwrap();
        assert_eq!(
            stream.tcp().peer_addr().unwrap(),
            listener.local_addr().unwrap()
        );
        // Brackets or not, an address is an address.
        assert!(connect_host("[::1]", port, Duration::from_secs(5)).is_ok());
    }

    /// A proxy that answers every CONNECT with `answer`; the request heads it got.
    fn fake_proxy(answer: &'static str) -> (Proxy, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for peer in listener.incoming() {
                let Ok(mut peer) = peer else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && peer.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let _ = peer.write_all(answer.as_bytes());
            }
        });
        let inner = ureq::Proxy::new(&format!("http://us%40er:p%3Ass@127.0.0.1:{port}")).unwrap();
        (Proxy { inner, var: "TEST" }, rx)
    }

    #[test]
    fn connect_names_the_target_and_sends_the_credentials() {
        let (proxy, heads) = fake_proxy("HTTP/1.1 200 OK\r\n\r\n");
        let url = Url::parse("wss://[2001:db8::1]/multiplex/ws").unwrap();
        let route = Route::Through(proxy);
        connect(&url, &route, Duration::from_secs(5), &tls()).unwrap();
        let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            head.starts_with("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"),
            "{head}"
        );
        // "us@er:p:ss", decoded once, as ureq sends it for requests.
        assert!(
            head.contains("\r\nProxy-Authorization: Basic dXNAZXI6cDpzcw==\r\n"),
            "{head}"
        );
        assert!(route
            .to_string()
            .starts_with("through proxy http://127.0.0.1:"));
        assert!(route.to_string().ends_with(" (from TEST)"), "{route}");
    }

    #[test]
    fn a_refused_connect_says_so() {
        let (proxy, _heads) = fake_proxy("HTTP/1.1 403 Forbidden\r\n\r\n");
        let url = Url::parse("ws://example.test:8080/").unwrap();
        let err =
            connect(&url, &Route::Through(proxy), Duration::from_secs(5), &tls()).unwrap_err();
        assert!(
            err.starts_with("cannot connect through proxy http://127.0.0.1:")
                && err.ends_with(
                    "(from TEST): the proxy answered CONNECT example.test:8080 with 403"
                ),
            "{err}"
        );
    }

    #[test]
    fn no_proxy_sees_an_ipv6_host_in_brackets() {
        // What `Route::to` hands ureq's NO_PROXY matching, as ureq sees a request's URL.
        let uri = ureq::http::Uri::try_from("ws://[::1]:8/x").unwrap();
        assert_eq!(uri.host(), Some("[::1]"));
    }

    #[test]
    fn a_connect_answer_is_read_to_its_end_and_no_further() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nTUNNEL")
                .unwrap();
        });
        let mut tcp = TcpStream::connect(addr).unwrap();
        assert_eq!(read_connect_answer(&mut tcp), Ok(200));
        let mut rest = String::new();
        tcp.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "TUNNEL");
        server.join().unwrap();
    }
}
