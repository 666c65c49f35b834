//! The zero-mask decoder of compressed filter rows on arbitrary words: it must return a row or
//! an error, never panic, never hold more nonzeros than the spad's entries, and anything it
//! accepts must re-encode to exactly the words it took.
//!
//! `cd crates/datapath/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run zmask_decode`
#![no_main]

use libfuzzer_sys::fuzz_target;
use rowsim_datapath::zmask::{decode_row, encode_row};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let len = u16::from_le_bytes([data[0], data[1]]) as usize % 1024;
    let entries = data[2] as u64;
    let words: Vec<i16> = data[3..]
        .chunks(2)
        .map(|c| i16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    if let Ok((row, used)) = decode_row(&words, len, entries) {
        assert_eq!(row.len(), len);
        assert!(row.iter().filter(|&&v| v != 0).count() as u64 <= entries);
        let mut again = Vec::new();
        assert_eq!(encode_row(&row, &mut again), used);
        assert_eq!(&again[..], &words[..used]);
    }
});
