//! DNS over TCP: an arbitrary byte stream from a client through the same framing
//! (hickory-net's `TcpStream`, RFC 7766 two-byte length prefix) and per-message handling as
//! `serve_connection`: a message under 12 bytes or with QR=1 closes the connection; otherwise
//! hickory's `Request::from_bytes`, then `answer()` over TCP.
//!
//! Checks: no panic; hickory yields exactly the complete frames of the stream, in order and
//! byte for byte (an independent split of the stream is the oracle); every local response
//! parses with hickory, carries the query's ID and answers the question asked.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use futures_util::StreamExt;
use hickory_server::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_server::net::tcp::TcpStream as DnsTcpStream;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use vipd_dns::answer::{answer, Outcome, Transport, MAX_TCP_SIZE};
use vipd_dns::zone::ClusterZone;

fn zone() -> &'static ClusterZone {
    static ZONE: OnceLock<ClusterZone> = OnceLock::new();
    ZONE.get_or_init(vipd_fuzz::zone)
}

/// The complete frames of `stream` up to the first empty one, split by hand.
fn frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= stream.len() {
        let len = usize::from(u16::from_be_bytes([stream[at], stream[at + 1]]));
        // hickory reads a zero-length frame as the stream closing mid-message: the
        // connection ends there (serve_connection closes it on the error).
        let Some(frame) = stream.get(at + 2..at + 2 + len).filter(|_| len > 0) else {
            break;
        };
        out.push(frame);
        at += 2 + len;
    }
    out
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
}

fuzz_target!(|data: &[u8]| {
    let peer: SocketAddr = "192.0.2.99:40000".parse().unwrap();
    let received: Vec<Vec<u8>> = RUNTIME.with(|rt| {
        rt.block_on(async {
            let (mut client, server) = tokio::io::duplex(data.len() + 16);
            client.write_all(data).await.unwrap();
            drop(client);
            let (mut messages, _sender) =
                DnsTcpStream::from_stream_with_buffer_size(AsyncIoTokioAsStd(server), peer, 2);
            let mut received = Vec::new();
            while let Some(Ok(message)) = messages.next().await {
                received.push(message.into_parts().0);
            }
            received
        })
    });
    let expected = frames(data);
    assert_eq!(
        received.len(),
        expected.len(),
        "hickory framed another number of messages"
    );
    for (got, want) in received.iter().zip(&expected) {
        assert_eq!(got.as_slice(), *want, "hickory framed other bytes");
    }

    let mut out = vec![0u8; MAX_TCP_SIZE];
    for bytes in received {
        // serve_connection closes the connection here.
        if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
            break;
        }
        let _ = Request::from_bytes(bytes.clone(), peer, Protocol::Tcp);
        match answer(zone(), &bytes, &mut out, Transport::Tcp, 512) {
            Outcome::Respond(n) => vipd_fuzz::check_reply(zone(), &bytes, &out[..n], MAX_TCP_SIZE),
            Outcome::Forward { .. } => {}
            Outcome::Drop => panic!("a 12-byte query without QR was dropped over TCP"),
        }
    }
});
