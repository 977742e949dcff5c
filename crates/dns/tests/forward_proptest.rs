//! Arbitrary bytes from a client or from an upstream never panic the forwarder, and every
//! answer it gives carries the client's ID.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::runtime::Builder;
use tokio::task::JoinHandle;
use vipd_dns::forward::{ClientTransport, Forwarder, ForwarderConfig};

/// How the fake upstream builds its answer from the case's bytes.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The bytes as they are.
    Raw,
    /// The bytes with the query's ID, so they reach the matching code.
    WithId,
    /// The query's ID and question, QR set, then the bytes as header counts and records.
    WithQuestion,
}

fn build_answer(query: &[u8], bytes: &[u8], shape: Shape) -> Vec<u8> {
    match shape {
        Shape::Raw => bytes.to_vec(),
        Shape::WithId => {
            let mut out = bytes.to_vec();
            for (i, b) in query.iter().take(2).enumerate() {
                if let Some(slot) = out.get_mut(i) {
                    *slot = *b;
                }
            }
            out
        }
        Shape::WithQuestion => {
            let mut out = query.to_vec();
            out[2] |= 0x80;
            // Header counts after QDCOUNT from the case, then the rest as record bytes.
            for (i, b) in bytes.iter().take(6).enumerate() {
                out[6 + i] = *b;
            }
            out.truncate(query_question_end(query));
            out.extend_from_slice(bytes.get(6..).unwrap_or(&[]));
            out
        }
    }
}

fn query_question_end(query: &[u8]) -> usize {
    let mut at = 12;
    while query[at] != 0 {
        at += 1 + usize::from(query[at]);
    }
    at + 5
}

/// Answers every UDP and TCP query with `build_answer` of the current case; tasks aborted on drop.
struct Fake {
    addr: SocketAddr,
    case: Arc<Mutex<(Vec<u8>, Shape)>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn fake() -> Fake {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let case = Arc::new(Mutex::new((Vec::new(), Shape::Raw)));
    let udp_case = case.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((len, from)) = udp.recv_from(&mut buf).await {
            let answer = {
                let case = udp_case.lock().unwrap();
                build_answer(&buf[..len], &case.0, case.1)
            };
            let _ = udp.send_to(&answer, from).await;
        }
    });
    let tcp_case = case.clone();
    let tcp_task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            let mut prefix = [0u8; 2];
            if stream.read_exact(&mut prefix).await.is_err() {
                continue;
            }
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
            if stream.read_exact(&mut msg).await.is_err() {
                continue;
            }
            let answer = {
                let case = tcp_case.lock().unwrap();
                build_answer(&msg, &case.0, case.1)
            };
            let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&answer);
            let _ = stream.write_all(&framed).await;
        }
    });
    Fake {
        addr,
        case,
        tasks: vec![udp_task, tcp_task],
    }
}

fn quick_forwarder(upstream: SocketAddr, cache_capacity: usize) -> Forwarder {
    Forwarder::new(ForwarderConfig {
        upstreams: vec![upstream],
        attempt_timeout: Duration::from_millis(20),
        query_deadline: Duration::from_millis(40),
        cache_capacity,
        ..ForwarderConfig::default()
    })
    .unwrap()
}

fn transport(tcp: bool) -> ClientTransport {
    if tcp {
        ClientTransport::Tcp
    } else {
        ClientTransport::Udp { max_response: 512 }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Raw),
        Just(Shape::WithId),
        Just(Shape::WithQuestion)
    ]
}

/// `name.example.com. A IN` query with RD=1 and the given ID.
fn valid_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x04name\x07example\x03com\x00\x00\x01\x00\x01");
    q
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_client_bytes_get_an_answer_with_their_id_or_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        tcp in any::<bool>(),
    ) {
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let upstream = fake().await;
            *upstream.case.lock().unwrap() = (Vec::new(), Shape::WithQuestion);
            let fwd = quick_forwarder(upstream.addr, 16);
            let answer = fwd.forward(&bytes, transport(tcp)).await;
            if !answer.is_empty() {
                prop_assert_eq!(&answer[..2], &bytes[..2]);
            }
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_upstream_bytes_give_the_client_an_answer_with_its_id(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        shape in shape(),
        tcp in any::<bool>(),
        id in any::<u16>(),
    ) {
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let upstream = fake().await;
            *upstream.case.lock().unwrap() = (bytes, shape);
            let fwd = quick_forwarder(upstream.addr, 0);
            let answer = fwd.forward(&valid_query(id), transport(tcp)).await;
            prop_assert_eq!(&answer[..2], &id.to_be_bytes());
            if !tcp {
                prop_assert!(answer.len() <= 512);
            }
            Ok(())
        })?;
    }
}
