//! DNS over TCP to one upstream (RFC 7766): after a TC=1 answer, and for every query with
//! `force_tcp` (CoreDNS's `forward ... { force_tcp }`, which OpenShift's cloud template renders).
//!
//! One query at a time per connection, in the order RFC 7766 section 6.2.1 calls reuse: a
//! connection that answered goes back to a small idle list and the next query takes it, so a
//! steady stream of forwarded names costs one handshake per connection, not one per query.
//! Bounds:
//! - at most `max_connections` exchanges at once per upstream (each on its own connection);
//!   a query that finds them all busy waits for one within its attempt timeout, then moves on
//!   to the next upstream without holding this one down (it is alive, only busy);
//! - at most `max_connections` idle connections, each kept at most `idle_timeout` (servers close
//!   idle clients after seconds: Knot 10 s, Unbound 30 s);
//! - connect, write and read together within the attempt timeout.
//!
//! An idle connection the upstream has closed meanwhile is seen before use (it reads as end of
//! file) and dropped; one that fails during the exchange is retried once on a fresh
//! connection, since the server may have closed it just as the query left.

use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::error::ExchangeError;
use super::metrics::{bump, Counters};
use super::wire::{self, Question, WireError};

/// Connection limits of one upstream's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

pub(crate) struct TcpPool {
    addr: SocketAddr,
    limits: TcpLimits,
    /// One permit per exchange in progress.
    busy: Semaphore,
    /// Connections that answered and wait for the next query, most recent last.
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl TcpPool {
    pub(crate) fn new(addr: SocketAddr, limits: TcpLimits) -> Self {
        Self {
            addr,
            busy: Semaphore::new(limits.max_connections.max(1)),
            limits,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(TcpStream, Instant)>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Idle connections now open (for tests and status).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// Sends `query` (whose ID is already `id`) and returns the answer carrying that ID and
    /// `question`, all within `timeout`.
    pub(crate) async fn exchange(
        &self,
        query: &[u8],
        id: u16,
        question: &Question,
        timeout: Duration,
        counters: &Counters,
    ) -> Result<Vec<u8>, ExchangeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Queries come from a UDP datagram or a TCP frame, so they fit the 16-bit prefix.
        let len = u16::try_from(query.len())
            .map_err(|_| io::Error::other("query longer than 65535 bytes"))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        let _turn = match tokio::time::timeout_at(deadline, self.busy.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed.
            Ok(Err(_)) => return Err(ExchangeError::Busy(self.limits.max_connections)),
            Err(_) => return Err(ExchangeError::Busy(self.limits.max_connections)),
        };
        let mut reused = self.take_idle();
        loop {
            let was_reused = reused.is_some();
            let mut stream = match reused.take() {
                Some(stream) => stream,
                None => {
                    let stream = tokio::time::timeout_at(deadline, TcpStream::connect(self.addr))
                        .await
                        .map_err(|_| ExchangeError::Timeout(timeout))??;
                    // Queries are one write each; waiting to coalesce them only adds latency.
                    let _ = stream.set_nodelay(true);
                    bump(&counters.upstream_tcp_connections);
                    stream
                }
            };
            let answer = match tokio::time::timeout_at(deadline, round_trip(&mut stream, &framed))
                .await
            {
                Err(_) => return Err(ExchangeError::Timeout(timeout)),
                Ok(Err(error)) if was_reused => {
                    tracing::debug!(upstream = %self.addr, %error, "reused TCP connection failed; retrying on a new one");
                    continue;
                }
                Ok(Err(error)) => return Err(error.into()),
                Ok(Ok(answer)) => answer,
            };
            if !tcp_answer_matches(&answer, id, question)? {
                bump(&counters.unmatched_responses);
                return Err(ExchangeError::Mismatch);
            }
            self.put_idle(stream);
            return Ok(answer);
        }
    }

    /// The most recently used idle connection still open, dropping expired and closed ones.
    fn take_idle(&self) -> Option<TcpStream> {
        let now = Instant::now();
        let mut idle = self.idle();
        while let Some((stream, since)) = idle.pop() {
            if now.duration_since(since) >= self.limits.idle_timeout {
                continue;
            }
            // Nothing may be readable on an idle connection: end of file means the upstream
            // closed it, data would be an answer nobody asked for.
            match stream.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    fn put_idle(&self, stream: TcpStream) {
        let now = Instant::now();
        let mut idle = self.idle();
        idle.retain(|(_, since)| now.duration_since(*since) < self.limits.idle_timeout);
        if idle.len() < self.limits.max_connections {
            idle.push((stream, now));
        }
    }
}

/// Writes one framed query and reads one framed answer.
async fn round_trip(stream: &mut TcpStream, framed: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(framed).await?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

/// True when a TCP answer is a response with the query's ID and question.
pub(crate) fn tcp_answer_matches(
    answer: &[u8],
    id: u16,
    question: &Question,
) -> Result<bool, WireError> {
    Ok(answer.len() >= wire::HEADER_LEN
        && wire::id(answer) == id
        && wire::is_response(answer)
        && wire::parse_question(answer)? == *question)
}

#[cfg(test)]
mod tests {
    use super::super::wire;
    use super::*;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    /// A query for `a.example.com A` with ID `id`.
    fn query(id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(b"\x01a\x07example\x03com\x00\x00\x01\x00\x01");
        q
    }

    /// Answers each query on a connection after `delay`, echoing it with QR=1.
    async fn slow_upstream(delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut prefix = [0u8; 2];
                    while stream.read_exact(&mut prefix).await.is_ok() {
                        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                        if stream.read_exact(&mut msg).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(delay).await;
                        msg[2] |= 0x80;
                        let _ = stream.write_all(&prefix).await;
                        let _ = stream.write_all(&msg).await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_query_finding_every_connection_busy_gives_up_without_marking_the_upstream_down() {
        let addr = slow_upstream(Duration::from_millis(300)).await;
        let pool = Arc::new(TcpPool::new(
            addr,
            TcpLimits {
                max_connections: 1,
                idle_timeout: Duration::from_secs(10),
            },
        ));
        let counters = Arc::new(Counters::default());
        let question = wire::parse_question(&query(1)).unwrap();
        let first = {
            let (pool, counters, question) = (pool.clone(), counters.clone(), question.clone());
            tokio::spawn(async move {
                pool.exchange(&query(1), 1, &question, Duration::from_secs(2), &counters)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = pool
            .exchange(
                &query(2),
                2,
                &question,
                Duration::from_millis(100),
                &counters,
            )
            .await;
        let error = second.unwrap_err();
        assert!(matches!(error, ExchangeError::Busy(1)), "{error}");
        assert!(!error.marks_down());
        assert_eq!(wire::id(&first.await.unwrap().unwrap()), 1);
        // The first connection is kept for the next query.
        assert_eq!(pool.idle_count(), 1);
        let third = pool
            .exchange(&query(3), 3, &question, Duration::from_secs(2), &counters)
            .await
            .unwrap();
        assert_eq!(wire::id(&third), 3);
        assert_eq!(counters.snapshot().upstream_tcp_connections, 1);
    }
}
