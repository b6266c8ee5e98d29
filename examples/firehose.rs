//! A firehose for measuring by hand (BENCHMARKS.md): serves one plain `text/event-stream` of
//! `TIMES` thousand JSON events, 1 KB each (`small`: `{"n":N}`), then a last event with an id;
//! a reconnect carrying that id is answered 204, so `lrwatch URL` is done and exits. With
//! `lines`, the same 1 KB values as one finite NDJSON response (a line each), which ends.
//!
//!     cargo run --release --example firehose -- 1000 [small|lines]   # prints its URL
//!     time lrwatch --json -q URL > /dev/null
//!     time curl -s -N -o /dev/null URL

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let times: usize = match args.next().map(|a| a.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: firehose TIMES [small|lines]  (TIMES thousand events)");
            std::process::exit(2);
        }
    };
    let mode = args.next().unwrap_or_default();
    let (small, lines) = (mode == "small", mode == "lines");
    let pad = "x".repeat(1000);
    let block: String = (0..1000)
        .map(|i| {
            if small {
                format!("data: {{\"n\":{i}}}\n\n")
            } else if lines {
                format!("{{\"i\":{i},\"pad\":\"{pad}\"}}\n")
            } else {
                format!("data: {{\"i\":{i},\"pad\":\"{pad}\"}}\n\n")
            }
        })
        .collect();
    let block = std::sync::Arc::new(block);
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port on loopback");
    println!("http://{}/s", listener.local_addr().expect("its address"));
    for mut stream in listener.incoming().flatten() {
        let block = std::sync::Arc::clone(&block);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            if head.contains("last-event-id") {
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                return;
            }
            let head = if lines {
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
                 Connection: close\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                 Connection: close\r\n\r\nretry: 0\n\n"
            };
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..times {
                if stream.write_all(block.as_bytes()).is_err() {
                    return;
                }
            }
            let last: &[u8] = if lines {
                b"{\"last\":true}\n"
            } else {
                b"id: end\ndata: {\"last\":true}\n\n"
            };
            let _ = stream.write_all(last);
        });
    }
}
