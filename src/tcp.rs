//! The HTTP client's TCP connections, which acknowledge what they receive at once (Linux
//! `TCP_QUICKACK` before reads), so that a server answering in two writes is not held up.
//!
//! Why: a server that writes a response's head and its body in two writes with Nagle's
//! algorithm on (Python's `http.server`, many development servers) sends the body only once the
//! head is acknowledged. On a reused keep-alive connection Linux delays that ACK by up to 40 ms
//! (the connection looks interactive: each request follows an answer), so every change a
//! long-poll delivers came about 40 ms late; a new connection (curl) starts in quick-ACK mode and
//! sees it in about 3 ms. The kernel leaves quick-ACK mode again by itself, so it is asked for
//! again before a read (at most once a millisecond: see `QUICK_ACK_AGAIN`). Connection reuse
//! is kept: over https, a TLS handshake per long-poll would cost far more on the internet
//! than the ACK saves.
//!
//! ureq's own TCP transport keeps its socket to itself, so this module opens and drives the
//! socket in its place (connect with a time budget per address, read and write timeouts, a
//! reads-retried-on-EINTR loop, the pool's liveness probe, the agent's shutdown handle), and
//! [`connector`] builds ureq's default chain around it: SOCKS proxy, CONNECT proxy, this,
//! rustls. (A SOCKS proxy's socket is ureq's own: behind a proxy, the ACK that matters is the
//! proxy's.)

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, NextTimeout,
    RustlsConnector, ShutdownHandle, SocksConnector, Transport,
};

use crate::stream_buffers::StreamBuffers;

/// How long a quick-ACK request is trusted between reads with nothing sent in between: the
/// kernel stays in quick-ACK mode for the next several segments, so reads that follow each
/// other closely (a stream flowing in) ask once per this interval instead of once per read, a
/// system call saved each time. A write ends the trust (see `transmit_output`).
const QUICK_ACK_AGAIN: Duration = Duration::from_millis(1);

/// ureq's default connector chain with [`QuickAckConnector`] in place of its TCP connector.
pub fn connector() -> impl Connector {
    ().chain(SocksConnector::default())
        .chain(ConnectProxyConnector::default())
        .chain(QuickAckConnector)
        .chain(RustlsConnector::default())
}

/// Opens a TCP connection when no earlier link in the chain (a CONNECT proxy) has made one.
#[derive(Debug)]
pub struct QuickAckConnector;

impl<In: Transport> Connector<In> for QuickAckConnector {
    type Out = Either<In, QuickAckTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let stream = connect(details)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let config = details.config;
        let transport = QuickAckTransport {
            stream: Arc::new(stream),
            buffers: StreamBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            quick_acked: None,
            read_timeout: None,
            write_timeout: None,
        };
        (details.register_shutdown)(Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(Either::B(transport)))
    }
}

/// Tries each resolved address in turn, as ureq does: an address that refuses or cannot be
/// routed to, or does not answer in its share of the time, gives way to the next. Each address
/// but the last gets half of the time left, so a black-holed IPv6 address leaves the IPv4 one
/// time to answer.
fn connect(details: &ConnectionDetails) -> Result<TcpStream, ureq::Error> {
    let started = Instant::now();
    let budget = details.timeout.not_zero().map(|t| *t);
    let addrs: &[SocketAddr] = &details.addrs;
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let attempt = match budget {
            Some(budget) => {
                let left = budget.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(details.timeout.reason));
                }
                let share = if i + 1 == addrs.len() { left } else { left / 2 };
                TcpStream::connect_timeout(addr, share.max(Duration::from_millis(10)))
            }
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) => last = Some(ureq::Error::Timeout(ureq::Timeout::Connect)),
            Err(e) if address_specific(&e) => last = Some(ureq::Error::Io(e)),
            Err(e) => return Err(ureq::Error::Io(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        ureq::Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

/// A failure that concerns only the address tried: the next one may still answer.
fn address_specific(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

/// A socket timeout surfaces as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One TCP connection, owned here so that quick ACKs can be asked for before each read.
pub struct QuickAckTransport {
    /// Shared (weakly) with the agent's shutdown handle, which shuts it down to end blocked I/O.
    stream: Arc<TcpStream>,
    buffers: StreamBuffers,
    /// When quick ACKs were last asked for.
    quick_acked: Option<Instant>,
    /// The timeouts last set on the socket, so that a syscall is made only when one changes.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl std::fmt::Debug for QuickAckTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickAckTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// `timeout` as a socket timeout (`None`: none), or the timeout error if it has already run out.
fn socket_timeout(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| *t))
}

impl Transport for QuickAckTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        // Sending puts Linux back into delayed ACKs (the connection looks interactive again):
        // the read after a request must ask for quick ACKs however recently the last one did.
        self.quick_acked = None;
        let timeout = timeout.for_write();
        let wanted = socket_timeout(timeout)?;
        if wanted != self.write_timeout {
            self.stream.set_write_timeout(wanted)?;
            self.write_timeout = wanted;
        }
        let output = &self.buffers.output()[..amount];
        match (&*self.stream).write_all(output) {
            Ok(()) => Ok(()),
            Err(e) if is_timeout(&e) => Err(ureq::Error::Timeout(timeout.reason)),
            Err(e) => Err(e.into()),
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let wanted = socket_timeout(timeout)?;
        if wanted != self.read_timeout {
            self.stream.set_read_timeout(wanted)?;
            self.read_timeout = wanted;
        }
        // The point of this transport: whatever arrives during this read is acknowledged at
        // once. Best effort: if the option cannot be set, the read is only slower.
        if self
            .quick_acked
            .is_none_or(|at| at.elapsed() >= QUICK_ACK_AGAIN)
        {
            let _ = quick_ack(&self.stream);
            self.quick_acked = Some(Instant::now());
        }
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let read = loop {
            match (&*self.stream).read(input) {
                // A signal interrupted the read (Linux does not restart reads that have a
                // timeout): read again in the time left, or give up if there is no timeout to
                // keep (the caller may have meant to interrupt).
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(limit) = wanted else { break Err(e) };
                    let left = limit.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break Err(io::ErrorKind::TimedOut.into());
                    }
                    self.stream.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                other => break other,
            }
        };
        let amount = match read {
            Ok(amount) => amount,
            Err(e) if is_timeout(&e) => return Err(ureq::Error::Timeout(timeout.reason)),
            Err(e) => return Err(e.into()),
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Whether a pooled connection may be used again: nothing unasked-for waiting, not closed.
    fn is_open(&mut self) -> bool {
        let probe = || -> io::Result<bool> {
            self.stream.set_nonblocking(true)?;
            let mut byte = [0u8];
            let open = match (&*self.stream).read(&mut byte) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                // Bytes nobody asked for, an EOF or an error: the connection is not reusable.
                _ => false,
            };
            self.stream.set_nonblocking(false)?;
            Ok(open)
        };
        probe().unwrap_or(false)
    }
}

/// Asks the kernel to acknowledge received data at once (and sends an ACK now if one is due).
/// Linux only: elsewhere there is no such option and nothing is done.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn quick_ack(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor (borrowed for the call), and a pointer to a c_int
    // whose size is passed with it.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to acknowledge received data at once: no such option outside Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn quick_ack(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}
