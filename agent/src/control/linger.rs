//! A lingering close for control connections, as HTTP servers do it: when a connection ends,
//! its write side is shut down and whatever the client is still sending is read and thrown
//! away (bounded in bytes and time) before the socket is closed.
//!
//! Without it, an answer given before the request body was read (403 to a refused peer, 413 to
//! an oversized body) is lost: the server closes with unread data, the client's next write
//! fails with a broken pipe, and the client reports that instead of reading the answer that is
//! already waiting in its socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Most bytes read and discarded after the answer.
pub const LINGER_BYTES: u64 = 1 << 20;
/// Longest the client gets to finish sending after the answer.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// A stream whose shutdown lingers; see the module docs.
#[derive(Debug)]
pub struct Lingering<S> {
    inner: S,
    /// Set once the write side is shut down: draining until EOF, the byte budget or this timer.
    drain: Option<Drain>,
}

#[derive(Debug)]
struct Drain {
    deadline: Pin<Box<Sleep>>,
    discarded: u64,
}

impl<S> Lingering<S> {
    pub fn new(inner: S) -> Self {
        Lingering { inner, drain: None }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.drain.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.drain = Some(Drain {
                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                discarded: 0,
            });
        }
        let Some(drain) = this.drain.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 8192];
        loop {
            if drain.discarded >= LINGER_BYTES || drain.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                // End of the client's data, or it gave up: nothing more to wait for.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => drain.discarded += buf.filled().len() as u64,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    use super::*;

    #[tokio::test]
    async fn a_client_still_sending_reads_the_answer_given_before_its_body() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = Lingering::new(server);
        let body = vec![b'x'; 300 * 1024];
        let sending = tokio::spawn(async move {
            // Far more than the socket buffers hold: without the drain this write fails.
            client.write_all(&body).await?;
            let mut answer = String::new();
            client.read_to_string(&mut answer).await?;
            Ok::<_, io::Error>(answer)
        });
        server.write_all(b"403 refused").await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(sending.await.unwrap().unwrap(), "403 refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_stops_sending_is_cut_off_after_the_time_bound() {
        let (server, client) = UnixStream::pair().unwrap();
        let mut server = Lingering::new(server);
        let started = tokio::time::Instant::now();
        // The client sends nothing and never closes: only the timer ends the drain.
        server.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), LINGER_TIME);
        drop(client);
    }
}
