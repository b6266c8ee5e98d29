//! Integration tests: the real `lrwatch` binary against real servers on 127.0.0.1:0.
//! One test binary (faster to build); every wait bounded by `harness::BOUND`.

mod browser;
mod budget;
mod callbacks;
mod changes;
mod check;
mod check_servers;
mod chromium;
mod environment;
mod errors;
mod escaping;
mod exits;
mod faults;
mod flood;
mod follow;
mod gate;
mod harness;
mod inspect;
mod interop;
mod library_words;
mod limits;
mod live_lines;
mod live_server;
mod live_sse;
mod live_ws;
mod modules;
mod ordering;
mod output;
mod plain_http;
mod prefix;
mod proxies;
mod pty;
mod push;
#[cfg(target_os = "linux")]
mod quickack;
mod scripted;
mod serve_log;
mod serve_web;
mod server_live;
mod storms;
mod subcommands;
mod tls;
mod verify;
