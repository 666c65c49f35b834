//! Zero-mask compression of filter rows, as they sit in the GLB, cross the filter GIN and live
//! in a PE's filter spad (`spad.filter.compressed`).
//!
//! A filter row of `len` weights (one PE's `p*q*S` weights, in filter-spad order) becomes
//! `ceil(len / 16)` **mask words** followed by its **nonzero values** in order:
//! - mask word `k`, bit `b` (bit 0 = least significant) is 1 when weight `16*k + b` is nonzero;
//!   bits at or past `len` in the last mask word are 0;
//! - then one word per nonzero weight, its value.
//!
//! So a row costs `ceil(len/16) + nnz` 16-bit words, every one an ordinary word of the GLB,
//! the GIN and the PE's FIFO: a dense row pays one bit a weight (6.25%), a row at density `d`
//! costs `1/16 + d` of its raw size. This is the bitmap format of sparse accelerators (Eyeriss
//! v2's CSC keeps a count per nonzero instead; chosen here because it needs no word wider than
//! 16 bits and its size is exact from `len` and `nnz` alone).
//!
//! # Worked example
//! `[0, 5, 0, 0, -1, 7]` (len 6): mask `0b11_0010` = `0x0032`, then `5, -1, 7`: 4 words.
//!
//! A PE holds the mask in its weight zero buffer and the nonzero values packed from filter-spad
//! entry 0; the MAC of weight `i` reads entry `popcount(mask[0..i])`.

use std::fmt;

/// Mask words of a row of `len` weights.
pub fn mask_words(len: u64) -> u64 {
    len.div_ceil(16)
}

/// Words of a row of `len` weights with `nnz` nonzero.
pub fn row_words(len: u64, nnz: u64) -> u64 {
    mask_words(len) + nnz
}

/// Appends the compressed form of `row` to `out`; returns the words appended.
pub fn encode_row(row: &[i16], out: &mut Vec<i16>) -> usize {
    let start = out.len();
    for chunk in row.chunks(16) {
        let mut m = 0u16;
        for (b, &v) in chunk.iter().enumerate() {
            if v != 0 {
                m |= 1 << b;
            }
        }
        out.push(m as i16);
    }
    out.extend(row.iter().copied().filter(|&v| v != 0));
    out.len() - start
}

/// Why a compressed row could not be decoded: the word at which it went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream ended before the row's mask or values did.
    Truncated { word: usize, needed: usize },
    /// A mask word has bits set at or past the row's length.
    BitsPastEnd { word: usize, mask: u16, len: usize },
    /// The mask names more nonzero weights than the spad has entries.
    TooManyNonzeros { word: usize, nnz: u64, entries: u64 },
    /// A value word is zero although the mask says it is not.
    ZeroValue { word: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { word, needed } => write!(
                f,
                "compressed filter row: the stream ends at word {word}, {needed} words were needed"
            ),
            DecodeError::BitsPastEnd { word, mask, len } => write!(
                f,
                "compressed filter row: mask word {word} ({mask:#06x}) marks weights past the row's {len}"
            ),
            DecodeError::TooManyNonzeros { word, nnz, entries } => write!(
                f,
                "compressed filter row: the mask (through word {word}) marks {nnz} nonzero weights; the filter spad has {entries} entries"
            ),
            DecodeError::ZeroValue { word } => write!(
                f,
                "compressed filter row: word {word} is a zero value where the mask marks a nonzero weight"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Checks mask word `k` of a row of `len` weights: no bits at or past `len`.
pub fn check_mask_word(k: usize, mask: u16, len: usize) -> Result<(), DecodeError> {
    let valid = len.saturating_sub(16 * k).min(16);
    let allowed: u32 = if valid == 16 {
        0xFFFF
    } else {
        (1 << valid) - 1
    };
    if (mask as u32) & !allowed != 0 {
        return Err(DecodeError::BitsPastEnd { word: k, mask, len });
    }
    Ok(())
}

/// Decodes one row of `len` weights from the start of `words`, holding at most `entries`
/// nonzero values; returns the row and the words it took.
pub fn decode_row(
    words: &[i16],
    len: usize,
    entries: u64,
) -> Result<(Vec<i16>, usize), DecodeError> {
    let masks = len.div_ceil(16);
    if words.len() < masks {
        return Err(DecodeError::Truncated {
            word: words.len(),
            needed: masks,
        });
    }
    let mut nnz = 0u64;
    for (k, &m) in words[..masks].iter().enumerate() {
        check_mask_word(k, m as u16, len)?;
        nnz += (m as u16).count_ones() as u64;
        if nnz > entries {
            return Err(DecodeError::TooManyNonzeros {
                word: k,
                nnz,
                entries,
            });
        }
    }
    // nnz <= entries and nnz <= len: the allocation is what the row honestly needs.
    let total = masks + nnz as usize;
    if words.len() < total {
        return Err(DecodeError::Truncated {
            word: words.len(),
            needed: total,
        });
    }
    let mut row = vec![0i16; len];
    let mut next = masks;
    for (i, v) in row.iter_mut().enumerate() {
        if (words[i / 16] as u16 >> (i % 16)) & 1 == 1 {
            if words[next] == 0 {
                return Err(DecodeError::ZeroValue { word: next });
            }
            *v = words[next];
            next += 1;
        }
    }
    Ok((row, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        let mut out = Vec::new();
        assert_eq!(encode_row(&[0, 5, 0, 0, -1, 7], &mut out), 4);
        assert_eq!(out, vec![0x0032, 5, -1, 7]);
        assert_eq!(
            decode_row(&out, 6, 224).unwrap(),
            (vec![0, 5, 0, 0, -1, 7], 4)
        );
    }

    #[test]
    fn sizes_are_the_closed_form() {
        // Rows of every length up to 40, every nonzero pattern from a counter.
        for len in 0..40usize {
            for seed in 0..20u64 {
                let row: Vec<i16> = (0..len)
                    .map(|i| {
                        let x = (i as u64 * 2654435761).wrapping_add(seed * 97) % 5;
                        if x < 2 {
                            0
                        } else {
                            x as i16 - 3
                        }
                    })
                    .collect();
                let nnz = row.iter().filter(|&&v| v != 0).count() as u64;
                let mut out = Vec::new();
                let n = encode_row(&row, &mut out);
                assert_eq!(n as u64, row_words(len as u64, nnz));
                assert_eq!(decode_row(&out, len, 224).unwrap(), (row, n));
            }
        }
    }

    #[test]
    fn corrupt_rows_name_the_word() {
        let mut out = Vec::new();
        encode_row(&[1, 0, 2, 0, 0, 3], &mut out);
        // Truncated in the values.
        assert_eq!(
            decode_row(&out[..2], 6, 224),
            Err(DecodeError::Truncated { word: 2, needed: 4 })
        );
        // Truncated in the mask.
        assert_eq!(
            decode_row(&[], 17, 224),
            Err(DecodeError::Truncated { word: 0, needed: 2 })
        );
        // A bit past the end.
        let mut bad = out.clone();
        bad[0] |= 1 << 9;
        assert!(matches!(
            decode_row(&bad, 6, 224),
            Err(DecodeError::BitsPastEnd { word: 0, .. })
        ));
        // More nonzeros than the spad holds.
        assert!(matches!(
            decode_row(&out, 6, 2),
            Err(DecodeError::TooManyNonzeros {
                nnz: 3,
                entries: 2,
                ..
            })
        ));
        // A zero where the mask promised a value.
        let mut bad = out.clone();
        bad[2] = 0;
        assert_eq!(
            decode_row(&bad, 6, 224),
            Err(DecodeError::ZeroValue { word: 2 })
        );
        assert!(decode_row(&bad, 6, 224)
            .unwrap_err()
            .to_string()
            .contains("word 2"));
    }
}
