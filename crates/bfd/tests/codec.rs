//! The Control packet codec against real captures of FRR's bfdd 8.4.4 (tests/vectors/bfd/),
//! one negative test per RFC 5880 section 6.8.6 reception check, and properties.

use std::net::IpAddr;
use std::path::PathBuf;

use proptest::prelude::*;
use vipd_bfd::packet::{
    field, is_valid_source_port, AuthHeader, CONTROL_PORT, REQUIRED_TTL, SOURCE_PORT_MAX,
    SOURCE_PORT_MIN,
};
use vipd_bfd::{drop_reason, ControlPacket, Diagnostic, EmitError, ParseError, Repr, State};

/// One fixture: the UDP payload plus the header lines the capture script writes.
struct Vector {
    bytes: Vec<u8>,
    src: IpAddr,
    sport: u16,
    dport: u16,
    ttl: u8,
}

fn vector(name: &str) -> Vector {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "vectors",
        "bfd",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut header = std::collections::HashMap::new();
    let mut hex = String::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            if let Some((k, v)) = comment.trim().split_once(": ") {
                header.insert(k.to_string(), v.trim().to_string());
            }
        } else {
            hex.push_str(line.trim());
        }
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    Vector {
        bytes,
        src: header["src"].parse().unwrap(),
        sport: header["sport"].parse().unwrap(),
        dport: header["dport"].parse().unwrap(),
        ttl: header["ttl"].parse().unwrap(),
    }
}

fn emit(repr: &Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf).unwrap(), buf.len());
    buf
}

/// Parses a vector, checks it re-emits to the identical bytes, and returns it.
fn decode(name: &str) -> Repr {
    let v = vector(name);
    let repr = Repr::parse(&v.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(emit(&repr), v.bytes, "{name} re-emitted");
    repr
}

const FRR_A4: u32 = 0x6379_a578;
const FRR_B4: u32 = 0xcf8f_51ca;
const FRR_A6: u32 = 0xed6e_f389;
const FRR_B6: u32 = 0x428c_91bd;

fn frr(state: State, my: u32, your: u32, tx: u32, rx: u32) -> Repr {
    Repr {
        diag: Diagnostic::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: my,
        your_discriminator: your,
        desired_min_tx_us: tx,
        required_min_rx_us: rx,
        required_min_echo_rx_us: 50_000,
        auth: None,
    }
}

// ---- FRR vectors: RFC 5880 section 4.1 layout, section 6.2 handshake, 6.5 Poll/Final ----

#[test]
fn rfc5880_4_1_frr_down_before_hearing_the_peer_has_your_discriminator_zero_and_slow_timers() {
    // Section 6.8.3: 1 s while not Up; section 6.8.7: Your Discriminator = bfd.RemoteDiscr = 0.
    assert_eq!(
        decode("frr-8.4.4-ipv4-down.hex"),
        frr(State::Down, FRR_A4, 0, 1_000_000, 1_000_000)
    );
    assert_eq!(
        decode("frr-8.4.4-ipv6-down.hex"),
        frr(State::Down, FRR_A6, 0, 1_000_000, 1_000_000)
    );
}

#[test]
fn rfc5880_6_2_frr_init_reflects_the_peer_discriminator() {
    assert_eq!(
        decode("frr-8.4.4-ipv4-init.hex"),
        frr(State::Init, FRR_B4, FRR_A4, 1_000_000, 1_000_000)
    );
    assert_eq!(
        decode("frr-8.4.4-ipv6-init.hex"),
        frr(State::Init, FRR_B6, FRR_A6, 1_000_000, 1_000_000)
    );
}

#[test]
fn rfc5880_6_8_3_frr_polls_when_going_up_changes_its_intervals_from_the_slow_rate() {
    let poll = Repr {
        poll: true,
        ..frr(State::Up, FRR_A4, FRR_B4, 300_000, 300_000)
    };
    assert_eq!(decode("frr-8.4.4-ipv4-up-poll-tx300ms.hex"), poll);
    let poll6 = Repr {
        poll: true,
        ..frr(State::Up, FRR_A6, FRR_B6, 300_000, 300_000)
    };
    assert_eq!(decode("frr-8.4.4-ipv6-up-poll-tx300ms.hex"), poll6);
}

#[test]
fn rfc5880_6_5_frr_timer_change_is_a_poll_with_the_new_values_answered_by_final() {
    let poll = decode("frr-8.4.4-ipv4-up-poll-tx200ms.hex");
    assert_eq!(
        poll,
        Repr {
            poll: true,
            ..frr(State::Up, FRR_A4, FRR_B4, 200_000, 250_000)
        }
    );
    let fin = decode("frr-8.4.4-ipv4-up-final.hex");
    assert!(fin.final_ && !fin.poll);
    assert_eq!(fin.state, State::Up);
    let poll6 = decode("frr-8.4.4-ipv6-up-poll-tx200ms.hex");
    assert_eq!(
        (
            poll6.poll,
            poll6.desired_min_tx_us,
            poll6.required_min_rx_us
        ),
        (true, 200_000, 250_000)
    );
    let fin6 = decode("frr-8.4.4-ipv6-up-final.hex");
    assert!(fin6.final_ && !fin6.poll);
}

#[test]
fn rfc5880_4_1_frr_up_packets_carry_no_flags() {
    for name in ["frr-8.4.4-ipv4-up.hex", "frr-8.4.4-ipv6-up.hex"] {
        let up = decode(name);
        assert_eq!(up.state, State::Up);
        assert!(!up.poll && !up.final_ && !up.demand && up.auth.is_none());
    }
}

#[test]
fn rfc5880_6_8_16_frr_admin_down_and_the_neighbor_signaled_down_reply() {
    let admin = decode("frr-8.4.4-ipv4-admin-down.hex");
    assert_eq!(admin.state, State::AdminDown);
    // FRR 8.4.4 sends AdminDown with diag 0 (the RFC suggests 7); either is valid on receipt.
    assert_eq!(admin.diag, Diagnostic::None);
    let down = decode("frr-8.4.4-ipv4-down-diag3.hex");
    assert_eq!(
        (down.state, down.diag, down.your_discriminator),
        (State::Down, Diagnostic::NeighborSignaledSessionDown, 0)
    );
}

#[test]
fn rfc5880_6_8_4_frr_detection_timeout_is_down_with_diag_1() {
    let down = decode("frr-8.4.4-ipv6-down-diag1.hex");
    assert_eq!(
        (down.state, down.diag, down.your_discriminator),
        (State::Down, Diagnostic::ControlDetectionTimeExpired, 0)
    );
}

#[test]
fn rfc5881_4_and_5_frr_sends_to_3784_from_the_dynamic_range_with_ttl_255() {
    for name in [
        "frr-8.4.4-ipv4-down.hex",
        "frr-8.4.4-ipv4-up.hex",
        "frr-8.4.4-ipv6-down.hex",
        "frr-8.4.4-ipv6-up.hex",
    ] {
        let v = vector(name);
        assert_eq!(v.dport, CONTROL_PORT, "{name}");
        assert!(is_valid_source_port(v.sport), "{name}: {}", v.sport);
        assert_eq!(v.ttl, REQUIRED_TTL, "{name}");
        assert_eq!(v.src.is_ipv4(), name.contains("ipv4"), "{name}");
    }
    assert_eq!(
        (CONTROL_PORT, SOURCE_PORT_MIN, SOURCE_PORT_MAX),
        (3784, 49152, 65535)
    );
    assert!(!is_valid_source_port(49151) && !is_valid_source_port(3784));
}

#[test]
fn rfc5880_4_1_view_reads_every_field_at_its_offset() {
    let v = vector("frr-8.4.4-ipv4-up-poll-tx200ms.hex");
    let p = ControlPacket::new_checked(&v.bytes[..]).unwrap();
    assert_eq!(p.version(), 1);
    assert_eq!(p.state(), State::Up);
    assert!(p.poll() && !p.final_() && !p.multipoint() && !p.auth_present());
    assert_eq!(p.detect_mult(), 3);
    assert_eq!(usize::from(p.length()), field::HEADER_LEN);
    assert_eq!(p.my_discriminator(), FRR_A4);
    assert_eq!(p.your_discriminator(), FRR_B4);
    assert_eq!(p.desired_min_tx(), 200_000);
    assert_eq!(p.required_min_rx(), 250_000);
    assert_eq!(p.required_min_echo_rx(), 50_000);
}

// ---- RFC 5880 section 6.8.6 reception checks, in order -------------------------------

fn up_bytes() -> Vec<u8> {
    vector("frr-8.4.4-ipv4-up.hex").bytes
}

fn refused(bytes: &[u8]) -> ParseError {
    Repr::parse(bytes).unwrap_err()
}

#[test]
fn rfc5880_6_8_6_version_other_than_1_is_bad_version() {
    let mut b = up_bytes();
    b[field::VERS_DIAG] = (2 << 5) | (b[0] & 0x1F);
    assert_eq!(refused(&b), ParseError::BadVersion(2));
    assert_eq!(refused(&b).drop_reason(), drop_reason::BAD_VERSION);
    // Version is checked before length: a 3-byte packet of version 0 is bad_version.
    assert_eq!(refused(&[0x00, 0xc0, 3]), ParseError::BadVersion(0));
}

#[test]
fn rfc5880_6_8_6_short_payload_and_short_length_are_bad_length() {
    let b = up_bytes();
    assert_eq!(refused(&[]), ParseError::Empty);
    assert_eq!(refused(&b[..23]), ParseError::Truncated { len: 23 });
    let mut short = b.clone();
    short[field::LENGTH] = 23;
    assert_eq!(
        refused(&short),
        ParseError::LengthTooShort {
            length: 23,
            min: 24
        }
    );
    for e in [refused(&[]), refused(&b[..23]), refused(&short)] {
        assert_eq!(e.drop_reason(), drop_reason::BAD_LENGTH);
    }
}

#[test]
fn rfc5880_6_8_6_length_beyond_the_udp_payload_is_bad_length() {
    let mut b = up_bytes();
    b[field::LENGTH] = 25;
    assert_eq!(
        refused(&b),
        ParseError::LengthExceedsPayload {
            length: 25,
            payload: 24
        }
    );
}

#[test]
fn rfc5880_6_8_6_a_bit_needs_length_26() {
    let mut b = up_bytes();
    b[field::STATE_FLAGS] |= field::flag::AUTH_PRESENT;
    assert_eq!(
        refused(&b),
        ParseError::LengthTooShort {
            length: 24,
            min: 26
        }
    );
}

#[test]
fn rfc5880_6_8_6_well_formed_auth_section_parses_so_the_session_can_count_it() {
    let mut b = up_bytes();
    b[field::STATE_FLAGS] |= field::flag::AUTH_PRESENT;
    b[field::LENGTH] = 24 + 19;
    b.extend_from_slice(&[1, 19]);
    b.extend_from_slice(&[0; 17]);
    let repr = Repr::parse(&b).unwrap();
    assert_eq!(
        repr.auth,
        Some(AuthHeader {
            auth_type: 1,
            auth_len: 19
        })
    );
    assert_eq!(repr.emit(&mut [0; 64]), Err(EmitError::AuthUnsupported));
    // An Auth Len running past Length is bad_length.
    b[field::AUTH_LEN] = 20;
    assert_eq!(
        refused(&b),
        ParseError::BadAuthLength {
            auth_len: 20,
            length: 43,
            max: 19
        }
    );
}

#[test]
fn rfc5880_6_8_6_zero_detect_mult_is_refused() {
    let mut b = up_bytes();
    b[field::DETECT_MULT] = 0;
    assert_eq!(refused(&b), ParseError::ZeroDetectMult);
    assert_eq!(refused(&b).drop_reason(), drop_reason::ZERO_DETECT_MULT);
}

#[test]
fn rfc5880_6_8_6_multipoint_bit_is_refused() {
    let mut b = up_bytes();
    b[field::STATE_FLAGS] |= field::flag::MULTIPOINT;
    assert_eq!(refused(&b), ParseError::Multipoint);
    assert_eq!(refused(&b).drop_reason(), drop_reason::MULTIPOINT);
}

#[test]
fn rfc5880_6_8_6_zero_my_discriminator_is_refused() {
    let mut b = up_bytes();
    b[field::MY_DISCRIMINATOR..field::MY_DISCRIMINATOR + 4].fill(0);
    assert_eq!(refused(&b), ParseError::ZeroMyDiscriminator);
    assert_eq!(
        refused(&b).drop_reason(),
        drop_reason::ZERO_MY_DISCRIMINATOR
    );
}

#[test]
fn rfc5880_6_8_6_zero_your_discriminator_only_in_down_or_admin_down() {
    let mut b = up_bytes();
    b[field::YOUR_DISCRIMINATOR..field::YOUR_DISCRIMINATOR + 4].fill(0);
    assert_eq!(
        refused(&b),
        ParseError::ZeroYourDiscriminator { state: State::Up }
    );
    assert_eq!(
        refused(&b).drop_reason(),
        drop_reason::ZERO_YOUR_DISCRIMINATOR
    );
    b[field::STATE_FLAGS] = State::Init.number() << 6;
    assert_eq!(
        refused(&b),
        ParseError::ZeroYourDiscriminator { state: State::Init }
    );
    b[field::STATE_FLAGS] = State::Down.number() << 6;
    assert!(Repr::parse(&b).is_ok());
    b[field::STATE_FLAGS] = State::AdminDown.number() << 6;
    assert!(Repr::parse(&b).is_ok());
}

#[test]
fn rfc5880_6_8_6_bytes_after_length_are_ignored() {
    let mut b = up_bytes();
    b.extend_from_slice(&[0xAA; 8]);
    assert_eq!(Repr::parse(&b).unwrap(), Repr::parse(&up_bytes()).unwrap());
}

#[test]
fn rfc5880_6_8_7_emit_refuses_poll_and_final_together_and_writes_nothing() {
    let repr = Repr {
        poll: true,
        final_: true,
        ..Repr::parse(&up_bytes()).unwrap()
    };
    let mut buf = [0x55u8; 24];
    assert_eq!(repr.emit(&mut buf), Err(EmitError::PollAndFinal));
    assert_eq!(buf, [0x55; 24]);
}

#[test]
fn emit_refuses_what_parse_would_refuse_and_short_buffers() {
    let good = Repr::parse(&up_bytes()).unwrap();
    let zero_mult = Repr {
        detect_mult: 0,
        ..good
    };
    assert_eq!(
        zero_mult.emit(&mut [0; 24]),
        Err(EmitError::Invalid(ParseError::ZeroDetectMult))
    );
    assert_eq!(
        good.emit(&mut [0; 23]),
        Err(EmitError::BufferTooSmall {
            needed: 24,
            available: 23
        })
    );
    let reserved = Repr {
        diag: Diagnostic::Reserved(40),
        ..good
    };
    assert_eq!(reserved.emit(&mut [0; 24]), Err(EmitError::Diagnostic(40)));
}

// ---- properties ----------------------------------------------------------------------

fn any_state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_number)
}

prop_compose! {
    fn emittable_repr()(
        diag in 0u8..32, state in any_state(), pf in 0u8..3, c: bool, d: bool,
        detect_mult in 1u8.., my in 1u32.., your: u32, tx: u32, rx: u32, echo: u32,
    ) -> Repr {
        let your = if matches!(state, State::Down | State::AdminDown) || your != 0 { your } else { 1 };
        Repr {
            diag: Diagnostic::from_number(diag),
            state,
            poll: pf == 1,
            final_: pf == 2,
            control_plane_independent: c,
            demand: d,
            detect_mult,
            my_discriminator: my,
            your_discriminator: your,
            desired_min_tx_us: tx,
            required_min_rx_us: rx,
            required_min_echo_rx_us: echo,
            auth: None,
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Repr::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_frr_packets(at in 0usize..24, value: u8, extra in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut b = up_bytes();
        b[at] = value;
        b.extend_from_slice(&extra);
        let _ = Repr::parse(&b);
    }

    #[test]
    fn parse_of_emit_is_identity(repr in emittable_repr()) {
        prop_assert_eq!(Repr::parse(&emit(&repr)).unwrap(), repr);
    }
}

/// Found by fuzz/fuzz_targets/bfd_decode.rs (fuzz/regressions/bfd_decode/poll-and-final): RFC
/// 5880 section 6.5 says a system MUST NOT send P and F together, and section 6.8.6 has no check
/// against receiving them, so the packet parses; `emit` refuses to build one.
#[test]
fn rfc5880_6_5_p_and_f_together_parse_on_receipt_but_are_never_emitted() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/bfd_decode/poll-and-final"),
    )
    .unwrap();
    let repr = Repr::parse(&bytes).unwrap();
    assert!(repr.poll && repr.final_);
    let mut buf = [0u8; 64];
    assert_eq!(repr.emit(&mut buf), Err(vipd_bfd::EmitError::PollAndFinal));
}
