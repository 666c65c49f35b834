//! The RLC decoder on arbitrary words: it must return values or an error, never panic, never
//! produce more values than asked, and anything it accepts must re-encode to a stream that
//! decodes to the same values.
//!
//! `cd crates/datapath/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run rlc_decode` (cargo-fuzz wants
//! nightly; RUSTC_BOOTSTRAP lets the stable compiler take its -Z flags).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rowsim_datapath::rlc::{decode, encode, RlcFormat};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let expected = u16::from_le_bytes([data[0], data[1]]) as usize % 2048;
    let fmt = match data[2] % 3 {
        0 => RlcFormat::EYERISS,
        1 => RlcFormat::new(3, 16, 2, 64).unwrap(),
        _ => RlcFormat::new(2, 16, 1, 19).unwrap(),
    };
    let words: Vec<u64> = data[3..]
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    if let Ok(values) = decode(&fmt, &words, expected) {
        assert_eq!(values.len(), expected);
        assert_eq!(decode(&fmt, &encode(&fmt, &values), expected).unwrap(), values);
    }
});
