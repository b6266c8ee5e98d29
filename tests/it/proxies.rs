//! The way out: every connection (HTTP requests, the protocol's WebSockets and `ws://` URLs
//! given directly) through the proxy of the environment, whatever its kind (`http://` and
//! `https://` with CONNECT; SOCKS5 by a proxy written here from RFC 1928 and 1929, SOCKS4 and
//! SOCKS4a by one written here too), `NO_PROXY` honoured; and IPv6 literals
//! (`http://[::1]:PORT/`, `ws://[::1]:PORT/`) on every transport.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use crate::harness::*;

/// One tunnel a CONNECT proxy opened: its target, and the head of the first request sent
/// through it ("(TLS)" when it opens with a TLS handshake).
#[derive(Debug, Clone)]
struct Tunnel {
    target: String,
    first_request: String,
}

impl Tunnel {
    fn is_websocket(&self) -> bool {
        self.first_request
            .to_ascii_lowercase()
            .contains("upgrade: websocket")
    }
}

/// A proxy on loopback (CONNECT or SOCKS5) that records every tunnel it opens.
struct LoopbackProxy {
    url: String,
    tunnels: Arc<Mutex<Vec<Tunnel>>>,
}

impl LoopbackProxy {
    fn tunnels(&self) -> Vec<Tunnel> {
        self.tunnels.lock().unwrap().clone()
    }
}

/// Reads a request head (up to the blank line, byte by byte so nothing after it is taken).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || stream.read(&mut byte).ok()? != 1 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A proxy listening on loopback, each client served on a thread of its own by `open`, which
/// returns the connection to the target it was asked for (`host:port`, as it was named) once
/// it has told the client so; the tunnel is then recorded and relayed.
fn loopback_proxy(
    scheme: &str,
    open: fn(&mut TcpStream) -> Option<(TcpStream, String)>,
) -> LoopbackProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&tunnels);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let recorded = Arc::clone(&recorded);
            std::thread::spawn(move || {
                if let Some((server, target)) = open(&mut client) {
                    relay(client, server, target, &recorded);
                }
            });
        }
    });
    LoopbackProxy { url, tunnels }
}

/// Records the tunnel (its target and the head of its first request, "(TLS)" when it opens
/// with a TLS handshake), then relays both ways until either side closes.
fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    target: String,
    recorded: &Mutex<Vec<Tunnel>>,
) {
    // A TLS record starts with 0x16 (a handshake): the head is inside, unseen.
    let mut first = [0u8; 1];
    let first_request = match client.peek(&mut first) {
        Ok(1) if first[0] == 0x16 => "(TLS)".to_string(),
        _ => read_head(&mut client).unwrap_or_default(),
    };
    recorded.lock().unwrap().push(Tunnel {
        target,
        first_request: first_request.clone(),
    });
    let sent = if first_request == "(TLS)" {
        ""
    } else {
        &first_request
    };
    if server.write_all(sent.as_bytes()).is_err() {
        return;
    }
    splice(client, server);
}

/// A CONNECT proxy on loopback that records every tunnel it opens.
fn connect_proxy() -> LoopbackProxy {
    loopback_proxy("http", |client| {
        let head = read_head(client)?;
        let Some(target) = head
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string)
        else {
            let _ = client.write_all(b"HTTP/1.1 405 Only CONNECT\r\n\r\n");
            return None;
        };
        let Ok(server) = TcpStream::connect(target.as_str()) else {
            let _ = client.write_all(b"HTTP/1.1 502 Unreachable\r\n\r\n");
            return None;
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .ok()?;
        Some((server, target))
    })
}

/// The user and password the SOCKS proxy of [`socks_proxy_with_login`] wants.
const SOCKS_LOGIN: (&str, &str) = ("lr-user", "s3cret");

/// A SOCKS5 proxy on loopback (RFC 1928: no authentication, CONNECT to an IPv4 address, a
/// name or an IPv6 address), recording every tunnel it opens (its target named as the client
/// named it: `1.2.3.4:80`, `name:80` or `[::1]:80`).
fn socks_proxy() -> LoopbackProxy {
    loopback_proxy("socks5", |client| socks_session(client, None))
}

/// [`socks_proxy`], that wants the user and password [`SOCKS_LOGIN`] (RFC 1929).
fn socks_proxy_with_login() -> LoopbackProxy {
    loopback_proxy("socks5", |client| socks_session(client, Some(SOCKS_LOGIN)))
}

/// A SOCKS4 proxy on loopback that takes SOCKS4a too (a name for it to resolve), and nothing
/// else (a SOCKS5 greeting is refused): every tunnel it records was asked for in SOCKS4, its
/// target named as the client named it (`1.2.3.4:80`, or `name:80` by SOCKS4a).
fn socks4_proxy() -> LoopbackProxy {
    loopback_proxy("socks4", socks4_session)
}

/// `n` bytes from `client`.
fn take(client: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    client.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// The bytes from `client` up to a NUL (taken, not kept), at most 255 of them.
fn take_until_nul(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        match take(client, 1)?[0] {
            0 => return Some(bytes),
            _ if bytes.len() == 255 => return None,
            byte => bytes.push(byte),
        }
    }
}

/// The end of a SOCKS session, whatever its version: connects to `target` (`host:port`) and
/// tells the client how that went by `answer` (given the proxy's port toward the target, or
/// `None` when unreachable); the connection and its target, or `None`.
fn reach(
    client: &mut TcpStream,
    target: String,
    answer: fn(Option<u16>) -> Vec<u8>,
) -> Option<(TcpStream, String)> {
    let server = TcpStream::connect(target.as_str()).ok();
    let bound = server.as_ref().and_then(|s| s.local_addr().ok());
    client.write_all(&answer(bound.map(|b| b.port()))).ok()?;
    client.set_read_timeout(None).ok()?;
    Some((server?, target))
}

/// One SOCKS5 client, up to its tunnel: the method negotiation (no authentication, or
/// `login`), then the CONNECT request; its target reached, or `None` (told to the client).
fn socks_session(
    client: &mut TcpStream,
    login: Option<(&str, &str)>,
) -> Option<(TcpStream, String)> {
    client.set_read_timeout(Some(BOUND)).ok()?;
    // Version 5, the methods offered; the one wanted chosen, or none acceptable (0xff).
    let greeting = take(client, 2)?;
    let methods = take(client, usize::from(greeting[1]))?;
    let wanted = if login.is_some() { 2 } else { 0 };
    if greeting[0] != 5 || !methods.contains(&wanted) {
        let _ = client.write_all(&[5, 0xff]);
        return None;
    }
    client.write_all(&[5, wanted]).ok()?;
    if let Some((user, password)) = login {
        // Version 1, the user and the password, each after its length.
        let version = take(client, 2)?;
        let given_user = take(client, usize::from(version[1]))?;
        let len = take(client, 1)?;
        let given_password = take(client, usize::from(len[0]))?;
        let ok = version[0] == 1
            && given_user == user.as_bytes()
            && given_password == password.as_bytes();
        client.write_all(&[1, if ok { 0 } else { 1 }]).ok()?;
        if !ok {
            return None;
        }
    }
    // Version, command, reserved, the address's type; the address; the port.
    let failed = |client: &mut TcpStream, status: u8| {
        let _ = client.write_all(&[5, status, 0, 1, 0, 0, 0, 0, 0, 0]);
        None
    };
    let request = take(client, 4)?;
    if request[0] != 5 || request[1] != 1 {
        return failed(client, 7);
    }
    let host = match request[3] {
        1 => {
            let ip: [u8; 4] = take(client, 4)?.try_into().ok()?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let len = take(client, 1)?;
            String::from_utf8(take(client, usize::from(len[0]))?).ok()?
        }
        4 => {
            let ip: [u8; 16] = take(client, 16)?.try_into().ok()?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return failed(client, 8),
    };
    let port = take(client, 2)?;
    let target = format!("{host}:{}", u16::from_be_bytes([port[0], port[1]]));
    // Succeeded (bound to 127.0.0.1 and the port), or the host unreachable (5).
    reach(client, target, |bound| match bound {
        Some(port) => [&[5, 0, 0, 1, 127, 0, 0, 1][..], &port.to_be_bytes()].concat(),
        None => vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0],
    })
}

/// One SOCKS4 client, up to its tunnel: version 4, CONNECT, the port, the address, a user id
/// ended by a NUL; for SOCKS4a the address 0.0.0.x (x not 0) and the name after the user id,
/// ended by a NUL. Its target reached, or `None` (told to the client).
fn socks4_session(client: &mut TcpStream) -> Option<(TcpStream, String)> {
    client.set_read_timeout(Some(BOUND)).ok()?;
    let request = take(client, 2)?;
    if request != [4, 1] {
        let _ = client.write_all(&[0, 91, 0, 0, 0, 0, 0, 0]);
        return None;
    }
    let port = take(client, 2)?;
    let ip: [u8; 4] = take(client, 4)?.try_into().ok()?;
    take_until_nul(client)?;
    let host = match ip {
        [0, 0, 0, x] if x != 0 => String::from_utf8(take_until_nul(client)?).ok()?,
        ip => std::net::Ipv4Addr::from(ip).to_string(),
    };
    let target = format!("{host}:{}", u16::from_be_bytes([port[0], port[1]]));
    // Granted (90, then the port and address bound to), or rejected or failed (91).
    reach(client, target, |bound| match bound {
        Some(port) => [&[0, 90][..], &port.to_be_bytes(), &[127, 0, 0, 1]].concat(),
        None => vec![0, 91, 0, 0, 0, 0, 0, 0],
    })
}

#[test]
fn sockets_go_through_the_proxy_requests_take() {
    // ureq takes the first of ALL_PROXY, HTTPS_PROXY, HTTP_PROXY (either case) for every
    // request, whatever its scheme; sockets must go the same way.
    for (var, transport) in [
        ("HTTP_PROXY", "multiplex-ws"),
        ("https_proxy", "multiplex-socket"),
        ("ALL_PROXY", "multiplex-ws"),
    ] {
        let base = reference_server();
        let authority = base.trim_start_matches("http://").to_string();
        let proxy = connect_proxy();
        let url = format!("{base}/counter/proxied");
        let mut run = lrwatch_env(
            &["-v", "-n", "2", "--transport", transport, &url],
            &[(var, &proxy.url)],
        );
        let said = run.stderr_until("requests and WebSockets go");
        assert!(
            said.contains(&format!("through proxy {} (from {var})", proxy.url)),
            "{said}"
        );
        assert_eq!(run.line(), "0");
        let said = run.stderr_until("connecting to ws://");
        assert!(
            said.contains(&format!("through proxy {}", proxy.url)),
            "{said}"
        );
        post(&url);
        assert_eq!(run.line(), "1");
        assert!(run.wait().success(), "{var}: {}", run.stderr_text());
        assert_carried(&proxy.tunnels(), &authority, "/counter/proxied", var);
    }
}

/// Every tunnel went to `authority`, the discovery GET of `path` and a WebSocket among them.
fn assert_carried(tunnels: &[Tunnel], authority: &str, path: &str, what: &str) {
    assert!(
        tunnels.iter().all(|t| t.target == authority),
        "{what}: {tunnels:#?}"
    );
    assert!(
        tunnels
            .iter()
            .any(|t| t.first_request.starts_with(&format!("GET {path} "))),
        "{what}: the discovery GET went through the proxy: {tunnels:#?}"
    );
    assert!(
        tunnels.iter().any(Tunnel::is_websocket),
        "{what}: the socket went through the proxy: {tunnels:#?}"
    );
}

/// `NO_PROXY` bypasses a CONNECT proxy and a SOCKS one alike.
#[test]
fn no_proxy_bypasses_it_for_requests_and_sockets() {
    let base = reference_server();
    let url = format!("{base}/counter/bypassed");
    for proxy in [connect_proxy(), socks_proxy()] {
        for no_proxy in [
            ("NO_PROXY", "127.0.0.1"),
            ("no_proxy", "localhost,127.0.0.1"),
        ] {
            let mut run = lrwatch_env(
                &["-v", "-n", "2", "--transport", "multiplex-ws", &url],
                &[("HTTP_PROXY", &proxy.url), no_proxy],
            );
            let said = run.stderr_until("requests and WebSockets go");
            assert!(
                said.contains("directly (the host is in NO_PROXY)"),
                "{said}"
            );
            let first: u64 = run.line().parse().unwrap();
            post(&url);
            assert_eq!(run.line(), (first + 1).to_string());
            assert!(run.wait().success());
        }
        assert!(proxy.tunnels().is_empty(), "{:#?}", proxy.tunnels());
    }
}

/// The reference server on the IPv6 loopback, or `None` (said) where there is none: a machine
/// without IPv6 cannot run these, under CI or not.
fn ipv6_reference_server() -> Option<String> {
    match lrwatch::server::Server::bind("[::1]:0").and_then(|s| s.spawn()) {
        Ok(handle) => {
            let base = format!("http://{}", handle.local_addr());
            std::mem::forget(handle);
            Some(base)
        }
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback here ({e})");
            None
        }
    }
}

#[test]
fn ipv6_literals_on_every_transport() {
    let Some(base) = ipv6_reference_server() else {
        return;
    };
    assert!(base.starts_with("http://[::1]:"), "{base}");
    let plain = format!("{base}/plain/v6");
    put(&plain, "text/plain", "before");
    let items = format!("{base}/items/");
    // Every mechanism the reference server offers, each on a resource of its own (the
    // collection's feeds share /items/), all at once.
    let transports = [
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
    let mut runs: Vec<(&str, String, Run)> = transports
        .iter()
        .map(|&transport| {
            let url = match transport {
                "poll" => plain.clone(),
                t if t.starts_with("changes") => items.clone(),
                t => format!("{base}/counter/v6-{t}"),
            };
            let run = lrwatch(&[
                "-n",
                "2",
                "--interval",
                "0.2",
                "--callback-listen",
                "[::1]:0",
                "--transport",
                transport,
                &url,
            ]);
            (transport, url, run)
        })
        .collect();
    for (transport, _, run) in &mut runs {
        let first = run.line();
        let expected = match *transport {
            "poll" => "before",
            t if t.starts_with("changes") => "[]",
            _ => "0",
        };
        assert_eq!(first, expected, "{transport}");
    }
    // Every initial value is out, so each change comes after it, by push or by catch-up.
    for (transport, url, _) in &runs {
        if ![
            "poll",
            "changes",
            "changes-wait",
            "changes-stream",
            "changes-callback",
        ]
        .contains(transport)
        {
            post(url);
        }
    }
    put(&plain, "text/plain", "after");
    let added = agent()
        .post(&items)
        .header("Content-Type", "application/json")
        .send(r#"{"text":"v6"}"#)
        .unwrap();
    assert_eq!(added.status().as_u16(), 201);
    for (transport, _, run) in &mut runs {
        let second = run.line();
        let expected = match *transport {
            "poll" => "after",
            t if t.starts_with("changes") => r#"{"id":"1","text":"v6"}"#,
            _ => "1",
        };
        assert_eq!(second, expected, "{transport}");
        assert!(run.wait().success(), "{transport}: {}", run.stderr_text());
        let stderr = run.stderr_text();
        assert!(!stderr.contains("cannot resolve"), "{transport}: {stderr}");
    }
    // `lrwatch serve` prints its IPv6 address as a URL's host.
    let (_served, served) = served("[::1]:0");
    assert!(served.starts_with("http://[::1]:"), "{served}");
}

/// wss to an IPv6 address, directly and through the proxy: the certificate is checked against
/// the address (the brackets are no server name), and the TLS socket goes through the tunnel.
#[test]
fn wss_to_an_ipv6_address_directly_and_through_the_proxy() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let upstream = reference_server();
    let (ca_pem, chain, key) = crate::tls::certificates_for("::1");
    let base = crate::tls::tls_proxy_on("[::1]:0", &upstream, chain, key);
    assert!(base.starts_with("https://[::1]:"), "{base}");
    let ca_file = std::env::temp_dir().join(format!("lrwatch-ca6-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca = ca_file.to_str().unwrap();
    let proxy = connect_proxy();
    for (name, via) in [("direct", None), ("proxied", Some(proxy.url.as_str()))] {
        let url = format!("{base}/counter/wss6-{name}?form=b");
        let env: Vec<(&str, &str)> = via.map(|p| ("HTTPS_PROXY", p)).into_iter().collect();
        let mut run = lrwatch_env(
            &[
                "-v",
                "-n",
                "2",
                "--cacert",
                ca,
                "--transport",
                "multiplex-socket",
                &url,
            ],
            &env,
        );
        assert_eq!(run.line(), "0", "{name}");
        if via.is_some() {
            let said = run.stderr_until("connecting to wss://[::1]:");
            assert!(said.contains("through proxy"), "{said}");
        }
        post(&format!("{upstream}/counter/wss6-{name}"));
        assert_eq!(run.line(), "1", "{name}: the change came over wss");
        assert!(run.wait().success(), "{name}: {}", run.stderr_text());
    }
    // Discovery (https) and the socket (wss), each a tunnel to the IPv6 address.
    let authority = base.trim_start_matches("https://");
    let tunnels = proxy.tunnels();
    assert!(tunnels.len() >= 2, "{tunnels:#?}");
    assert!(
        tunnels
            .iter()
            .all(|t| t.target == authority && t.first_request == "(TLS)"),
        "{tunnels:#?}"
    );
    let _ = std::fs::remove_file(&ca_file);
}

/// `lrwatch check` opens its own sockets: to an IPv6 address, and through the proxy too (a
/// CONNECT proxy, a SOCKS5 one).
#[test]
fn check_sockets_reach_ipv6_and_go_through_the_proxy() {
    if let Some(base) = ipv6_reference_server() {
        let mut run = lrwatch(&["check", "--budget", "8", &format!("{base}/counter/check6")]);
        let status = run.wait();
        let stderr = run.stderr_text();
        assert!(status.success(), "{}", run.rest().join("\n"));
        assert!(!stderr.contains("cannot resolve"), "{stderr}");
    }
    let base = reference_server();
    for proxy in [connect_proxy(), socks_proxy()] {
        let mut run = lrwatch_env(
            &["check", "--budget", "8", &format!("{base}/counter/check")],
            &[("HTTP_PROXY", &proxy.url)],
        );
        assert!(run.wait().success(), "{}", run.rest().join("\n"));
        let tunnels = proxy.tunnels();
        let sockets = tunnels.iter().filter(|t| t.is_websocket()).count();
        // multiplex-ws and multiplex-socket, with and without the subprotocol offered.
        assert!(sockets >= 2, "{}: {tunnels:#?}", proxy.url);
    }
}

/// A WebSocket server that sends each connection one text message, the connection's number,
/// then waits for the client to go.
fn counting_ws_server(listener: TcpListener) -> crate::live_server::LiveServer {
    crate::live_server::ws_server_on(listener, |n, _, mut ws| {
        if ws.send(tungstenite::Message::text(n.to_string())).is_ok() {
            while ws.read().is_ok() {}
        }
    })
}

/// A `ws://` URL given directly goes the way requests go: through the proxy (`-v` says
/// which), whichever variable names it.
#[test]
fn ws_urls_go_through_the_proxy() {
    for var in ["HTTP_PROXY", "ALL_PROXY", "https_proxy"] {
        let server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
        let proxy = connect_proxy();
        let url = format!("{}/feed", server.base);
        let mut run = lrwatch_env(&["-v", "-n", "1", &url], &[(var, &proxy.url)]);
        let said = run.stderr_until(&format!("connecting to {url} "));
        assert!(
            said.contains(&format!(
                "connecting to {url} through proxy {} (from {var})",
                proxy.url
            )),
            "{var}: {said}"
        );
        assert_eq!(run.line(), "0", "{var}");
        assert!(run.wait().success(), "{var}: {}", run.stderr_text());
        let authority = server.base.trim_start_matches("ws://");
        let tunnels = proxy.tunnels();
        assert_eq!(tunnels.len(), 1, "{var}: {tunnels:#?}");
        assert_eq!(tunnels[0].target, authority, "{var}");
        assert!(
            tunnels[0].is_websocket() && tunnels[0].first_request.starts_with("GET /feed "),
            "{var}: {tunnels:#?}"
        );
    }
}

#[test]
fn no_proxy_bypasses_it_for_ws_urls() {
    for proxy in [connect_proxy(), socks_proxy()] {
        let server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
        let url = format!("{}/feed", server.base);
        let mut run = lrwatch_env(
            &["-v", "-n", "1", &url],
            &[("HTTP_PROXY", &proxy.url), ("NO_PROXY", "127.0.0.1")],
        );
        let said = run.stderr_until(&format!("connecting to {url} "));
        assert!(
            said.contains(&format!(
                "connecting to {url} directly (the host is in NO_PROXY)"
            )),
            "{said}"
        );
        assert_eq!(run.line(), "0");
        assert!(run.wait().success(), "{}", run.stderr_text());
        assert!(proxy.tunnels().is_empty(), "{:#?}", proxy.tunnels());
        assert_eq!(server.requests(), 1);
    }
}

/// `ws://[::1]:PORT/` and `wss://[::1]:PORT/` given directly: the address is connected to as
/// an address, and the certificate checked against it (the brackets are no server name).
#[test]
fn ws_urls_to_an_ipv6_address() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let server = counting_ws_server(listener);
    assert!(server.base.starts_with("ws://[::1]:"), "{}", server.base);
    let mut run = lrwatch(&["-n", "1", &format!("{}/v6", server.base)]);
    assert_eq!(run.line(), "0");
    assert!(run.wait().success(), "{}", run.stderr_text());

    let (ca_pem, chain, key) = crate::tls::certificates_for("::1");
    let tls_base = crate::tls::tls_proxy_on(
        "[::1]:0",
        &server.base.replace("ws://", "http://"),
        chain,
        key,
    );
    let ca_file = std::env::temp_dir().join(format!("lrwatch-wsca6-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("{}/v6", tls_base.replace("https://", "wss://"));
    let mut run = lrwatch(&["-n", "1", "--cacert", ca_file.to_str().unwrap(), &url]);
    assert_eq!(run.line(), "1", "{}", run.stderr_text());
    assert!(run.wait().success(), "{}", run.stderr_text());
    let _ = std::fs::remove_file(&ca_file);
}

/// The proxy's URL with `user:password@`.
fn with_login(url: &str, (user, password): (&str, &str)) -> String {
    url.replacen("://", &format!("://{user}:{password}@"), 1)
}

/// A protocol socket and the requests around it go through a SOCKS5 proxy, without
/// authentication or with a user and password, whether the proxy or lrwatch resolves names.
#[test]
fn requests_and_sockets_go_through_a_socks_proxy() {
    let open = socks_proxy();
    let login = socks_proxy_with_login();
    for (name, proxy, url) in [
        ("socks5", &open, open.url.clone()),
        (
            "socks5h",
            &open,
            open.url.replace("socks5://", "socks5h://"),
        ),
        ("socks", &open, open.url.replace("socks5://", "socks://")),
        ("login", &login, with_login(&login.url, SOCKS_LOGIN)),
    ] {
        let before = proxy.tunnels().len();
        let base = reference_server();
        let authority = base.trim_start_matches("http://").to_string();
        let resource = format!("{base}/counter/socks-{name}");
        let mut run = lrwatch_env(
            &["-v", "-n", "2", "--transport", "multiplex-ws", &resource],
            &[("ALL_PROXY", &url)],
        );
        let said = run.stderr_until("requests and WebSockets go");
        // The scheme as written, the credentials never.
        let shown = url.replace(&format!("{}:{}@", SOCKS_LOGIN.0, SOCKS_LOGIN.1), "");
        assert!(
            said.contains(&format!("through proxy {shown} (from ALL_PROXY)")),
            "{name}: {said}"
        );
        assert_eq!(run.line(), "0", "{name}");
        let said = run.stderr_until("connecting to ws://");
        assert!(said.contains(&format!("through proxy {shown}")), "{said}");
        post(&resource);
        assert_eq!(run.line(), "1", "{name}");
        assert!(run.wait().success(), "{name}: {}", run.stderr_text());
        let path = format!("/counter/socks-{name}");
        assert_carried(&proxy.tunnels()[before..], &authority, &path, name);
    }
}

/// socks5h hands the proxy the host's name, for requests and sockets alike: the proxy is the
/// one that resolves it.
#[test]
fn socks5h_sends_the_name_unresolved() {
    let proxy = socks_proxy();
    let base = reference_server();
    let port = base.rsplit(':').next().unwrap().to_string();
    let resource = format!("http://localhost:{port}/counter/by-name");
    let socks5h = proxy.url.replace("socks5://", "socks5h://");
    let mut run = lrwatch_env(
        &["-n", "2", "--transport", "multiplex-ws", &resource],
        &[("HTTPS_PROXY", &socks5h)],
    );
    assert_eq!(run.line(), "0");
    post(&format!("{base}/counter/by-name"));
    assert_eq!(run.line(), "1");
    assert!(run.wait().success(), "{}", run.stderr_text());
    let tunnels = proxy.tunnels();
    assert!(
        tunnels.len() >= 2
            && tunnels
                .iter()
                .all(|t| t.target == format!("localhost:{port}")),
        "{tunnels:#?}"
    );
    assert!(tunnels.iter().any(Tunnel::is_websocket), "{tunnels:#?}");
}

/// socks4:// and socks4a://: the discovery request and the protocol socket go through a proxy
/// that speaks only SOCKS4, and a `ws://` URL given directly too. socks4 hands it the address
/// (the URL's, 127.0.0.1); socks4a hands it the host's name (`localhost`), for it to resolve.
#[test]
fn requests_and_sockets_go_through_a_socks4_proxy() {
    let proxy = socks4_proxy();
    let base = reference_server();
    let port = base.rsplit(':').next().unwrap().to_string();
    let ws_server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
    let ws_port = ws_server.base.rsplit(':').next().unwrap().to_string();
    for (n, (scheme, host)) in [("socks4", "127.0.0.1"), ("socks4a", "localhost")]
        .into_iter()
        .enumerate()
    {
        let url = proxy.url.replace("socks4://", &format!("{scheme}://"));
        let before = proxy.tunnels().len();
        let resource = format!("http://{host}:{port}/counter/{scheme}");
        let mut run = lrwatch_env(
            &["-v", "-n", "2", "--transport", "multiplex-ws", &resource],
            &[("ALL_PROXY", &url)],
        );
        counts_through_the_proxy(
            &mut run,
            &format!("{url} (from ALL_PROXY)"),
            &format!("{base}/counter/{scheme}"),
            scheme,
        );
        // Every tunnel asked for in SOCKS4, to the host as the scheme says to name it.
        let path = format!("/counter/{scheme}");
        let authority = format!("{host}:{port}");
        assert_carried(&proxy.tunnels()[before..], &authority, &path, scheme);

        let before = proxy.tunnels().len();
        let feed = format!("ws://{host}:{ws_port}/feed");
        let mut run = lrwatch_env(&["-v", "-n", "1", &feed], &[("ALL_PROXY", &url)]);
        let said = run.stderr_until(&format!("connecting to {feed} "));
        assert!(
            said.contains(&format!(
                "connecting to {feed} through proxy {url} (from ALL_PROXY)"
            )),
            "{scheme}: {said}"
        );
        assert_eq!(run.line(), n.to_string(), "{scheme}");
        assert!(run.wait().success(), "{scheme}: {}", run.stderr_text());
        let tunnels = &proxy.tunnels()[before..];
        assert_eq!(tunnels.len(), 1, "{scheme}: {tunnels:#?}");
        assert_eq!(tunnels[0].target, format!("{host}:{ws_port}"), "{scheme}");
        assert!(
            tunnels[0].is_websocket() && tunnels[0].first_request.starts_with("GET /feed "),
            "{scheme}: {tunnels:#?}"
        );
    }
    assert_eq!(ws_server.requests(), 2);
}

/// socks5:// (and socks://, and socks4://) resolve the host's name here: the proxy is asked
/// for the address `localhost` resolves to first (where the server listens), never the name,
/// for requests and sockets alike.
#[test]
fn socks5_resolves_the_name_here() {
    let first = ("localhost", 0).to_socket_addrs().unwrap().next().unwrap();
    let handle = lrwatch::server::Server::bind(&first.to_string())
        .and_then(|s| s.spawn())
        .expect("start the reference server where localhost resolves to");
    let addr = handle.local_addr();
    std::mem::forget(handle);
    let socks5 = socks_proxy();
    let socks4 = socks4_proxy();
    let mut schemes = vec![
        ("socks5", &socks5, socks5.url.clone()),
        (
            "socks",
            &socks5,
            socks5.url.replace("socks5://", "socks://"),
        ),
    ];
    // SOCKS4 carries no IPv6 address.
    if addr.is_ipv4() {
        schemes.push(("socks4", &socks4, socks4.url.clone()));
    } else {
        eprintln!("socks4 skipped: localhost resolves to {} first", addr.ip());
    }
    for (scheme, proxy, url) in schemes {
        let before = proxy.tunnels().len();
        let resource = format!("http://localhost:{}/counter/here-{scheme}", addr.port());
        let mut run = lrwatch_env(
            &["-n", "2", "--transport", "multiplex-ws", &resource],
            &[("HTTP_PROXY", &url)],
        );
        assert_eq!(run.line(), "0", "{scheme}");
        post(&format!("http://{addr}/counter/here-{scheme}"));
        assert_eq!(run.line(), "1", "{scheme}");
        assert!(run.wait().success(), "{scheme}: {}", run.stderr_text());
        let path = format!("/counter/here-{scheme}");
        assert_carried(&proxy.tunnels()[before..], &addr.to_string(), &path, scheme);
    }
}

/// A `ws://` URL given directly goes through the SOCKS proxy too.
#[test]
fn ws_urls_go_through_a_socks_proxy() {
    let server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
    let proxy = socks_proxy();
    let url = format!("{}/feed", server.base);
    let mut run = lrwatch_env(&["-v", "-n", "1", &url], &[("all_proxy", &proxy.url)]);
    let said = run.stderr_until(&format!("connecting to {url} "));
    assert!(
        said.contains(&format!(
            "connecting to {url} through proxy {} (from all_proxy)",
            proxy.url
        )),
        "{said}"
    );
    assert_eq!(run.line(), "0");
    assert!(run.wait().success(), "{}", run.stderr_text());
    let tunnels = proxy.tunnels();
    assert_eq!(tunnels.len(), 1, "{tunnels:#?}");
    assert_eq!(tunnels[0].target, server.base.trim_start_matches("ws://"));
    assert!(
        tunnels[0].is_websocket() && tunnels[0].first_request.starts_with("GET /feed "),
        "{tunnels:#?}"
    );
}

/// Credentials the SOCKS proxy refuses: one line that says so and names the proxy (the
/// password not in it), exit 1, for a request and for a `ws://` URL alike.
#[test]
fn refused_socks_credentials_are_one_clear_line() {
    let proxy = socks_proxy_with_login();
    let wrong = with_login(&proxy.url, (SOCKS_LOGIN.0, "wr0ng"));
    let base = reference_server();
    let server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
    for url in [
        format!("{base}/counter/refused"),
        format!("{}/feed", server.base),
    ] {
        let mut run = lrwatch_env(&["-n", "1", &url], &[("ALL_PROXY", &wrong)]);
        assert_eq!(run.wait().code(), Some(1), "{url}: {}", run.stderr_text());
        let err = run.stderr_text();
        assert_eq!(err.lines().count(), 1, "{url}: {err}");
        // The proxy named (its credentials never), what it said, what to check.
        assert!(
            err.starts_with(&format!(
                "lrwatch: cannot reach {url} through proxy {} (from ALL_PROXY): ",
                proxy.url
            )) && err.ends_with(
                ". Check the proxy and its credentials, and that the server is running."
            ),
            "{url}: {err}"
        );
        assert!(
            err.contains("refused the user name and password")
                || err.contains("password authentication failed"),
            "{url}: {err}"
        );
        assert!(!err.contains("wr0ng"), "{url}: {err}");
    }
    assert!(proxy.tunnels().is_empty(), "{:#?}", proxy.tunnels());
    assert_eq!(server.requests(), 0);
}

/// An `https://` proxy: TLS to the proxy (verified against `--cacert`), CONNECT inside it.
/// Requests, the protocol's sockets (wss too: TLS inside the proxy's TLS) and `ws://` URLs go
/// through it; a proxy whose certificate is not trusted is refused, one line, exit 1.
#[test]
fn requests_and_sockets_go_through_an_https_proxy() {
    let connect = connect_proxy();
    let (proxy_ca, chain, key) = crate::tls::certificates();
    let proxy_url = crate::tls::tls_proxy(&connect.url, chain, key);
    let base = reference_server();
    let (server_ca, chain, key) = crate::tls::certificates();
    let tls_base = crate::tls::tls_proxy(&base, chain, key);
    let ca_file = std::env::temp_dir().join(format!("lrwatch-proxy-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, format!("{proxy_ca}{server_ca}")).unwrap();
    let ca = ca_file.to_str().unwrap();
    let env = [("HTTPS_PROXY", proxy_url.as_str())];

    let cacert = format!("--cacert={ca}");
    for (name, resource_base) in [("ws", &base), ("wss", &tls_base)] {
        let before = connect.tunnels().len();
        let resource = format!("{resource_base}/counter/https-proxy-{name}?form=b");
        let args = [
            "-v",
            "-n",
            "2",
            &cacert,
            "--transport=multiplex-socket",
            &resource,
        ];
        let mut run = lrwatch_env(&args, &env);
        counts_through_the_proxy(
            &mut run,
            &format!("{proxy_url} (from HTTPS_PROXY)"),
            &format!("{base}/counter/https-proxy-{name}"),
            name,
        );
        let tunnels = connect.tunnels()[before..].to_vec();
        let authority = resource_base.split("://").nth(1).unwrap();
        assert!(
            tunnels.len() >= 2 && tunnels.iter().all(|t| t.target == authority),
            "{name}: {tunnels:#?}"
        );
        if name == "wss" {
            assert!(
                tunnels.iter().all(|t| t.first_request == "(TLS)"),
                "{tunnels:#?}"
            );
        } else {
            assert!(tunnels.iter().any(Tunnel::is_websocket), "{tunnels:#?}");
        }
    }

    let server = counting_ws_server(TcpListener::bind("127.0.0.1:0").unwrap());
    let url = format!("{}/feed", server.base);
    let mut run = lrwatch_env(&["-n", "1", "--cacert", ca, &url], &env);
    assert_eq!(run.line(), "0");
    assert!(run.wait().success(), "{}", run.stderr_text());
    assert_eq!(
        connect.tunnels().last().unwrap().target,
        server.base.trim_start_matches("ws://")
    );

    // The proxy's certificate is checked: without the CA, no tunnel, for requests and sockets.
    let before = connect.tunnels().len();
    for url in [format!("{base}/counter/untrusted"), url] {
        let mut run = lrwatch_env(&["-n", "1", &url], &env);
        assert_eq!(run.wait().code(), Some(1), "{url}");
        let err = run.stderr_text();
        assert_eq!(err.lines().count(), 1, "{url}: {err}");
        assert!(
            err.starts_with(&format!(
                "lrwatch: cannot reach {url} through proxy {proxy_url} (from HTTPS_PROXY): "
            )) && err.contains("certificate"),
            "{url}: {err}"
        );
    }
    assert_eq!(connect.tunnels().len(), before);
    let _ = std::fs::remove_file(&ca_file);
}

/// A `-v -n 2` run following a counter over a socket: it says its requests and its socket go
/// through `proxy` (the proxy's URL and where it came from, as `-v` says it), prints the value,
/// then the one after a POST to `counter`, and exits 0. `case` names the case in failures.
fn counts_through_the_proxy(run: &mut Run, proxy: &str, counter: &str, case: &str) {
    let said = run.stderr_until("requests and WebSockets go");
    assert!(
        said.contains(&format!("through proxy {proxy}")),
        "{case}: {said}"
    );
    assert_eq!(run.line(), "0", "{case}");
    let said = run.stderr_until("connecting to ws");
    let url = proxy.split(' ').next().unwrap_or(proxy);
    assert!(
        said.contains(&format!("through proxy {url}")),
        "{case}: {said}"
    );
    post(counter);
    assert_eq!(run.line(), "1", "{case}");
    assert!(run.wait().success(), "{case}: {}", run.stderr_text());
}
