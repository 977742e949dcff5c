//! The event loop of the VRRP thread: one `epoll` set over every instance's descriptors, a
//! nanosecond timeout for the nearest protocol deadline, and mailboxes that the tokio side of
//! the daemon posts to.
//!
//! An instance wakes for three things: its raw socket, its protocol deadline and, rarely, a
//! message from the rest of the daemon (a command, an address change). On tokio every wake-up
//! also went through the scheduler, the reactor's readiness bookkeeping and the timer wheel,
//! about 2,000 instructions per advert (callgrind, docs/benchmarks.md); here it is one
//! `epoll_pwait2` whose timeout is the deadline, as keepalived's loop waits in `epoll_wait`
//! with its next timer as the timeout. No timer descriptor is re-armed per advert: a Master
//! makes two system calls per advert (the wait and `sendmsg`), a Backup two (the wait and
//! `recv`).
//!
//! The descriptors are registered level-triggered: whatever a wake-up leaves unread is
//! reported again by the next wait, so the loop may take one item per source per round and no
//! source can starve the others.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

fn os_error(what: &str, e: Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// Waits longer than this end early (see [`early`]).
const PRECISE_UP_TO: Duration = Duration::from_millis(50);

/// What to ask the kernel for to wake at `timeout` and not later: a wait may end up to 0.1 %
/// of its length late (`select_estimate_accuracy`: 3.8 ms for a Backup's 3.8 s
/// Master_Down_Interval, at most 100 ms, against the 50 us timer slack of a short wait). So a
/// long wait asks for twice that less, which ends before the deadline, and the caller waits
/// the rest, which is short.
pub fn early(timeout: Duration) -> Duration {
    if timeout > PRECISE_UP_TO {
        timeout - (timeout / 500).min(Duration::from_millis(200))
    } else {
        timeout
    }
}

/// Events taken per wait; level-triggered, so what does not fit is reported by the next one.
const EVENTS: usize = 64;

/// One `epoll` set; each descriptor is registered with a token of the caller's choice.
pub struct Poller {
    epoll: Epoll,
    events: [libc::epoll_event; EVENTS],
    /// `epoll_pwait2` (Linux 5.11) is there; without it the timeout is whole milliseconds.
    nanoseconds: bool,
}

impl Poller {
    pub fn new() -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| os_error("epoll_create1", e))?;
        Ok(Poller {
            epoll,
            events: [libc::epoll_event { events: 0, u64: 0 }; EVENTS],
            nanoseconds: true,
        })
    }

    /// Watches `fd` for readability, reported as `token` by [`Poller::wait`].
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| os_error("epoll_ctl(EPOLL_CTL_ADD)", e))
    }

    /// Stops watching `fd`.
    pub fn remove(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.epoll
            .delete(fd)
            .map_err(|e| os_error("epoll_ctl(EPOLL_CTL_DEL)", e))
    }

    /// Waits until a descriptor is readable, or `timeout` has passed (`None`: no limit), and
    /// returns the tokens of the readable ones (none: timed out, interrupted by a signal, or
    /// a long wait ended a little early, see [`early`]; the caller checks the time).
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
    ) -> io::Result<impl Iterator<Item = u64> + '_> {
        let n = match self.wait_raw(timeout.map(early)) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(os_error("epoll_wait", e)),
        };
        Ok(self.events.iter().take(n).map(|e| e.u64))
    }

    fn wait_raw(&mut self, timeout: Option<Duration>) -> Result<usize, Errno> {
        let epfd = self.epoll.0.as_raw_fd();
        let events = self.events.as_mut_ptr();
        let max = EVENTS as libc::c_int;
        if self.nanoseconds {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(t.subsec_nanos()),
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` points at EVENTS writable epoll_event entries owned by self;
            // `ts_ptr` is null or points at a timespec that outlives the call; a null signal
            // mask makes the kernel ignore the mask size. Called through syscall(2) so the
            // binary does not need glibc 2.35's wrapper.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    events,
                    max,
                    ts_ptr,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            match Errno::result(n) {
                Ok(n) => return Ok(usize::try_from(n).unwrap_or(0)),
                Err(Errno::ENOSYS) => {
                    tracing::info!(
                        "epoll_pwait2 is not available (Linux before 5.11): VRRP timers wake on whole milliseconds"
                    );
                    self.nanoseconds = false;
                }
                Err(e) => return Err(e),
            }
        }
        // Rounded up: waking before the deadline would only mean waiting again.
        let ms = timeout.map_or(-1, |t| {
            libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: as above.
        let n = unsafe { libc::epoll_wait(epfd, events, max, ms) };
        Errno::result(n).map(|n| usize::try_from(n).unwrap_or(0))
    }
}

/// The sending half of a [`Mailbox`]: usable from any thread, never blocks.
pub struct Postbox<T> {
    queue: mpsc::Sender<T>,
    bell: Arc<EventFd>,
}

impl<T> Clone for Postbox<T> {
    fn clone(&self) -> Self {
        Postbox {
            queue: self.queue.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> Postbox<T> {
    /// Queues `message` and makes the mailbox's descriptor readable. `Err` gives the message
    /// back once the mailbox is gone.
    pub fn post(&self, message: T) -> Result<(), T> {
        self.queue.send(message).map_err(|e| e.0)?;
        // Only EAGAIN can fail here (the counter at its maximum), and then it is readable
        // already.
        let _ = self.bell.write(1);
        Ok(())
    }
}

/// Messages from other threads to an event-loop thread, with a descriptor for its poller.
pub struct Mailbox<T> {
    queue: mpsc::Receiver<T>,
    bell: Arc<EventFd>,
    /// Taken from the queue when the bell was rung, handed out one at a time.
    pending: VecDeque<T>,
    /// Every postbox is gone and the queue is empty.
    closed: bool,
}

/// A mailbox and the postbox that fills it.
pub fn mailbox<T>() -> io::Result<(Postbox<T>, Mailbox<T>)> {
    let bell = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| os_error("eventfd", e))?;
    let bell = Arc::new(bell);
    let (tx, rx) = mpsc::channel();
    Ok((
        Postbox {
            queue: tx,
            bell: Arc::clone(&bell),
        },
        Mailbox {
            queue: rx,
            bell,
            pending: VecDeque::new(),
            closed: false,
        },
    ))
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Mail<T> {
    Message(T),
    /// Nothing queued now.
    Empty,
    /// Nothing queued and every postbox is gone: nothing will ever arrive.
    Closed,
}

impl<T> Mailbox<T> {
    /// The descriptor to register with a [`Poller`]: readable while the bell has rung since
    /// the last [`Mailbox::take`] that emptied it.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.bell.as_fd()
    }

    /// The next message. Call it after the descriptor was reported readable, until it
    /// returns `Empty`.
    pub fn take(&mut self) -> Mail<T> {
        if self.pending.is_empty() && !self.closed {
            // Silence the bell first: a message posted after this read rings it again.
            let _ = self.bell.read();
            loop {
                match self.queue.try_recv() {
                    Ok(m) => self.pending.push_back(m),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.closed = true;
                        break;
                    }
                }
            }
        }
        match self.pending.pop_front() {
            Some(m) => Mail::Message(m),
            None if self.closed => Mail::Closed,
            None => Mail::Empty,
        }
    }
}

impl<T> Drop for Postbox<T> {
    /// The last postbox going away closes the mailbox: ring so its thread notices.
    fn drop(&mut self) {
        let _ = self.bell.write(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const NONE: [u64; 0] = [];

    fn tokens(poller: &mut Poller, timeout: Option<Duration>) -> Vec<u64> {
        poller.wait(timeout).expect("wait").collect()
    }

    #[test]
    fn a_long_wait_ends_before_the_kernels_slack_could_make_it_late() {
        // The kernel's worst case for a wait of `asked` (select_estimate_accuracy).
        let slack = |asked: Duration| {
            (asked / 1000).clamp(Duration::from_micros(50), Duration::from_millis(100))
        };
        for ms in [51u64, 100, 1_000, 3_844, 120_000, 3_600_000] {
            let deadline = Duration::from_millis(ms);
            // Waits as the event loop does until the deadline is due, each one ending as late
            // as the kernel may make it.
            let mut now = Duration::ZERO;
            let mut waits = 0;
            while deadline - now > PRECISE_UP_TO {
                let asked = early(deadline - now);
                now += asked + slack(asked);
                waits += 1;
                assert!(
                    now < deadline,
                    "{ms} ms: wait {waits} ended late at {now:?}"
                );
            }
            assert!(waits <= 3, "{ms} ms: {waits} long waits");
        }
        for ms in [0u64, 1, 10, 50] {
            let t = Duration::from_millis(ms);
            assert_eq!(early(t), t);
        }
    }

    #[test]
    fn a_removed_descriptor_is_no_longer_reported() {
        let (post, mut mail) = mailbox::<u32>().expect("mailbox");
        let mut poller = Poller::new().expect("epoll");
        poller.add(mail.as_fd(), 1).expect("add");
        post.post(1).expect("post");
        assert_eq!(tokens(&mut poller, Some(Duration::from_secs(5))), [1]);
        poller.remove(mail.as_fd()).expect("remove");
        assert_eq!(tokens(&mut poller, Some(Duration::from_millis(1))), NONE);
        assert_eq!(mail.take(), Mail::Message(1));
    }

    #[test]
    fn a_posted_message_makes_the_mailbox_readable_and_is_taken_once() {
        let (post, mut mail) = mailbox::<u32>().expect("mailbox");
        let mut poller = Poller::new().expect("epoll");
        poller.add(mail.as_fd(), 300).expect("add");
        assert_eq!(tokens(&mut poller, Some(Duration::from_millis(1))), NONE);
        post.post(7).expect("post");
        post.post(8).expect("post");
        assert_eq!(tokens(&mut poller, None), [300]);
        assert_eq!(mail.take(), Mail::Message(7));
        assert_eq!(mail.take(), Mail::Message(8));
        assert_eq!(mail.take(), Mail::Empty);
        assert_eq!(tokens(&mut poller, Some(Duration::from_millis(1))), NONE);
    }

    #[test]
    fn dropping_every_postbox_wakes_the_loop_and_closes_the_mailbox() {
        let (post, mut mail) = mailbox::<u32>().expect("mailbox");
        let mut poller = Poller::new().expect("epoll");
        poller.add(mail.as_fd(), 0).expect("add");
        let other = post.clone();
        post.post(1).expect("post");
        drop(post);
        assert_eq!(mail.take(), Mail::Message(1));
        assert_eq!(mail.take(), Mail::Empty, "one postbox is left");
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(other);
        });
        assert_eq!(tokens(&mut poller, Some(Duration::from_secs(5))), [0]);
        assert_eq!(mail.take(), Mail::Closed);
        thread.join().expect("thread");
    }

    #[test]
    fn posting_to_a_dropped_mailbox_gives_the_message_back() {
        let (post, mail) = mailbox::<u32>().expect("mailbox");
        drop(mail);
        assert_eq!(post.post(5), Err(5));
    }

    #[test]
    fn a_timeout_is_not_rounded_to_milliseconds() {
        let mut poller = Poller::new().expect("epoll");
        let wait = Duration::from_micros(300);
        let mut fastest = Duration::MAX;
        for _ in 0..10 {
            let start = Instant::now();
            assert_eq!(tokens(&mut poller, Some(wait)), NONE);
            let took = start.elapsed();
            assert!(took >= wait, "woke after {took:?} of {wait:?}");
            fastest = fastest.min(took);
        }
        // The fastest of ten, so a loaded machine's late wake-ups do not count; a timeout
        // rounded up to whole milliseconds could not come in under 1 ms.
        assert!(
            fastest < Duration::from_millis(1),
            "fastest wake-up {fastest:?}"
        );
    }

    #[test]
    fn the_millisecond_fallback_rounds_up() {
        let mut poller = Poller::new().expect("epoll");
        poller.nanoseconds = false;
        let start = Instant::now();
        assert_eq!(tokens(&mut poller, Some(Duration::from_micros(1500))), NONE);
        assert!(start.elapsed() >= Duration::from_micros(1500));
    }
}
