//! Standard output whose blocked writes give up at `--timeout` or a signal, so that a reader
//! that stops reading cannot hold the run.
//!
//! Why: a write into a full pipe blocks until the reader takes something. `lrwatch -t 3 URL |
//! sleep 30` ran until killed, and so did Ctrl-C and SIGTERM: nothing saw the deadline or the
//! signal while the write waited. Handing the writes to a thread of their own cost 15% of a
//! firehose's rate into a pipe (BENCHMARKS.md), so the writes stay on the follow loop's
//! thread and are interrupted instead: once the run should end, a [`Nudger`] thread sends that
//! thread a signal (`SIGURG`, whose handler does nothing and is installed without `SA_RESTART`)
//! every [`NUDGE_EVERY`]; the write it interrupts returns `EINTR`, and [`Interruptible`] then
//! asks whether to give up ([`Stalled`]) or write on.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a write that waits is interrupted once the run should end.
pub const NUDGE_EVERY: Duration = Duration::from_millis(50);

/// Why a write gave up without writing: the run ended (a signal came, or `--timeout` ran out)
/// while stdout was not being read.
#[derive(Debug)]
pub struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout is not being read")
    }
}

impl std::error::Error for Stalled {}

/// When a write that waits gives up: once a signal is caught (a number other than 0 in
/// `caught`), or at a time.
#[derive(Clone)]
pub struct GiveUp {
    caught: Arc<AtomicI32>,
    at: Arc<Mutex<Option<Instant>>>,
    /// Set for the last flush: only the time counts, the signal already ended the run.
    time_only: Arc<AtomicBool>,
    /// The nudger's thread, woken whenever what it waits for changes.
    nudger: Arc<Mutex<Option<std::thread::Thread>>>,
    /// How many times the nudger has settled on how long to wait (tests wait for it).
    #[cfg(test)]
    waits: Arc<std::sync::atomic::AtomicUsize>,
}

impl GiveUp {
    pub fn new(caught: Arc<AtomicI32>, at: Option<Instant>) -> GiveUp {
        GiveUp {
            caught,
            at: Arc::new(Mutex::new(at)),
            time_only: Arc::default(),
            nudger: Arc::default(),
            #[cfg(test)]
            waits: Arc::default(),
        }
    }

    /// Makes the nudger look again (a signal was caught).
    pub fn wake(&self) {
        if let Some(nudger) = &*self.nudger.lock().unwrap_or_else(|e| e.into_inner()) {
            nudger.unpark();
        }
    }

    /// From now on, gives up at `at` only, signal or not: the last flush's own moment.
    pub fn only_at(&self, at: Instant) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        self.time_only.store(true, Ordering::SeqCst);
        // A nudger parked until the old time (or for good, without --timeout) must count
        // from the new one: after an error, nothing was nudging yet.
        self.wake();
    }

    fn at(&self) -> Option<Instant> {
        *self.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> bool {
        let signal =
            !self.time_only.load(Ordering::SeqCst) && self.caught.load(Ordering::SeqCst) != 0;
        signal || self.at().is_some_and(|at| Instant::now() >= at)
    }
}

/// A writer whose writes, interrupted by a signal, give up when [`GiveUp`] says so.
pub struct Interruptible<W> {
    inner: W,
    give_up: GiveUp,
}

impl<W: Write> Interruptible<W> {
    pub fn new(inner: W, give_up: GiveUp) -> Interruptible<W> {
        Interruptible { inner, give_up }
    }
}

impl<W: Write> Write for Interruptible<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match self.inner.write(bytes) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if self.give_up.now() {
                        return Err(io::Error::other(Stalled));
                    }
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Interrupts the thread that made it, every [`NUDGE_EVERY`] once its [`GiveUp`] says to give
/// up (or a signal is caught), until dropped.
pub struct Nudger {
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Nudger {
    /// Stops nudging, and waits until no nudge can come any more: after this, the nudged
    /// thread may end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Nudger {
    /// Starts nudging the calling thread when `give_up` says. Unix only; elsewhere a write
    /// that waits is not interrupted.
    #[cfg(unix)]
    pub fn start(give_up: GiveUp) -> io::Result<Nudger> {
        extern "C" fn nothing(_: libc::c_int) {}
        // SAFETY: a handler that does nothing (async-signal-safe), installed with a zeroed,
        // then emptied, mask and no flags: no SA_RESTART, so a blocked write returns EINTR.
        // SIGURG is otherwise ignored by default, and lrwatch never asks for it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            if libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: the calling thread's own id; it lives as long as the process (the follow
        // loop runs on the main thread, whose end is the process's).
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let registry = Arc::clone(&give_up.nudger);
        let thread = std::thread::Builder::new()
            .name("nudger".into())
            .spawn(move || loop {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if give_up.now() {
                    // SAFETY: `target` is a live thread (see above); SIGURG has a handler.
                    unsafe { libc::pthread_kill(target, libc::SIGURG) };
                    std::thread::sleep(NUDGE_EVERY);
                    continue;
                }
                // Woken by a signal or a new time (see `GiveUp::wake`), at the time, or to
                // look again.
                let wait = give_up.at().map_or(Duration::from_secs(3600), |at| {
                    at.saturating_duration_since(Instant::now())
                });
                #[cfg(test)]
                give_up.waits.fetch_add(1, Ordering::SeqCst);
                std::thread::park_timeout(wait);
            })?;
        *registry.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread.thread().clone());
        Ok(Nudger {
            thread: Some(thread),
            stop,
        })
    }

    #[cfg(not(unix))]
    pub fn start(_give_up: GiveUp) -> io::Result<Nudger> {
        Ok(Nudger {
            thread: None,
            stop: Arc::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_time_set_for_the_last_flush_is_kept_by_a_nudger_that_was_waiting_for_nothing() {
        // No --timeout, no signal: the nudger waits for good. A run that then ends in an
        // error gives its last flush a time of its own, and the write that waits gives up.
        let give_up = GiveUp::new(Arc::default(), None);
        let writer_give_up = give_up.clone();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (_unread, write) = UnixStream::pair().unwrap();
            let _nudger = Nudger::start(writer_give_up.clone()).unwrap();
            let mut out = Interruptible::new(write, writer_give_up);
            let chunk = vec![b'x'; 64 * 1024];
            let _ = done.send((0..1024).try_for_each(|_| out.write_all(&chunk)));
        });
        // The nudger has settled on waiting (for good) before the time is set.
        let deadline = Instant::now() + Duration::from_secs(10);
        while give_up.waits.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the nudger never waited");
            std::thread::yield_now();
        }
        give_up.only_at(Instant::now() + Duration::from_millis(100));
        let e = result
            .recv_timeout(Duration::from_secs(10))
            .expect("the write gave up")
            .expect_err("a write of 64 MiB nobody reads");
        assert!(e.get_ref().is_some_and(|e| e.is::<Stalled>()), "{e:?}");
    }

    #[test]
    fn a_write_nobody_reads_gives_up_once_a_signal_is_caught_then_at_the_time() {
        // A socket pair blocks its writer when full, as a pipe does.
        let (_unread, write) = UnixStream::pair().unwrap();
        let caught = Arc::new(AtomicI32::new(0));
        let give_up = GiveUp::new(Arc::clone(&caught), None);
        // The test's own thread is nudged, as the follow loop's is.
        let _nudger = Nudger::start(give_up.clone()).unwrap();
        let mut out = Interruptible::new(write, give_up.clone());
        caught.store(15, Ordering::SeqCst);
        give_up.wake();
        let chunk = vec![b'x'; 64 * 1024];
        let e = (0..1024)
            .try_for_each(|_| out.write_all(&chunk))
            .expect_err("gave up");
        assert!(e.get_ref().is_some_and(|e| e.is::<Stalled>()), "{e:?}");
        // The last flush's moment: waits on until then, then gives up.
        let started = Instant::now();
        give_up.only_at(started + Duration::from_millis(200));
        let e = out.write_all(&chunk).expect_err("gave up");
        assert!(e.get_ref().is_some_and(|e| e.is::<Stalled>()), "{e:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
