//! The way out for connections the HTTP client does not make (WebSockets): the same proxy as
//! HTTP requests, tunnelled with CONNECT, decided by the same rules, so that where only the
//! proxy leads out, sockets work as requests do.
//!
//! The rules are ureq's (3.5, `ureq::Proxy::try_from_env`), whose decision for HTTP requests
//! this module asks for rather than re-implements: the first of `ALL_PROXY`, `all_proxy`,
//! `HTTPS_PROXY`, `https_proxy`, `HTTP_PROXY`, `http_proxy` that holds a proxy URL is the
//! proxy for every connection, whatever its scheme; `NO_PROXY` (else `no_proxy`) lists the hosts
//! that bypass it (names, addresses, `.suffix`, `*.suffix`, `*`). Only `http://` proxies (the
//! default scheme) tunnel sockets; a host is also the literal way round IPv6 addresses here:
//! `[::1]` connects to `::1`, never to a resolver.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine;
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

/// A TCP connection to `url`'s host and port (the scheme's default port when it has none),
/// by `route`: directly (each address in turn), or through the proxy with CONNECT. `timeout`
/// bounds each connect and the proxy's answer; the socket's timeouts are left set to it.
pub fn connect(url: &Url, route: &Route, timeout: Duration) -> Result<TcpStream, String> {
    open(url, route, timeout).map_err(|e| match e {
        OpenError::Unreachable(why) => format!("cannot connect to {url}: {why}"),
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
    /// Anything else, in words: the proxy failed or refused the tunnel, or the URL has no host.
    Other(String),
}

/// [`connect`], with a direct connection's failure kept as its I/O error.
pub fn open(url: &Url, route: &Route, timeout: Duration) -> Result<TcpStream, OpenError> {
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
            Ok(tcp)
        }
        Route::Through(proxy) => tunnel(proxy, &host, port, timeout).map_err(OpenError::Other),
    }
}

/// The name TLS checks the certificate of `url`'s host against: a DNS name, or an address
/// (IPv6 without its brackets).
pub fn server_name(url: &Url) -> Result<rustls::pki_types::ServerName<'static>, String> {
    use rustls::pki_types::ServerName;
    match url.host() {
        Some(Host::Domain(name)) => ServerName::try_from(name.to_string())
            .map_err(|e| format!("bad server name {name}: {e}")),
        Some(Host::Ipv4(ip)) => Ok(ServerName::IpAddress(IpAddr::V4(ip).into())),
        Some(Host::Ipv6(ip)) => Ok(ServerName::IpAddress(IpAddr::V6(ip).into())),
        None => Err(format!("{url} has no host")),
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

/// Opens a tunnel to `host`:`port` through `proxy` with CONNECT (the target named, not
/// resolved here: the proxy resolves it, as for HTTP requests).
fn tunnel(
    proxy: &Proxy,
    host: &Host<&str>,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let failed = |why: String| format!("cannot connect through proxy {proxy}: {why}");
    if proxy.inner.protocol() != ureq::ProxyProtocol::Http {
        return Err(failed(
            "only http:// proxies tunnel WebSockets (the proxy URL's scheme)".to_string(),
        ));
    }
    // An IPv6 address keeps its brackets here: CONNECT names an authority.
    let authority = match host {
        Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        other => format!("{}:{port}", host_name(other)),
    };
    let mut tcp = connect_host(proxy.inner.host(), proxy.inner.port(), timeout)
        .map_err(|e| failed(e.to_string()))?;
    set_timeouts(&tcp, timeout).map_err(failed)?;
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
    tcp.write_all(head.as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let status = read_connect_answer(&mut tcp, Instant::now() + timeout).map_err(failed)?;
    if !(200..300).contains(&status) {
        return Err(failed(format!(
            "it answered CONNECT {authority} with {status}"
        )));
    }
    Ok(tcp)
}

/// Reads the proxy's answer to CONNECT, a byte at a time so that nothing of the tunnel after
/// it is consumed; its status.
fn read_connect_answer(tcp: &mut TcpStream, deadline: Instant) -> Result<u16, String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_HEAD {
            return Err(format!(
                "its answer is over {} KiB",
                MAX_CONNECT_HEAD / 1024
            ));
        }
        if Instant::now() >= deadline {
            return Err("it did not answer CONNECT in time".to_string());
        }
        match tcp.read(&mut byte) {
            Ok(0) => return Err("it closed the connection instead of answering".to_string()),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("no answer to CONNECT: {e}")),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => response
            .code
            .ok_or_else(|| "its answer has no status".to_string()),
        _ => Err("its answer to CONNECT is not HTTP".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn an_ipv6_literal_never_reaches_the_resolver() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let url = Url::parse(&format!("ws://[::1]:{port}/x")).unwrap();
        let tcp = connect(&url, &Route::Direct, Duration::from_secs(5)).unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), listener.local_addr().unwrap());
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
        connect(&url, &route, Duration::from_secs(5)).unwrap();
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
        let err = connect(&url, &Route::Through(proxy), Duration::from_secs(5)).unwrap_err();
        assert!(
            err.starts_with("cannot connect through proxy http://127.0.0.1:")
                && err.ends_with("(from TEST): it answered CONNECT example.test:8080 with 403"),
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
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(read_connect_answer(&mut tcp, deadline), Ok(200));
        let mut rest = String::new();
        tcp.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "TUNNEL");
        server.join().unwrap();
    }
}
