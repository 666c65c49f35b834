//! Run-length coding of feature maps, as they cross the DRAM bus.
//!
//! A stream of 16-bit values becomes (run, level) pairs: `run` zeros (up to `2^run_bits - 1`)
//! followed by the value `level`. Pairs are packed `pairs_per_word` to a bus word, and the top bit
//! of each word flags the last word of a stream. On Eyeriss: 5-bit runs, 16-bit levels, 3 pairs,
//! 64-bit words (3 x 21 + 1 = 64).
//!
//! # Bit layout (bit 0 = least significant)
//! Pair `i` occupies bits `[i*(R+L), (i+1)*(R+L))`: its run in the low `R` bits, its level in the
//! next `L`. The last-word flag is bit `word_bits - 1`; bits between the last pair and the flag
//! (none on Eyeriss) are zero. With R = 5, L = 16:
//!
//! ```text
//!  63  62..47   46..42  41..26   25..21  20..5    4..0
//! last level2   run2    level1   run1    level0   run0
//! ```
//!
//! # Worked example
//! `[0, 0, 5, 0, -1, 7]` is the pairs (2, 5), (1, -1), (0, 7): one word, the last:
//! `2 | 5 << 5 | 1 << 21 | 0xFFFF << 26 | 0 << 42 | 7 << 47 | 1 << 63 = 0x8003_83FF_FC20_00A2`.
//!
//! # Runs, ends and padding
//! - A run longer than the longest `run` field is split: `(max, 0)` stands for `max + 1` zeros
//!   (the level is itself a zero).
//! - Trailing zeros end with `(r - 1, 0)` for the last `r` of them.
//! - Unused pairs of the last word are `(0, 0)` padding. A decoder tells padding from a real
//!   trailing zero by the number of values, which the hardware knows from the layer's shape (it
//!   is in the configuration); so decoding takes the expected count.
//! - An empty stream is one word: all padding, with the last flag.

use bitvec::prelude::*;

/// The coded-word format (from the hw-config's `[rlc]` table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RlcFormat {
    pub run_bits: u32,
    pub level_bits: u32,
    pub pairs_per_word: u32,
    pub word_bits: u32,
}

impl RlcFormat {
    /// Eyeriss v1's format.
    pub const EYERISS: RlcFormat = RlcFormat {
        run_bits: 5,
        level_bits: 16,
        pairs_per_word: 3,
        word_bits: 64,
    };

    /// Checks that the pairs and the flag fit the word and the level holds a 16-bit value.
    pub fn new(
        run_bits: u32,
        level_bits: u32,
        pairs_per_word: u32,
        word_bits: u32,
    ) -> Result<Self, String> {
        let used = pairs_per_word as u64 * (run_bits + level_bits) as u64 + 1;
        if !(1..=16).contains(&run_bits)
            || level_bits != 16
            || pairs_per_word == 0
            || !(2..=64).contains(&word_bits)
            || used > word_bits as u64
        {
            return Err(format!(
                "RLC format: {pairs_per_word} pairs of {run_bits}-bit runs and {level_bits}-bit levels plus a flag \
                 need {used} bits; the word has {word_bits} (runs 1..=16 bits, levels 16 bits, words <= 64 bits)"
            ));
        }
        Ok(RlcFormat {
            run_bits,
            level_bits,
            pairs_per_word,
            word_bits,
        })
    }

    /// The longest run one pair can carry.
    pub fn max_run(&self) -> u32 {
        (1u32 << self.run_bits) - 1
    }

    fn pair_bits(&self) -> usize {
        (self.run_bits + self.level_bits) as usize
    }

    fn flag_bit(&self) -> usize {
        self.word_bits as usize - 1
    }
}

/// Where and why a coded stream cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RlcError {
    #[error("RLC stream ends after {words} words without the last-word flag ({decoded} of {expected} values decoded)")]
    Truncated {
        words: usize,
        decoded: usize,
        expected: usize,
    },
    #[error("RLC word {word} has the last-word flag but only {decoded} of {expected} values are decoded")]
    EndedEarly {
        word: usize,
        decoded: usize,
        expected: usize,
    },
    #[error("RLC word {word}, pair {pair}: run {run} and level reach value {reach}, past the {expected} values of the stream")]
    Overrun {
        word: usize,
        pair: usize,
        run: u32,
        reach: usize,
        expected: usize,
    },
    #[error("RLC word {word}, pair {pair}: padding after the last value must be (0, 0), found ({run}, {level})")]
    BadPadding {
        word: usize,
        pair: usize,
        run: u32,
        level: i16,
    },
    #[error(
        "RLC word {word}: all {expected} values are decoded but the word has no last-word flag"
    )]
    MissingFlag { word: usize, expected: usize },
    #[error("RLC word {word}: unused bits {lo}..{hi} must be zero, found {value:#x}")]
    ReservedBits {
        word: usize,
        lo: usize,
        hi: usize,
        value: u64,
    },
    #[error("RLC word {word} follows the last word of the stream")]
    AfterLast { word: usize },
}

fn pack(fmt: &RlcFormat, pairs: &[(u32, i16)], last: bool) -> u64 {
    let mut w = 0u64;
    let bits = w.view_bits_mut::<Lsb0>();
    let pb = fmt.pair_bits();
    let r = fmt.run_bits as usize;
    for (i, &(run, level)) in pairs.iter().enumerate() {
        bits[i * pb..i * pb + r].store_le(run);
        bits[i * pb + r..(i + 1) * pb].store_le(level as u16);
    }
    bits.set(fmt.flag_bit(), last);
    w
}

/// One value of a stream into the pending run of zeros `run` (at most `max`): the pair it
/// completes, if any.
#[inline]
fn next_pair(run: &mut u32, max: u32, v: i16) -> Option<(u32, i16)> {
    if v == 0 {
        if *run == max {
            *run = 0;
            return Some((max, 0)); // max zeros, then this zero as the level
        }
        *run += 1;
        None
    } else {
        let pair = (*run, v);
        *run = 0;
        Some(pair)
    }
}

/// The (run, level) pairs of a stream, in order, before packing.
fn pairs(fmt: &RlcFormat, values: &[i16], mut emit: impl FnMut(u32, i16)) {
    let max = fmt.max_run();
    let mut run = 0u32;
    for &v in values {
        if let Some((r, l)) = next_pair(&mut run, max, v) {
            emit(r, l);
        }
    }
    if run > 0 {
        emit(run - 1, 0);
    }
}

/// Number of words `values` code to, without coding them.
pub fn encoded_len(fmt: &RlcFormat, values: &[i16]) -> usize {
    let mut n = PairCount::new(fmt);
    values.iter().for_each(|&v| n.push(v));
    n.words()
}

/// The words a stream codes to, counted as its values come one at a time (a stream that is
/// never held in memory): what [`encoded_len`] says of all of them.
#[derive(Clone, Copy, Debug)]
pub struct PairCount {
    max: u32,
    per_word: usize,
    run: u32,
    pairs: usize,
}

impl PairCount {
    pub fn new(fmt: &RlcFormat) -> Self {
        PairCount {
            max: fmt.max_run(),
            per_word: fmt.pairs_per_word as usize,
            run: 0,
            pairs: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, v: i16) {
        if next_pair(&mut self.run, self.max, v).is_some() {
            self.pairs += 1;
        }
    }

    /// [`PairCount::push`] of each of `values`, in order (a run with no zero in it is a pair
    /// each, counted at once).
    #[inline]
    pub fn push_all(&mut self, values: &[i16]) {
        if values.iter().all(|&v| v != 0) {
            if !values.is_empty() {
                self.pairs += values.len();
                self.run = 0;
            }
            return;
        }
        values.iter().for_each(|&v| self.push(v));
    }

    /// Words of the stream so far, as if it ended here (at least one).
    pub fn words(&self) -> usize {
        let pairs = self.pairs + usize::from(self.run > 0);
        pairs.div_ceil(self.per_word).max(1)
    }
}

/// Codes a stream; the last word carries the flag.
pub fn encode(fmt: &RlcFormat, values: &[i16]) -> Vec<u64> {
    let per = fmt.pairs_per_word as usize;
    let mut out = Vec::with_capacity(encoded_len(fmt, values));
    let mut buf: Vec<(u32, i16)> = Vec::with_capacity(per);
    pairs(fmt, values, |run, level| {
        buf.push((run, level));
        if buf.len() == per {
            out.push(pack(fmt, &buf, false));
            buf.clear();
        }
    });
    if !buf.is_empty() || out.is_empty() {
        out.push(pack(fmt, &buf, true));
    } else if let Some(w) = out.last_mut() {
        w.view_bits_mut::<Lsb0>().set(fmt.flag_bit(), true);
    }
    out
}

/// Decodes a stream word by word, as the DRAM controller's decoder does.
#[derive(Clone, Debug)]
pub struct RlcDecoder {
    fmt: RlcFormat,
    expected: usize,
    decoded: usize,
    words: usize,
    last_seen: Option<usize>,
}

impl RlcDecoder {
    /// A decoder for a stream of `expected` values.
    pub fn new(fmt: RlcFormat, expected: usize) -> Self {
        RlcDecoder {
            fmt,
            expected,
            decoded: 0,
            words: 0,
            last_seen: None,
        }
    }

    /// Values decoded so far.
    pub fn decoded(&self) -> usize {
        self.decoded
    }

    /// Whether the last word has been decoded.
    pub fn done(&self) -> bool {
        self.last_seen.is_some()
    }

    /// Decodes one word, handing each value to `out`.
    pub fn push(&mut self, word: u64, mut out: impl FnMut(i16)) -> Result<(), RlcError> {
        let index = self.words;
        self.words += 1;
        if self.last_seen.is_some() {
            return Err(RlcError::AfterLast { word: index });
        }
        let fmt = self.fmt;
        let bits = word.view_bits::<Lsb0>();
        let pb = fmt.pair_bits();
        let r = fmt.run_bits as usize;
        let used = fmt.pairs_per_word as usize * pb;
        let flag = fmt.flag_bit();
        if used < flag {
            let value: u64 = bits[used..flag].load_le();
            if value != 0 {
                return Err(RlcError::ReservedBits {
                    word: index,
                    lo: used,
                    hi: flag,
                    value,
                });
            }
        }
        let last = bits[flag];
        for pair in 0..fmt.pairs_per_word as usize {
            let run: u32 = bits[pair * pb..pair * pb + r].load_le();
            let level = bits[pair * pb + r..(pair + 1) * pb].load_le::<u16>() as i16;
            if self.decoded == self.expected {
                if !last {
                    return Err(RlcError::MissingFlag {
                        word: index,
                        expected: self.expected,
                    });
                }
                if run != 0 || level != 0 {
                    return Err(RlcError::BadPadding {
                        word: index,
                        pair,
                        run,
                        level,
                    });
                }
                continue;
            }
            let reach = self.decoded + run as usize + 1;
            if reach > self.expected {
                return Err(RlcError::Overrun {
                    word: index,
                    pair,
                    run,
                    reach,
                    expected: self.expected,
                });
            }
            for _ in 0..run {
                out(0);
            }
            out(level);
            self.decoded = reach;
        }
        if last {
            if self.decoded < self.expected {
                return Err(RlcError::EndedEarly {
                    word: index,
                    decoded: self.decoded,
                    expected: self.expected,
                });
            }
            self.last_seen = Some(index);
        }
        Ok(())
    }

    /// After the input ended: an error unless the last word was seen.
    pub fn finish(&self) -> Result<(), RlcError> {
        if self.last_seen.is_none() {
            return Err(RlcError::Truncated {
                words: self.words,
                decoded: self.decoded,
                expected: self.expected,
            });
        }
        Ok(())
    }
}

/// Decodes a whole stream of `expected` values.
pub fn decode(fmt: &RlcFormat, words: &[u64], expected: usize) -> Result<Vec<i16>, RlcError> {
    let mut out = Vec::with_capacity(expected);
    let mut d = RlcDecoder::new(*fmt, expected);
    for &w in words {
        d.push(w, |v| out.push(v))?;
    }
    d.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: RlcFormat = RlcFormat::EYERISS;

    #[test]
    fn the_worked_example() {
        let words = encode(&F, &[0, 0, 5, 0, -1, 7]);
        assert_eq!(words, vec![0x8003_83FF_FC20_00A2]);
        assert_eq!(
            words[0],
            2 | 5 << 5 | 1 << 21 | 0xFFFF << 26 | 7 << 47 | 1 << 63
        );
        assert_eq!(decode(&F, &words, 6).unwrap(), vec![0, 0, 5, 0, -1, 7]);
    }

    #[test]
    fn long_runs_trailing_zeros_and_empty_streams() {
        // 40 zeros then 9: (31, 0) covers 32 zeros, (8, 9) the other 8 and the 9.
        let mut v = vec![0i16; 40];
        v.push(9);
        let w = encode(&F, &v);
        assert_eq!(w, vec![pack(&F, &[(31, 0), (8, 9)], true)]);
        // 5 trailing zeros: (4, 0).
        assert_eq!(
            encode(&F, &[3, 0, 0, 0, 0, 0]),
            vec![pack(&F, &[(0, 3), (4, 0)], true)]
        );
        assert_eq!(encode(&F, &[]), vec![1u64 << 63]);
        assert_eq!(decode(&F, &[1u64 << 63], 0).unwrap(), Vec::<i16>::new());
        // Exactly three pairs: the flag goes on that word, no empty word after it.
        assert_eq!(encode(&F, &[1, 2, 3]).len(), 1);
        assert_eq!(encode(&F, &[1, 2, 3, 4]).len(), 2);
    }

    #[test]
    fn broken_streams_say_where() {
        let words = encode(&F, &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(words.len(), 3);
        assert_eq!(
            decode(&F, &words[..2], 7),
            Err(RlcError::Truncated {
                words: 2,
                decoded: 6,
                expected: 7
            })
        );
        // Expecting more values, the two padding pairs read as zeros, and still fall short.
        assert_eq!(
            decode(&F, &words, 10),
            Err(RlcError::EndedEarly {
                word: 2,
                decoded: 9,
                expected: 10
            })
        );
        assert_eq!(
            decode(&F, &words, 5),
            Err(RlcError::MissingFlag {
                word: 1,
                expected: 5
            })
        );
        let e = decode(&F, &encode(&F, &[0, 0, 0, 5]), 3).unwrap_err();
        assert_eq!(
            e,
            RlcError::Overrun {
                word: 0,
                pair: 0,
                run: 3,
                reach: 4,
                expected: 3
            }
        );
        let mut bad = words.clone();
        bad[2] |= 1 << 22; // run 2 in the padding pair 1 (its run field is bits 21..26)
        assert!(matches!(
            decode(&F, &bad, 7),
            Err(RlcError::BadPadding {
                word: 2,
                pair: 1,
                run: 2,
                level: 0
            })
        ));
        let e = decode(&F, &[words[0], words[1], words[2], words[2]], 7).unwrap_err();
        assert_eq!(e, RlcError::AfterLast { word: 3 });
        assert!(e.to_string().contains("word 3"));
    }
}
