//! A few shared threads that do the followers' short work: their short requests (discovery,
//! catch-ups, polls) and the events of parked multiplexed followers (see `parked`).
//!
//! A thread that has made one ureq request keeps ~24 KiB more of its stack resident for good
//! (measured: 8 KiB per idle thread, 32 KiB after one GET), and each request in flight holds
//! the client's buffers. Running short requests here keeps a follower's own thread near the
//! idle minimum and bounds how many requests are in flight at once, however many resources
//! start together. Long-polls and streams stay on their follower's thread: they are held
//! open, and would starve a pool.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::http::{FetchError, HttpClient, Response};

/// Work for a pool thread.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Threads that run jobs in the order given: started as jobs find none idle, up to a limit,
/// so a follow of one resource starts one or two, not the whole pool. They end when the pool
/// is dropped.
#[derive(Debug)]
pub(super) struct Pool {
    name: String,
    max: usize,
    jobs: Mutex<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    threads: Arc<Mutex<Threads>>,
}

/// A pool's threads: how many were started, and how many wait for a job no one has claimed.
#[derive(Debug, Default)]
struct Threads {
    started: usize,
    idle: usize,
}

impl Pool {
    /// A pool of at most `max` threads named `name N`; none runs yet.
    pub(super) fn start(name: &str, max: usize) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        Pool {
            name: name.to_string(),
            max,
            jobs: Mutex::new(tx),
            queue: Arc::new(Mutex::new(rx)),
            threads: Arc::default(),
        }
    }

    /// Runs `job` on a pool thread: an idle one, else a new one while under the limit, else
    /// the first to be done; here when no thread can be started at all.
    pub(super) fn submit(&self, job: Job) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if threads.idle > 0 {
            // Claimed: an idle thread takes the next job from the queue.
            threads.idle -= 1;
        } else if threads.started < self.max {
            let (queue, pool) = (Arc::clone(&self.queue), Arc::clone(&self.threads));
            let spawned = std::thread::Builder::new()
                .name(format!("{} {}", self.name, threads.started))
                .spawn(move || work(&queue, &pool));
            threads.started += usize::from(spawned.is_ok());
        }
        if threads.started == 0 {
            drop(threads);
            job();
            return;
        }
        drop(threads);
        // The receiving end lives as long as the pool: a send cannot fail.
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
    }

    /// Runs `f` on a pool thread and waits for what it returns; `None` if it panicked.
    pub(super) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.submit(Box::new(move || {
            let _ = answer.send(f());
        }));
        answered.recv().ok()
    }

    /// `http.get(...)`, made on a pool thread; the caller waits for the answer.
    pub(super) fn get(
        &self,
        http: &HttpClient,
        url: &Url,
        resource: &Url,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let (http, url, resource) = (http.clone(), url.clone(), resource.clone());
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(name, value)| ((*name).to_string(), value.clone()))
            .collect();
        self.call(move || {
            let extra: Vec<(&str, String)> = extra
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone()))
                .collect();
            http.get(&url, &resource, &extra, timeout)
        })
        .unwrap_or_else(|| {
            Err(FetchError::Transport(crate::http::TransportError::other(
                "the request failed unexpectedly",
            )))
        })
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, threads: &Mutex<Threads>) {
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            // A job that panics ends alone: the thread goes on with the next (a job's caller
            // sees its answer channel close).
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            // The follow is gone.
            Err(_) => return,
        }
        threads.lock().unwrap_or_else(|e| e.into_inner()).idle += 1;
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
        let pool = Pool::start("test", 2);
        let http = HttpClient::new(Vec::new(), 1024, None);
        for _ in 0..3 {
            let extra = [("If-None-Match", "\"7\"".to_string())];
            let response = pool
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
        let name = pool.call(|| std::thread::current().name().map(str::to_string));
        assert!(name.flatten().is_some_and(|n| n.starts_with("test ")));
        // A job that panics leaves its caller an answer and the pool its threads.
        for _ in 0..3 {
            assert_eq!(pool.call(|| -> u8 { panic!("a job that panics") }), None);
        }
        assert_eq!(pool.call(|| 7), Some(7));
    }

    #[test]
    fn threads_start_only_when_none_is_idle_and_up_to_the_limit() {
        let pool = Pool::start("lazy", 3);
        let threads = |pool: &Pool| pool.threads.lock().unwrap().started;
        assert_eq!(threads(&pool), 0);
        assert_eq!(pool.call(|| 1), Some(1));
        // The thread counts itself idle just after answering: wait for that.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.threads.lock().unwrap().idle == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never went idle"
            );
            std::thread::yield_now();
        }
        assert_eq!(pool.call(|| 2), Some(2));
        assert_eq!(threads(&pool), 1);
        // Four jobs held at once: three threads, the fourth job waits its turn.
        let (release, held) = mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let (done, finished) = mpsc::channel();
        for i in 0..4 {
            let (held, done) = (Arc::clone(&held), done.clone());
            pool.submit(Box::new(move || {
                let _ = held.lock().unwrap().recv();
                done.send(i).unwrap();
            }));
        }
        assert_eq!(threads(&pool), 3);
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        let mut seen: Vec<i32> = (0..4)
            .map(|_| finished.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3]);
    }

    #[test]
    fn without_threads_jobs_run_on_the_caller() {
        let pool = Pool::start("none", 0);
        let here = std::thread::current().id();
        assert_eq!(
            pool.call(move || std::thread::current().id() == here),
            Some(true)
        );
        let http = HttpClient::new(Vec::new(), 1024, None);
        let url: Url = "http://127.0.0.1:1/".parse().unwrap();
        let answer = pool.get(&http, &url, &url, &[], Duration::from_secs(5));
        assert!(
            matches!(answer, Err(FetchError::Transport(_))),
            "{answer:?}"
        );
    }
}
