//! The VRRP thread: one `epoll` set over every instance's raw socket and mailbox, waiting with
//! the nearest protocol deadline as its timeout; and the tokio task that fills each mailbox.
//!
//! One thread serves every instance, as keepalived's single loop does: instances whose
//! deadlines fall together (the API and ingress instances of a node that became Master of both
//! at once) are served by one wake-up instead of one per thread, and fifty instances cost one
//! thread, not fifty. Each round takes at most one item per instance, in a fixed order per
//! instance (its deadline once passed, the daemon's messages, then its socket, the one source
//! a stranger on the segment can flood), so no instance and no source starves another. The
//! descriptors are level-triggered: whatever a round leaves unread is reported again.
//!
//! The loop never blocks on one instance: a receive error parks that instance's socket for a
//! pause (taken out of the set) while the others go on.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Command, Instance};
use crate::health::Priority;
use crate::net::netlink::AddressEvent;
use crate::net::poller::{mailbox, Mail, Mailbox, Poller, Postbox};
use crate::net::socket::ReceivedPacket;

/// Pause after a receive error so a downed link cannot make the loop spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// How much later than its deadline an instance may be woken so that it shares a wake-up with
/// another instance's deadline: 10 % of the shortest advert interval VRRP allows (10 ms), 0.1 %
/// of OpenShift's 1 s. Instances served in one round are given the same `now`, so their next
/// deadlines coincide too and they keep sharing wake-ups (keepalived's loop gets the same from
/// its one cached time per round).
const COALESCE: Duration = Duration::from_millis(1);
/// Pause after `epoll_wait` itself failed (it does not, short of a kernel bug).
const POLL_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The token of the loop's own mailbox (new instances); instance `i` has `2 + 2i` (its
/// mailbox) and `3 + 2i` (its socket).
const ARRIVALS: u64 = 0;

/// What the daemon posts to an instance.
pub enum Input {
    Command(Command),
    Address(AddressEvent),
}

/// What woke an instance.
pub enum Wake {
    Packet(io::Result<ReceivedPacket>),
    Deadline,
    Command(Command),
    Address(AddressEvent),
    /// The daemon dropped the instance's command queue (reported once).
    Closed,
}

/// An instance handed to the loop, and where to say whether it was taken.
struct Arrival {
    instance: Box<Instance>,
    mail: Mailbox<Input>,
    initial: Priority,
    /// Dropped when the instance has stopped.
    done: oneshot::Sender<()>,
    admitted: oneshot::Sender<io::Result<()>>,
}

/// The running loop's mailbox; the thread starts with the first instance.
static LOOP: Mutex<Option<Postbox<Arrival>>> = Mutex::new(None);

/// Hands `instance` to the VRRP thread (starting it if this is the first), which runs it until
/// it stops; `done` is dropped then. Returns the postbox for [`bridge`].
pub async fn admit(
    instance: Instance,
    initial: Priority,
    done: oneshot::Sender<()>,
) -> io::Result<Postbox<Input>> {
    let (post, mail) = mailbox()?;
    let (admitted, answer) = oneshot::channel();
    let arrival = Arrival {
        instance: Box::new(instance),
        mail,
        initial,
        done,
        admitted,
    };
    hand_over(arrival)?;
    match answer.await {
        Ok(Ok(())) => Ok(post),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(
            "the VRRP thread ended before taking the instance",
        )),
    }
}

/// Posts `arrival` to the running loop, or to a new one if there is none.
fn hand_over(arrival: Arrival) -> io::Result<()> {
    let mut running = LOOP
        .lock()
        .map_err(|_| io::Error::other("the VRRP thread's registry is poisoned"))?;
    let arrival = match running.as_ref() {
        Some(loop_post) => match loop_post.post(arrival) {
            Ok(()) => return Ok(()),
            // The thread is gone (it cannot end while the registry holds its postbox, short
            // of a failure as it started): start another.
            Err(back) => back,
        },
        None => arrival,
    };
    let (loop_post, arrivals) = mailbox()?;
    let event_loop = EventLoop::new(arrivals)?;
    std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || event_loop.run())?;
    loop_post
        .post(arrival)
        .map_err(|_| io::Error::other("the VRRP thread ended as it started"))?;
    *running = Some(loop_post);
    Ok(())
}

/// One instance in the loop.
struct Slot {
    instance: Box<Instance>,
    mail: Mailbox<Input>,
    mail_closed: bool,
    /// Reported readable by the last wait and not emptied yet.
    mail_ready: bool,
    socket_ready: bool,
    /// After a receive error the socket is out of the set until then.
    paused_until: Option<Instant>,
    _done: oneshot::Sender<()>,
}

struct EventLoop {
    poller: Poller,
    arrivals: Mailbox<Arrival>,
    arrivals_ready: bool,
    slots: Vec<Option<Slot>>,
    /// Every advert is received into this one (the largest VRRP payload).
    buf: Vec<u8>,
}

fn mail_token(i: usize) -> u64 {
    2 + 2 * i as u64
}

fn socket_token(i: usize) -> u64 {
    3 + 2 * i as u64
}

impl EventLoop {
    fn new(arrivals: Mailbox<Arrival>) -> io::Result<Self> {
        let poller = Poller::new()?;
        poller.add(arrivals.as_fd(), ARRIVALS)?;
        Ok(EventLoop {
            poller,
            arrivals,
            arrivals_ready: false,
            slots: Vec::new(),
            buf: vec![0u8; super::MAX_PAYLOAD],
        })
    }

    /// Runs for the life of the process (the registry keeps the arrivals' postbox).
    fn run(mut self) {
        loop {
            if !self.anything_ready() {
                self.wait();
            }
            // One time for the whole round (see COALESCE).
            let now = Instant::now();
            self.take_arrival(now);
            for i in 0..self.slots.len() {
                self.serve(i, now);
            }
        }
    }

    fn anything_ready(&self) -> bool {
        self.arrivals_ready
            || self
                .slots
                .iter()
                .flatten()
                .any(|s| s.mail_ready || s.socket_ready)
    }

    /// Waits for a descriptor or the nearest deadline (a protocol timer, or the end of a
    /// socket's pause; moved later by up to COALESCE to meet another one) and records what
    /// is readable.
    fn wait(&mut self) {
        let deadlines = || {
            self.slots
                .iter()
                .flatten()
                .filter_map(|s| min_instant(s.instance.router.poll_timeout(), s.paused_until))
        };
        let deadline = deadlines().min().map(|first| {
            deadlines()
                .filter(|d| *d <= first + COALESCE)
                .max()
                .unwrap_or(first)
        });
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let tokens = match self.poller.wait(timeout) {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::error!(
                    "the VRRP thread's wait for events failed: {e}; retrying in 100 ms"
                );
                std::thread::sleep(POLL_ERROR_PAUSE);
                return;
            }
        };
        for token in tokens {
            if token == ARRIVALS {
                self.arrivals_ready = true;
                continue;
            }
            let Some(i) = token.checked_sub(2).map(|t| (t / 2) as usize) else {
                continue;
            };
            if let Some(Some(slot)) = self.slots.get_mut(i) {
                if token % 2 == 0 {
                    slot.mail_ready = true;
                } else {
                    slot.socket_ready = true;
                }
            }
        }
    }

    /// Takes one new instance, registers it and starts its router.
    fn take_arrival(&mut self, now: Instant) {
        if !self.arrivals_ready {
            return;
        }
        let arrival = match self.arrivals.take() {
            Mail::Message(a) => a,
            Mail::Empty | Mail::Closed => {
                self.arrivals_ready = false;
                return;
            }
        };
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let registered = self
            .poller
            .add(arrival.mail.as_fd(), mail_token(i))
            .and_then(|()| {
                self.poller
                    .add(arrival.instance.socket.as_fd(), socket_token(i))
                    .inspect_err(|_| {
                        let _ = self.poller.remove(arrival.mail.as_fd());
                    })
            });
        if let Err(e) = registered {
            let _ = arrival.admitted.send(Err(e));
            return;
        }
        let _ = arrival.admitted.send(Ok(()));
        let mut instance = arrival.instance;
        instance.begin(now, arrival.initial);
        self.slots[i] = Some(Slot {
            instance,
            mail: arrival.mail,
            mail_closed: false,
            mail_ready: false,
            socket_ready: false,
            paused_until: None,
            _done: arrival.done,
        });
    }

    /// Gives instance `i` one item, if it has one, and removes it once it has stopped.
    fn serve(&mut self, i: usize, now: Instant) {
        let Some(Some(slot)) = self.slots.get_mut(i) else {
            return;
        };
        if slot.paused_until.is_some_and(|t| now >= t) {
            slot.paused_until = None;
            if let Err(e) = self
                .poller
                .add(slot.instance.socket.as_fd(), socket_token(i))
            {
                tracing::error!(instance = %slot.instance.config.name, "cannot watch the VRRP socket again: {e}");
                slot.paused_until = Some(now + RECV_ERROR_PAUSE);
            }
        }
        let deadline = slot.instance.router.poll_timeout();
        let wake = if deadline.is_some_and(|d| now >= d) {
            Some(Wake::Deadline)
        } else {
            slot.take_one(&mut self.buf)
        };
        let Some(wake) = wake else {
            return;
        };
        if matches!(wake, Wake::Closed) {
            // Nothing more can come, and a closed mailbox's bell stays readable.
            let _ = self.poller.remove(slot.mail.as_fd());
        }
        if slot.instance.on_wake(now, wake, deadline, &self.buf) {
            // Receiving failed: the socket sits out a pause (level-triggered, a lasting
            // error would otherwise come back on every wait).
            slot.socket_ready = false;
            slot.paused_until = Some(now + RECV_ERROR_PAUSE);
            let _ = self.poller.remove(slot.instance.socket.as_fd());
        }
        slot.instance.drain(now);
        if slot.instance.router.is_stopped() && slot.instance.stopped() {
            tracing::info!(instance = %slot.instance.config.name, "instance stopped");
            let _ = self.poller.remove(slot.mail.as_fd());
            if slot.paused_until.is_none() {
                let _ = self.poller.remove(slot.instance.socket.as_fd());
            }
            self.slots[i] = None;
        }
    }
}

impl Slot {
    /// The next message or packet, in that order.
    fn take_one(&mut self, buf: &mut [u8]) -> Option<Wake> {
        if self.mail_ready {
            match self.mail.take() {
                // More may be queued: ready until the mailbox is empty.
                Mail::Message(Input::Command(c)) => return Some(Wake::Command(c)),
                Mail::Message(Input::Address(e)) => return Some(Wake::Address(e)),
                Mail::Empty => self.mail_ready = false,
                Mail::Closed => {
                    self.mail_ready = false;
                    if !self.mail_closed {
                        self.mail_closed = true;
                        return Some(Wake::Closed);
                    }
                }
            }
        }
        if self.socket_ready {
            match self.instance.socket.try_recv(buf) {
                Ok(Some(packet)) => return Some(Wake::Packet(Ok(packet))),
                Ok(None) => self.socket_ready = false,
                Err(e) => return Some(Wake::Packet(Err(e))),
            }
        }
        None
    }
}

fn min_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Forwards the daemon's commands and the address watch to an instance's mailbox. Ends when
/// the daemon drops the command queue (the instance then resigns) or the instance is gone.
pub async fn bridge(
    mut commands: mpsc::Receiver<Command>,
    mut addresses: Option<mpsc::Receiver<AddressEvent>>,
    post: Postbox<Input>,
) {
    enum Got {
        Command(Option<Command>),
        Address(Option<AddressEvent>),
    }
    loop {
        let got = tokio::select! {
            c = commands.recv() => Got::Command(c),
            e = async {
                match addresses.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Got::Address(e),
        };
        let input = match got {
            Got::Command(Some(c)) => Input::Command(c),
            Got::Command(None) => return,
            Got::Address(Some(e)) => Input::Address(e),
            Got::Address(None) => {
                addresses = None;
                continue;
            }
        };
        if post.post(input).is_err() {
            return;
        }
    }
}
