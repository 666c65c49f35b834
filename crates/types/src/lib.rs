//! The message types that several of rowsim's blocks share, defined once: the blocks meet only
//! through these (DESIGN.md: no block crate depends on another).
//!
//! - [`DataType`]: what a word is (a filter weight, an ifmap value, a psum), as the GLB's
//!   banks, the DRAM controller's counters and the statistics tell them apart;
//! - [`PerType`]: a count per data type;
//! - [`Beat`]: a tagged beat on a GIN (GLB to PEs); [`GonBeat`]: a beat on the GON (a PE's
//!   psums to the GLB).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a word is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Filter = 0,
    Ifmap = 1,
    Psum = 2,
}

impl DataType {
    pub const ALL: [DataType; 3] = [DataType::Filter, DataType::Ifmap, DataType::Psum];
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Filter => "filter",
            DataType::Ifmap => "ifmap",
            DataType::Psum => "psum",
        })
    }
}

/// Words (or any count) per data type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerType {
    pub filter: u64,
    pub ifmap: u64,
    pub psum: u64,
}

impl PerType {
    pub fn total(&self) -> u64 {
        self.filter + self.ifmap + self.psum
    }

    pub fn plus(&self, o: &PerType) -> PerType {
        PerType {
            filter: self.filter + o.filter,
            ifmap: self.ifmap + o.ifmap,
            psum: self.psum + o.psum,
        }
    }

    pub fn get(&self, t: DataType) -> u64 {
        match t {
            DataType::Filter => self.filter,
            DataType::Ifmap => self.ifmap,
            DataType::Psum => self.psum,
        }
    }
}

/// Most words a beat can carry (a 64-bit bus of 16-bit words).
pub const MAX_BEAT_WORDS: usize = 4;

/// A tagged beat on a GIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Beat {
    pub row: u16,
    pub col: u16,
    pub len: u8,
    pub words: [i16; MAX_BEAT_WORDS],
}

impl Beat {
    /// A beat of up to [`MAX_BEAT_WORDS`] words (more are cut off).
    pub fn new(row: u16, col: u16, words: &[i16]) -> Self {
        let mut w = [0; MAX_BEAT_WORDS];
        let len = words.len().min(MAX_BEAT_WORDS);
        // Word by word over the fixed array (unrolled; a copy of `len` words would be a call
        // to memcpy, in the GLB's readers once a beat).
        for (k, x) in w.iter_mut().enumerate() {
            if k < len {
                *x = words[k];
            }
        }
        Beat {
            row,
            col,
            len: len as u8,
            words: w,
        }
    }

    pub fn words(&self) -> &[i16] {
        &self.words[..self.len as usize]
    }

    /// The words packed into one bus value (word 0 in the low bits), for traces.
    pub fn packed(&self) -> u64 {
        self.words()
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, &w)| acc | (w as u16 as u64) << (16 * i))
    }
}

/// A beat on the GON: up to 4 psums of one PE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GonBeat {
    pub bus: u16,
    pub pe: u16,
    pub len: u8,
    pub words: [i16; MAX_BEAT_WORDS],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_keeps_at_most_four_words_and_packs_word_0_low() {
        let b = Beat::new(1, 2, &[1, -1, 3, 4, 5]);
        assert_eq!(b.words(), &[1, -1, 3, 4]);
        assert_eq!(b.packed(), 0x0004_0003_FFFF_0001);
        let p = PerType {
            filter: 1,
            ifmap: 2,
            psum: 3,
        };
        assert_eq!(p.total(), 6);
        assert_eq!(p.plus(&p).get(DataType::Psum), 6);
        assert_eq!(DataType::Ifmap.to_string(), "ifmap");
    }
}
