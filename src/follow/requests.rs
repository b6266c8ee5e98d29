//! A few shared threads that make the followers' short requests: discovery, catch-ups, polls.
//!
//! A thread that has made one ureq request keeps ~24 KiB more of its stack resident for good
//! (measured: 8 KiB per idle thread, 32 KiB after one GET), and each request in flight holds
//! the client's buffers. With a thread per followed resource, running these requests here
//! keeps a multiplexed follower's thread at the idle minimum and bounds how many discovery
//! requests are in flight at once, however many resources start together. Long-polls and
//! streams stay on their follower's thread: they are held open, and would starve the pool.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::http::{FetchError, HttpClient, Response};

/// How many requests run at once.
const THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The request threads of one follow; they end when it is dropped.
#[derive(Debug)]
pub(super) struct Requests {
    /// `None` when no thread could be started: requests then run on the caller's thread.
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Requests {
    /// Starts the threads.
    pub(super) fn start() -> Requests {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..THREADS {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("requests {i}"))
                .spawn(move || work(&rx));
            started += usize::from(spawned.is_ok());
        }
        Requests {
            jobs: Mutex::new((started > 0).then_some(tx)),
        }
    }

    /// `http.get(...)`, made on a request thread; the caller waits for the answer.
    pub(super) fn get(
        &self,
        http: &HttpClient,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = {
            let (http, url, resource) = (http.clone(), url.clone(), resource.clone());
            let extra: Vec<(String, String)> = extra
                .iter()
                .map(|(name, value)| ((*name).to_string(), value.clone()))
                .collect();
            Box::new(move || {
                let extra: Vec<(&str, String)> = extra
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.clone()))
                    .collect();
                let _ = answer.send(http.get(&url, &resource, &extra, timeout));
            })
        };
        let sent = match &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            // No request thread: make the request here.
            job();
        }
        answered
            .recv()
            .unwrap_or_else(|_| Err(FetchError::Transport("the request was dropped".into())))
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(),
            // The follow is gone.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn requests_run_on_the_pool_threads_and_answer_the_caller() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url: Url = format!("http://{}/r", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let seen = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for _ in 0..3 {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap();
                heads.push(String::from_utf8_lossy(&buf[..n]).to_string());
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
                    )
                    .unwrap();
            }
            heads
        });
        let requests = Requests::start();
        let http = HttpClient::new(Vec::new(), 1024, None);
        for _ in 0..3 {
            let extra = [("If-None-Match", "\"7\"".to_string())];
            let response = requests
                .get(&http, &url, &url, &extra, Duration::from_secs(5))
                .unwrap();
            assert_eq!(
                (response.status, response.body.as_slice()),
                (200, &b"hi"[..])
            );
        }
        let heads = seen.join().unwrap();
        assert!(
            heads.iter().all(|h| h.contains("if-none-match: \"7\"")),
            "{heads:?}"
        );
    }

    #[test]
    fn without_threads_requests_run_on_the_caller() {
        let requests = Requests {
            jobs: Mutex::new(None),
        };
        let http = HttpClient::new(Vec::new(), 1024, None);
        let url: Url = "http://127.0.0.1:1/".parse().unwrap();
        let answer = requests.get(&http, &url, &url, &[], Duration::from_secs(5));
        assert!(
            matches!(answer, Err(FetchError::Transport(_))),
            "{answer:?}"
        );
    }
}
