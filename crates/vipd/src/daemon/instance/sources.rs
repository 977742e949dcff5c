//! What an instance thread waits on: its socket, its protocol deadline (the wait's timeout),
//! its mailbox; and the tokio task that fills the mailbox.

use std::io;
use std::time::Instant;

use tokio::sync::mpsc;

use super::Command;
use crate::net::netlink::AddressEvent;
use crate::net::poller::{mailbox, Mail, Mailbox, Poller, Postbox};
use crate::net::socket::{ReceivedPacket, VrrpSocket};

const MAIL: u32 = 0;
const SOCKET: u32 = 1;

/// What the daemon posts to an instance thread.
pub enum Input {
    Command(Command),
    Address(AddressEvent),
}

/// What woke the instance thread.
pub enum Wake {
    Packet(io::Result<ReceivedPacket>),
    Deadline,
    Command(Command),
    Address(AddressEvent),
    /// The daemon dropped the instance's command queue (reported once).
    Closed,
    /// `epoll_wait` itself failed.
    PollFailed(io::Error),
}

pub struct Sources {
    poller: Poller,
    mail: Mailbox<Input>,
    mail_closed: bool,
    /// Tokens reported by the last `epoll_wait` and not handled yet. Each source gives one
    /// item per round; what is left is reported again by the next (level-triggered) wait.
    ready: u64,
    /// Every advert is received into this one.
    buf: Vec<u8>,
}

impl Sources {
    /// The poller over `socket` and a mailbox, and the postbox for [`bridge`].
    pub fn open(socket: &VrrpSocket, buffer: usize) -> io::Result<(Postbox<Input>, Self)> {
        let poller = Poller::new()?;
        let (post, mail) = mailbox()?;
        poller.add(mail.as_fd(), MAIL)?;
        poller.add(socket.as_fd(), SOCKET)?;
        Ok((
            post,
            Sources {
                poller,
                mail,
                mail_closed: false,
                ready: 0,
                buf: vec![0u8; buffer],
            },
        ))
    }

    /// The receive buffer ([`Wake::Packet`]'s payload is at its start).
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// The next thing to handle and the time it was found, waiting for one if nothing is
    /// pending. Fixed order: the protocol deadline once it has passed, the daemon's messages,
    /// then the socket, the one source a stranger on the segment can flood.
    pub fn next(&mut self, socket: &VrrpSocket, deadline: Option<Instant>) -> (Instant, Wake) {
        loop {
            if self.ready == 0 {
                let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                match self.poller.wait(timeout) {
                    Ok(mask) => self.ready = mask,
                    Err(e) => return (Instant::now(), Wake::PollFailed(e)),
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return (now, Wake::Deadline);
            }
            // Nothing ready: a timeout a little early, or a signal; wait again.
            if let Some(wake) = self.take_one(socket) {
                return (now, wake);
            }
        }
    }

    fn take_one(&mut self, socket: &VrrpSocket) -> Option<Wake> {
        if self.ready & (1 << MAIL) != 0 {
            match self.mail.take() {
                // More may be queued: the bit stays until the mailbox is empty.
                Mail::Message(Input::Command(c)) => return Some(Wake::Command(c)),
                Mail::Message(Input::Address(e)) => return Some(Wake::Address(e)),
                Mail::Empty => self.ready &= !(1 << MAIL),
                Mail::Closed => {
                    self.ready &= !(1 << MAIL);
                    if !self.mail_closed {
                        self.mail_closed = true;
                        return Some(Wake::Closed);
                    }
                }
            }
        }
        if self.take_bit(SOCKET) {
            match socket.try_recv(&mut self.buf) {
                Ok(Some(packet)) => return Some(Wake::Packet(Ok(packet))),
                Ok(None) => {}
                Err(e) => return Some(Wake::Packet(Err(e))),
            }
        }
        // Unknown tokens cannot be registered; clear whatever is left.
        self.ready = 0;
        None
    }

    /// Whether `token` was reported, clearing it.
    fn take_bit(&mut self, token: u32) -> bool {
        let bit = 1u64 << token;
        let was = self.ready & bit != 0;
        self.ready &= !bit;
        was
    }
}

/// Forwards the daemon's commands and the address watch to an instance thread's mailbox.
/// Ends when the daemon drops the command queue (the thread then resigns) or the thread is
/// gone.
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
