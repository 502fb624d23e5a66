//! Accepting connections within bounds.
//!
//! A gRPC server that accepts every TCP connection and keeps it forever can
//! be taken down by clients that open connections and send nothing: each
//! holds a file descriptor until the process runs out, and then health
//! checks time out and ingestion stalls on `Too many open files`. So the
//! listener here:
//!
//! - holds at most `max_connections` open at once; beyond that it stops
//!   accepting (new clients wait in the kernel's backlog) instead of failing;
//! - closes a connection that sends nothing within `handshake_timeout` of
//!   being accepted, and one that sends nothing for `idle_timeout` after
//!   that (a live gRPC client answers the server's HTTP/2 keep-alive pings,
//!   so only dead or silent peers are closed);
//! - survives accept errors (a full file table, a reset before accept):
//!   they are logged at most once a minute and accepting goes on.
//!
//! [`raise_nofile_limit`] lifts the process's soft limit on open files to
//! its hard limit at start, so the bound above, the store's files and the
//! ingestor's followed logs all fit.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The bounds on connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a new connection has to send its first bytes.
    pub handshake_timeout: Duration,
    /// Time a connection may send nothing before it is closed.
    pub idle_timeout: Duration,
}

/// An accepted connection that counts against the bound while open and
/// closes itself when its peer stays silent.
#[derive(Debug)]
pub(crate) struct BoundedConn {
    io: TcpStream,
    deadline: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    _permit: OwnedSemaphorePermit,
}

impl BoundedConn {
    /// The client's address.
    pub(crate) fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.io.peer_addr().ok()
    }
}

impl Connected for BoundedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for BoundedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle_timeout;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer sent nothing within the idle timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for BoundedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The connections of `listener`, within `bounds`, until `stop` turns true.
pub(crate) fn incoming(
    listener: TcpListener,
    bounds: Bounds,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<io::Result<BoundedConn>> {
    let (tx, rx) = mpsc::channel(1);
    let slots = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
    tokio::spawn(async move {
        let mut last_error_logged: Option<Instant> = None;
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = stop.wait_for(|s| *s) => return,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => return,
            };
            let io = match accepted {
                Ok((io, _)) => io,
                Err(err) => {
                    if last_error_logged.is_none_or(|t| t.elapsed() >= Duration::from_mins(1)) {
                        tracing::warn!(error = %err, "accepting a connection failed; going on");
                        last_error_logged = Some(Instant::now());
                    }
                    metrics::counter!("grpc_server_accept_errors_total").increment(1);
                    // A full file table frees up only when connections
                    // close: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY a small answer can wait for the peer's
            // delayed ACK: 40 ms on Linux for every unary call.
            if let Err(err) = io.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
            let conn = BoundedConn {
                io,
                deadline: Box::pin(tokio::time::sleep(bounds.handshake_timeout)),
                idle_timeout: bounds.idle_timeout,
                _permit: permit,
            };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Raises the soft limit on open files to the hard limit, and returns the
/// limit in force (`None` where it cannot be read).
pub fn raise_nofile_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => return Some(hard),
            Err(err) => {
                tracing::warn!(soft, hard, error = %err, "cannot raise the open-file limit");
            }
        }
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_stream::StreamExt as _;

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        (l, addr)
    }

    #[tokio::test]
    async fn beyond_the_bound_connections_wait_until_one_closes() {
        let (l, addr) = listener().await;
        let (_stop_tx, stop) = watch::channel(false);
        let bounds = Bounds {
            max_connections: 2,
            handshake_timeout: Duration::from_mins(1),
            idle_timeout: Duration::from_mins(1),
        };
        let mut conns = incoming(l, bounds, stop);
        let _c1 = TcpStream::connect(addr).await.expect("c1");
        let _c2 = TcpStream::connect(addr).await.expect("c2");
        let _c3 = TcpStream::connect(addr).await.expect("c3");
        let s1 = conns.next().await.expect("s1").expect("ok");
        let _s2 = conns.next().await.expect("s2").expect("ok");
        // The third is not handed out while two are open...
        let third = tokio::time::timeout(Duration::from_millis(300), conns.next()).await;
        assert!(third.is_err(), "a third connection beyond the bound");
        // ...and is once one of them closes.
        drop(s1);
        let s3 = tokio::time::timeout(Duration::from_secs(10), conns.next()).await;
        assert!(
            matches!(s3, Ok(Some(Ok(_)))),
            "the waiting connection is accepted"
        );
    }

    #[tokio::test]
    async fn silent_peers_are_closed_and_talking_ones_kept() {
        let (l, addr) = listener().await;
        let (_stop_tx, stop) = watch::channel(false);
        let bounds = Bounds {
            max_connections: 8,
            handshake_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(3),
        };
        let mut conns = incoming(l, bounds, stop);
        // A silent client: the server's read fails with TimedOut.
        let _silent = TcpStream::connect(addr).await.expect("connect");
        let mut server_side = conns.next().await.expect("conn").expect("ok");
        let mut buf = [0u8; 16];
        let err = server_side.read(&mut buf).await.expect_err("timed out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // A client that keeps talking within the idle timeout stays.
        let mut talking = TcpStream::connect(addr).await.expect("connect");
        let mut server_side = conns.next().await.expect("conn").expect("ok");
        for _ in 0..4 {
            talking.write_all(b"ping").await.expect("write");
            let n = server_side.read(&mut buf).await.expect("read");
            assert_eq!(&buf[..n], b"ping");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use nix::sys::resource::{Resource, getrlimit};
        let now = raise_nofile_limit().expect("readable");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!(now, soft);
        assert_eq!(soft, hard);
    }
}
