//! The protocol deadline of one VRRP instance, on a `timerfd`.
//!
//! tokio's timer wakes its I/O driver (an eventfd write plus one more `epoll_wait`) whenever a
//! task arms a timer earlier than every other timer in its wheel, which is every advert of a
//! Master: the previous deadline has just fired, so the new one is always the earliest. At 10 ms
//! adverts that doubles the system calls of each tick. A `timerfd` registered with the reactor
//! costs one `timerfd_settime` per new deadline and wakes the task directly when it expires.
//!
//! The fd is edge-triggered in tokio, and re-arming it resets its expiry count, so the
//! expiration count is never read: a wake-up counts as an expiry only once `Instant::now()` has
//! reached the armed deadline. The kernel never fires before that point, because the deadline
//! is armed relative to a `now` taken just before the call, on the same clock (`CLOCK_MONOTONIC`
//! is what `std::time::Instant` reads on Linux).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// `TimerFd` with the `AsRawFd` that `AsyncFd` needs.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One deadline at a time; `None` never fires.
pub struct DeadlineTimer {
    fd: AsyncFd<Fd>,
    armed: Option<Instant>,
    /// The armed deadline was reported by [`DeadlineTimer::expired`]; arming the same deadline
    /// again re-arms the fd rather than skipping the system call.
    fired: bool,
}

impl DeadlineTimer {
    /// Creates a disarmed timer. Needs a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("timerfd_create: {e}")))?;
        // SAFETY: the TimerFd owns its descriptor (an OwnedFd): it stays open, and `as_raw_fd`
        // returns the same one, until the AsyncFd that owns the TimerFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), Interest::READABLE) }?;
        Ok(DeadlineTimer {
            fd,
            armed: None,
            fired: false,
        })
    }

    /// Arms the timer for `deadline` (a deadline in the past fires at once), or disarms it.
    /// Costs a system call only when the deadline changed or has fired.
    pub fn arm(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if deadline == self.armed && !self.fired {
            return Ok(());
        }
        let result = match deadline {
            Some(d) => {
                // A zero one-shot value disarms a timerfd: wait at least 1 ns.
                let wait = d
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                self.fd.get_ref().0.set(
                    Expiration::OneShot(TimeSpec::from_duration(wait)),
                    TimerSetTimeFlags::empty(),
                )
            }
            None => self.fd.get_ref().0.unset(),
        };
        // Whatever happened, the fd no longer stands for the old deadline.
        self.armed = deadline;
        self.fired = false;
        result
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("timerfd_settime: {e}")))
    }

    /// Resolves once the armed deadline has passed; pending forever while disarmed or after
    /// the deadline was reported (until the next [`DeadlineTimer::arm`]). Cancel-safe.
    pub async fn expired(&mut self) {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await
    }

    /// [`DeadlineTimer::expired`] as a poll function: `Ready` once the armed deadline has
    /// passed (once per arming), otherwise registers `cx`'s waker with the reactor.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = match self.armed {
            Some(d) if !self.fired => d,
            _ => return Poll::Pending,
        };
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                // The reactor is gone (runtime shutting down): nothing will be driven again.
                Poll::Ready(Err(_)) | Poll::Pending => return Poll::Pending,
            };
            // Readiness left over from a deadline that was re-armed before it was seen is
            // cleared too; clear_ready() keeps an event that arrived after the guard was taken,
            // and the next poll_read_ready registers the waker.
            guard.clear_ready();
            if Instant::now() >= deadline {
                self.fired = true;
                return Poll::Ready(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .expect("test runtime")
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            for wait_ms in [0u64, 1, 5, 20] {
                let deadline = Instant::now() + Duration::from_millis(wait_ms);
                t.arm(Some(deadline)).expect("arm");
                t.expired().await;
                let now = Instant::now();
                assert!(now >= deadline, "fired {:?} early", deadline - now);
                assert!(
                    now - deadline < Duration::from_millis(50),
                    "fired {:?} late",
                    now - deadline
                );
            }
        });
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            let start = Instant::now();
            t.arm(Some(start - Duration::from_secs(1))).expect("arm");
            t.expired().await;
            assert!(start.elapsed() < Duration::from_millis(50));
        });
    }

    #[test]
    fn disarmed_or_reported_timers_stay_pending() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            let pending = tokio::time::timeout(Duration::from_millis(30), t.expired()).await;
            assert!(pending.is_err(), "a disarmed timer fired");

            t.arm(Some(Instant::now())).expect("arm");
            t.expired().await;
            let again = tokio::time::timeout(Duration::from_millis(30), t.expired()).await;
            assert!(again.is_err(), "a reported deadline fired twice");

            t.arm(None).expect("disarm");
            let disarmed = tokio::time::timeout(Duration::from_millis(30), t.expired()).await;
            assert!(disarmed.is_err(), "a disarmed timer fired");
        });
    }

    #[test]
    fn re_arming_later_discards_an_expiry_not_yet_seen() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            // Let the first deadline expire in the kernel without waiting on it, then move it.
            t.arm(Some(Instant::now() + Duration::from_millis(1)))
                .expect("arm");
            std::thread::sleep(Duration::from_millis(5));
            tokio::task::yield_now().await;
            let later = Instant::now() + Duration::from_millis(40);
            t.arm(Some(later)).expect("re-arm");
            t.expired().await;
            assert!(Instant::now() >= later, "the stale expiry was reported");
        });
    }

    #[test]
    fn re_arming_the_same_deadline_after_it_fired_fires_again() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            let deadline = Instant::now() + Duration::from_millis(2);
            t.arm(Some(deadline)).expect("arm");
            t.expired().await;
            // A router that keeps an overdue deadline is woken again, as with tokio's sleep.
            t.arm(Some(deadline)).expect("re-arm");
            tokio::time::timeout(Duration::from_millis(50), t.expired())
                .await
                .expect("the re-armed overdue deadline fired");
        });
    }

    #[test]
    fn an_earlier_deadline_replaces_a_later_one() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new().expect("timerfd");
            t.arm(Some(Instant::now() + Duration::from_secs(10)))
                .expect("arm");
            let soon = Instant::now() + Duration::from_millis(5);
            t.arm(Some(soon)).expect("re-arm");
            tokio::time::timeout(Duration::from_millis(500), t.expired())
                .await
                .expect("the earlier deadline fired");
            assert!(Instant::now() >= soon);
        });
    }
}
