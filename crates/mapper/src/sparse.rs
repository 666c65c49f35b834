//! Compressed filter rows (`spad.filter.compressed`): the exact size of every row a mapping's
//! passes load, in the zero-mask format of `rowsim_datapath::zmask` (`ceil(L/16)` mask words
//! and the `nnz` nonzero values of a row of `L = p*q*S` weights).
//!
//! A row is one PE's weights of a pass: filter row `i` of `p` filters and `q` (virtual)
//! channels. Its content depends only on `p`, `q` and which block of `p` filters and of `q`
//! channels it holds, not on `t`, `r`, `e` or `n`: a layer's rows for one `(p, q)` are the
//! `G * (M/p) * (C/q) * R` blocks of its weights, each weight in exactly one. So one
//! [`FilterRows`] per `(p, q)` prices every mapping with those letters.

use rowsim_workload::Tensor;

use crate::mapping::{Mapping, Problem};

/// The compressed sizes of every filter row of a layer for one `(p, q)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRows {
    pub p: u32,
    pub q: u32,
    /// Weights per row, `p*q*S`.
    pub len: u64,
    /// The rows' nonzero weights as sums over rectangles of blocks: per group and filter row
    /// `i`, at `[group][i][f][c]` (`(M/p + 1) x (C/q + 1)` each), the nonzero weights of the
    /// rows of filter blocks `< f` and channel blocks `< c`. A row's count, and a pass's
    /// (a rectangle of blocks), is four of these added and subtracted. The sums wrap at 2^32
    /// (`wrapping_*`): a rectangle's count, far below that (its rows fit spads), comes out
    /// exact all the same. `None` when dense (every row `len`).
    below: Option<Vec<u32>>,
    /// Rows of the layer.
    n_rows: u64,
    /// Filter blocks (`M/p`), channel blocks (`C/q`) and filter rows (`R`) per group.
    blocks: (u32, u32, u32),
    /// The most nonzero weights of any row, and over all rows the nonzero weights.
    pub max_nnz: u64,
    pub total_nnz: u64,
}

impl FilterRows {
    /// The rows of `pb` for `(p, q)`: counted from `weights` (`[M][C/G][R][S]`), or, when the
    /// weights are not known, dense (every weight nonzero: the worst case).
    pub fn of(pb: &Problem, p: u32, q: u32, weights: Option<&Tensor>) -> Self {
        let len = (p * q * pb.s) as u64;
        let blocks = (pb.m / p, pb.c / q, pb.r);
        let n_rows = pb.groups as usize * (blocks.0 * blocks.1 * blocks.2) as usize;
        let nnz = match weights {
            None => {
                return FilterRows {
                    p,
                    q,
                    len,
                    below: None,
                    n_rows: n_rows as u64,
                    blocks,
                    max_nnz: len,
                    total_nnz: len * n_rows as u64,
                }
            }
            Some(w) => {
                let mut v = Vec::with_capacity(n_rows);
                for g in 0..pb.groups {
                    for pbk in 0..blocks.0 {
                        for qbk in 0..blocks.1 {
                            for i in 0..pb.r {
                                let mut n = 0u32;
                                for s in 0..pb.s {
                                    for c in 0..q {
                                        let (ch, ir, js) = pb.real_weight(qbk * q + c, i, s);
                                        for f in 0..p {
                                            let filt = g * pb.m + pbk * p + f;
                                            n += (w.get([
                                                filt as usize,
                                                ch as usize,
                                                ir as usize,
                                                js as usize,
                                            ]) != 0)
                                                as u32;
                                        }
                                    }
                                }
                                v.push(n);
                            }
                        }
                    }
                }
                v
            }
        };
        let (fbs, qbs, rs) = (blocks.0 as usize, blocks.1 as usize, blocks.2 as usize);
        let plane = (fbs + 1) * (qbs + 1);
        let mut below = vec![0u32; pb.groups as usize * rs * plane];
        for g in 0..pb.groups as usize {
            for i in 0..rs {
                let base = (g * rs + i) * plane;
                let at = |f: usize, c: usize| base + f * (qbs + 1) + c;
                for f in 0..fbs {
                    for c in 0..qbs {
                        let row = nnz[((g * fbs + f) * qbs + c) * rs + i];
                        below[at(f + 1, c + 1)] = row
                            .wrapping_add(below[at(f, c + 1)])
                            .wrapping_add(below[at(f + 1, c)])
                            .wrapping_sub(below[at(f, c)]);
                    }
                }
            }
        }
        FilterRows {
            p,
            q,
            len,
            max_nnz: nnz.iter().copied().max().unwrap_or(0) as u64,
            total_nnz: nnz.iter().map(|&n| n as u64).sum(),
            n_rows: n_rows as u64,
            below: Some(below),
            blocks,
        }
    }

    /// Nonzero weights of the rows of group `g`'s filter blocks `f..f + nf` and channel blocks
    /// `c..c + nc`, of filter rows `i..i + ni`.
    fn block_nnz(
        &self,
        g: u32,
        (f, nf): (u32, u32),
        (c, nc): (u32, u32),
        (i, ni): (u32, u32),
    ) -> u64 {
        let (fbs, qbs, rs) = self.blocks;
        let Some(below) = &self.below else {
            return (nf * nc * ni) as u64 * self.len;
        };
        let plane = (fbs as usize + 1) * (qbs as usize + 1);
        (i..i + ni)
            .map(|i| {
                let base = (g * rs + i) as usize * plane;
                let at =
                    |f: u32, c: u32| below[base + f as usize * (qbs as usize + 1) + c as usize];
                // Exact: see `below`.
                at(f + nf, c + nc)
                    .wrapping_add(at(f, c))
                    .wrapping_sub(at(f, c + nc))
                    .wrapping_sub(at(f + nf, c)) as u64
            })
            .sum()
    }

    /// Mask words of a row.
    pub fn mask_words(&self) -> u64 {
        rowsim_datapath::zmask::mask_words(self.len)
    }

    /// Rows of the layer.
    pub fn rows(&self) -> u64 {
        self.n_rows
    }

    /// Compressed words of the longest row.
    pub fn max_words(&self) -> u64 {
        self.mask_words() + self.max_nnz
    }

    /// Compressed words of all rows.
    pub fn total_words(&self) -> u64 {
        self.rows() * self.mask_words() + self.total_nnz
    }

    /// Nonzero weights of the row of group `g`, filter block `fblock`, channel block `qb`,
    /// filter row `i`.
    fn nnz_of(&self, g: u32, fblock: u32, qb: u32, i: u32) -> u64 {
        self.block_nnz(g, (fblock, 1), (qb, 1), (i, 1))
    }

    /// Compressed words of each row of pass `key`'s filter stream, in stream order
    /// `(tt, rr, i)` (see [`crate::nest::filter_stream`]). `m` must have this `(p, q)`.
    pub fn pass_rows(&self, pb: &Problem, m: &Mapping, key: crate::FilterKey) -> Vec<u64> {
        let crate::FilterKey { g, mb, cb, fb } = key;
        let mut out = Vec::with_capacity((m.t * m.r * pb.r) as usize);
        for tt in 0..m.t {
            for rr in 0..m.r {
                for i in 0..pb.r {
                    let fblock = (mb * m.m + fb * m.p * m.t) / m.p + tt;
                    let nnz = self.nnz_of(g, fblock, cb * m.r + rr, i);
                    out.push(self.mask_words() + nnz);
                }
            }
        }
        out
    }
}

/// What the counts need of a mapping's compressed rows: over the layer's rows, their words,
/// nonzeros and mask words, and over its passes' keys the DRAM words of each key's raw stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTotals {
    pub total_words: u64,
    pub total_nnz: u64,
    pub mask_total: u64,
    /// Sum over the pass keys `(g, mb, cb, fb)` of `raw_words(words of the key's rows)`.
    pub pass_raw_words: u64,
}

impl FilterRows {
    /// The totals of mapping `m` (with this `(p, q)`).
    pub fn totals(&self, pb: &Problem, m: &Mapping) -> RowTotals {
        let mut pass_raw_words = 0;
        for g in 0..pb.groups {
            for mb in 0..pb.m / m.m {
                for cb in 0..pb.c / (m.q * m.r) {
                    for fb in 0..m.m / (m.p * m.t) {
                        // The key's rows (see `pass_rows`): filter blocks from its first
                        // `t`, channel blocks from its first `r`, every filter row.
                        let rows = (m.t * m.r * pb.r) as u64;
                        let f0 = (mb * m.m + fb * m.p * m.t) / m.p;
                        let nnz = self.block_nnz(g, (f0, m.t), (cb * m.r, m.r), (0, pb.r));
                        let words = rows * self.mask_words() + nnz;
                        pass_raw_words += crate::data::raw_words(words);
                    }
                }
            }
        }
        RowTotals {
            total_words: self.total_words(),
            total_nnz: self.total_nnz,
            mask_total: self.rows() * self.mask_words(),
            pass_raw_words,
        }
    }
}

/// Words of the GLB's filter banks a pass of `m` needs when its rows are compressed: `t*r*R`
/// rows, each starting on a bank entry of `lanes` words and as long as the longest row.
pub fn pass_filter_words(pb: &Problem, m: &Mapping, rows: &FilterRows, lanes: u64) -> u64 {
    (m.t * m.r * pb.r) as u64 * rows.max_words().div_ceil(lanes) * lanes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dataflow;
    use rowsim_workload::ConvLayer;

    fn layer() -> ConvLayer {
        ConvLayer {
            name: "t".into(),
            n: 1,
            c: 4,
            m: 4,
            h: 5,
            w: 5,
            r: 3,
            s: 3,
            stride_v: 1,
            stride_h: 1,
            pad: 1,
            groups: 1,
            ifmap_zero_fraction: 0.5,
            first: false,
        }
    }

    /// Every row counted by hand against the weights the chip's stream carries: the rows of
    /// every pass of every mapping of a few `(p, q, r, t)`, their nonzeros equal to the
    /// nonzeros of the pass's stream, row by row.
    #[test]
    fn rows_match_the_pass_streams() {
        let l = layer();
        let pb = Problem::lowered(&l, Dataflow::Rs);
        let mut w = Tensor::zeros([4, 4, 3, 3]);
        for (k, v) in w.data.iter_mut().enumerate() {
            *v = if k % 3 == 0 { 0 } else { k as i16 - 50 };
        }
        for (mm, p, q, r, t) in [
            (4, 1, 1, 1, 1),
            (4, 2, 2, 1, 2),
            (4, 1, 2, 2, 4),
            (4, 4, 4, 1, 1),
            (2, 1, 1, 1, 1),
            (2, 1, 2, 2, 2),
            (2, 2, 1, 1, 1),
        ] {
            let m = Mapping {
                dataflow: Dataflow::Rs,
                m: mm,
                n: 1,
                e: 5,
                p,
                q,
                r,
                t,
            };
            let rows = FilterRows::of(&pb, p, q, Some(&w));
            let dense = FilterRows::of(&pb, p, q, None);
            assert_eq!(dense.max_nnz, rows.len);
            assert_eq!(dense.total_nnz, 4 * 4 * 9);
            assert_eq!(
                rows.total_nnz,
                w.data.iter().filter(|&&v| v != 0).count() as u64
            );
            let len = rows.len as usize;
            let mut pass_raw_words = 0;
            for (mb, cb, fb) in (0..pb.m / mm).flat_map(|mb| {
                (0..pb.c / (q * r))
                    .flat_map(move |cb| (0..mm / (p * t)).map(move |fb| (mb, cb, fb)))
            }) {
                let key = crate::FilterKey { g: 0, mb, cb, fb };
                let stream = crate::nest::filter_stream(&pb, &m, key, &w);
                let by_hand: Vec<u64> = stream
                    .chunks(len)
                    .map(|row| {
                        len.div_ceil(16) as u64 + row.iter().filter(|&&v| v != 0).count() as u64
                    })
                    .collect();
                assert_eq!(rows.pass_rows(&pb, &m, key), by_hand, "{m:?} {key:?}");
                pass_raw_words += crate::data::raw_words(by_hand.iter().sum());
            }
            // The totals, from the rows' sums by block, are those of the streams.
            let totals = rows.totals(&pb, &m);
            assert_eq!(totals.pass_raw_words, pass_raw_words, "{m:?}");
            assert_eq!(totals.total_nnz, rows.total_nnz);
        }
    }
}
