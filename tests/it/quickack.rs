//! The HTTP client asks for quick ACKs (Linux `TCP_QUICKACK`) on a reused connection before it
//! waits for a long-poll's answer, so that a server writing head and body separately with Nagle
//! on is not held up by a delayed ACK (issue 13, part 7). The socket is the library's own, so
//! this test drives the client in-process and reads the option from the server's thread while
//! the client waits.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lrwatch::http::{HttpClient, DEFAULT_MAX_BODY};

use crate::harness::BOUND;

/// Reads one request head (this test's requests have no body).
fn read_head(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("request"), 1, "request cut");
        seen.push(byte[0]);
    }
}

/// An IPv4 socket address of `fd` (its own with `peer` false), if it is one.
fn address(fd: libc::c_int, peer: bool) -> Option<SocketAddr> {
    // SAFETY: sockaddr_in is plain data; the length passed is its size, and the kernel writes
    // at most that much. A descriptor that is not a socket only makes the call fail.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let out = (&mut addr as *mut libc::sockaddr_in).cast();
        let result = if peer {
            libc::getpeername(fd, out, &mut len)
        } else {
            libc::getsockname(fd, out, &mut len)
        };
        (result == 0 && addr.sin_family == libc::AF_INET as libc::sa_family_t).then(|| {
            SocketAddr::from((
                Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                u16::from_be(addr.sin_port),
            ))
        })
    }
}

/// The descriptor, in this process, of the client's end of `server_side`.
fn client_descriptor(server_side: &TcpStream) -> libc::c_int {
    let (ours, theirs) = (
        server_side.peer_addr().unwrap(),
        server_side.local_addr().unwrap(),
    );
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .find(|&fd| address(fd, false) == Some(ours) && address(fd, true) == Some(theirs))
        .expect("the client's socket in this process")
}

/// `TCP_QUICKACK` as the kernel reports it: 1 while the socket is not in delayed-ACK
/// ("pingpong") mode.
fn quick_ack(fd: libc::c_int) -> libc::c_int {
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a c_int and its size; a closed descriptor only makes the call fail.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(result, 0, "getsockopt: {}", std::io::Error::last_os_error());
    value
}

#[test]
fn a_long_poll_on_a_reused_connection_waits_with_quick_acks_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/r", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Length: 1\r\n\r\n1");
        // The long-poll, on the same connection. Sending it right after an answer puts the
        // client's socket in delayed-ACK mode (that is the bug); the client must leave that
        // mode before it reads. It may not have reached its read yet: look again until it has,
        // within the bound (the kernel state has no event to wait on).
        read_head(&mut stream);
        let fd = client_descriptor(&stream);
        let deadline = Instant::now() + BOUND / 2;
        let mut seen = quick_ack(fd);
        while seen != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            seen = quick_ack(fd);
        }
        let _ = tx.send(seen);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nETag: \"2\"\r\nContent-Length: 1\r\n\r\n2");
        // Hold the connection until the client is done with it.
        let _ = stream.read(&mut [0u8; 1]);
    });

    let client = HttpClient::new(vec![], DEFAULT_MAX_BODY, None);
    let url = url::Url::parse(&base).unwrap();
    let first = client.get(&url, &url, &[], BOUND).expect("first answer");
    assert_eq!(first.body, b"1");
    let wait = [
        ("If-None-Match", "\"1\"".to_string()),
        ("Wait", "5".to_string()),
    ];
    let second = client
        .get(&url, &url, &wait, BOUND)
        .expect("the long-poll's answer");
    assert_eq!(second.body, b"2");
    assert_eq!(
        rx.recv_timeout(BOUND)
            .expect("the server's look at the socket"),
        1,
        "TCP_QUICKACK was off while the client waited for the long-poll's answer"
    );
}
