//! Layers beyond the chip's native limits, run as parts.
//!
//! A layer with more filters than `limits.max_filters` or more channels than
//! `limits.max_channels`, or an FC layer (a CONV layer whose filter covers its whole input:
//! `R = H + 2*pad`, `S = W + 2*pad`, `E = F = 1`) whose filter is taller than the array or the
//! R limit, or whose rows are longer than a spad or the S limit allows, runs as parts, each
//! within every limit:
//! - filters `M` in `ceil(M / max)` balanced blocks (each part writes its own output channels);
//! - channels `C`, and for an FC layer filter rows and columns (which are its input's rows and
//!   columns), in balanced blocks whose partial sums are added: each part's output is the
//!   psums of its share of the dot products, read back from DRAM without ReLU, and the parts of
//!   one filter block are summed in 16-bit wrapping arithmetic (the PE's adder; wrapping
//!   addition is associative, so the sum equals the unsplit layer's bit for bit), then ReLU.
//!
//! The sum of the parts is made on the host: the DRAM round trip of a part's psums into the
//! next part (on the chip, each part after the first would read the previous part's psums from
//! DRAM instead of starting from zero) is not modelled; each part's own DRAM write of its
//! psums is. A grouped layer over a limit, or a CONV (not FC) layer whose filter is over one, is
//! refused naming the limit.

use std::ops::Range;

use rowsim_config::HwConfig;
use rowsim_workload::{ConvLayer, Tensor};

use crate::mapping::{check_layer, MapError};

/// One part of a split layer: a layer of its own, and where its data sits in the whole one's.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The part as a layer (`name.part2of4`; the whole layer's name when it is not split).
    pub layer: ConvLayer,
    /// Filters, channels, input rows and input columns of the whole layer this part covers
    /// (rows and columns are the whole input's except for a split FC layer).
    pub m: Range<u32>,
    pub c: Range<u32>,
    pub rows: Range<u32>,
    pub cols: Range<u32>,
}

/// A layer as the parts it runs in (one part: the layer itself).
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub whole: ConvLayer,
    pub parts: Vec<Part>,
    /// Why, one line a split dimension (`M = 4096 over limits.max_filters = 1024: 4 blocks of 1024`).
    pub reasons: Vec<String>,
}

/// `n` in `ceil(n / max)` balanced blocks.
fn blocks(n: u32, max: u32) -> Vec<Range<u32>> {
    let k = n.div_ceil(max.max(1)).max(1);
    let size = n.div_ceil(k);
    (0..k)
        .map(|i| (i * size).min(n)..((i + 1) * size).min(n))
        .filter(|r| !r.is_empty())
        .collect()
}

impl Split {
    /// How `layer` runs on `hw`: whole, or in parts (see the module docs). An error names the
    /// limit a layer breaks that splitting cannot help with.
    pub fn of(layer: &ConvLayer, hw: &HwConfig) -> Result<Split, MapError> {
        layer.validate().map_err(|e| MapError::Shape {
            layer: layer.name.clone(),
            why: e.to_string(),
        })?;
        let l = &hw.limits;
        let fc = layer.is_fc() && layer.pad == 0;
        let rmax = l.max_filter_height.min(hw.array.rows);
        let smax = l
            .max_filter_width
            .min(hw.spad.ifmap.entries)
            .min(hw.spad.filter.entries);
        let over_mc = layer.m > l.max_filters || layer.c > l.max_channels;
        let over_rs = fc && (layer.r > rmax || layer.s > smax);
        if !(over_mc || over_rs) || (layer.groups > 1 && over_mc) {
            // Native, or nothing a split can do: the layer's own checks name the limit.
            check_layer(layer, hw)?;
            return Ok(Split {
                whole: layer.clone(),
                parts: vec![Part {
                    layer: layer.clone(),
                    m: 0..layer.m,
                    c: 0..layer.c,
                    rows: 0..layer.h,
                    cols: 0..layer.w,
                }],
                reasons: Vec::new(),
            });
        }
        let mut reasons = Vec::new();
        let mut dim = |what: &str, n: u32, max: u32, field: &str| {
            let b = blocks(n, max);
            if b.len() > 1 {
                reasons.push(format!(
                    "{what} = {n} is over {field} = {max}: {} blocks of {}",
                    b.len(),
                    b[0].len()
                ));
            }
            b
        };
        let ms = dim("M", layer.m, l.max_filters, "limits.max_filters");
        let cs = dim("C", layer.c, l.max_channels, "limits.max_channels");
        let (rs, ss) = if fc {
            (
                dim(
                    "R (= H, FC)",
                    layer.r,
                    rmax,
                    "min(limits.max_filter_height, array.rows)",
                ),
                dim(
                    "S (= W, FC)",
                    layer.s,
                    smax,
                    "min(limits.max_filter_width, spad.ifmap.entries, spad.filter.entries)",
                ),
            )
        } else {
            (
                std::iter::once(0..layer.h).collect(),
                std::iter::once(0..layer.w).collect(),
            )
        };
        let total = ms.len() * cs.len() * rs.len() * ss.len();
        let mut parts = Vec::with_capacity(total);
        for m in &ms {
            for c in &cs {
                for rows in &rs {
                    for cols in &ss {
                        let k = parts.len() + 1;
                        let mut p = layer.clone();
                        p.name = format!("{}.part{k}of{total}", layer.name);
                        p.m = m.len() as u32;
                        p.c = c.len() as u32;
                        if fc {
                            p.h = rows.len() as u32;
                            p.r = p.h;
                            p.w = cols.len() as u32;
                            p.s = p.w;
                        }
                        check_layer(&p, hw)?;
                        parts.push(Part {
                            layer: p,
                            m: m.clone(),
                            c: c.clone(),
                            rows: rows.clone(),
                            cols: cols.clone(),
                        });
                    }
                }
            }
        }
        Ok(Split {
            whole: layer.clone(),
            parts,
            reasons,
        })
    }

    /// Whether the layer runs in more than one part.
    pub fn is_split(&self) -> bool {
        self.parts.len() > 1
    }

    /// Whether some output is the sum of several parts (channels, rows or columns split).
    pub fn accumulates(&self) -> bool {
        let w = &self.whole;
        self.parts
            .iter()
            .any(|p| p.c != (0..w.c) || p.rows != (0..w.h) || p.cols != (0..w.w))
    }

    /// One line for the output: `alexnet:fc7 runs in 16 parts: M = 4096 is over ...; ...`.
    pub fn describe(&self) -> String {
        format!(
            "{} runs in {} parts ({}){}",
            self.whole.name,
            self.parts.len(),
            self.reasons.join("; "),
            if self.accumulates() {
                "; the partial sums of the parts of each filter block are added by the host in 16-bit wrapping arithmetic (their DRAM round trip between parts is not modelled)"
            } else {
                ""
            }
        )
    }

    /// The whole layer's output from its parts' outputs (without ReLU, in part order), with
    /// ReLU if asked: each part's psums added into its filters' outputs, wrapping.
    pub fn assemble(&self, outs: &[Tensor], relu: bool) -> Tensor {
        let l = &self.whole;
        let mut whole = Tensor::zeros([l.n as usize, l.m as usize, l.e() as usize, l.f() as usize]);
        for (p, out) in self.parts.iter().zip(outs) {
            let [n, m, e, f] = out.dims;
            for i in 0..n {
                for j in 0..m {
                    for y in 0..e {
                        for x in 0..f {
                            let at = [i, p.m.start as usize + j, y, x];
                            let v = whole.get(at).wrapping_add(out.get([i, j, y, x]));
                            whole.set(at, v);
                        }
                    }
                }
            }
        }
        if relu {
            for v in whole.data.iter_mut() {
                *v = (*v).max(0);
            }
        }
        whole
    }
}

impl Part {
    /// This part's ifmap, `[N][C part][rows][cols]`, from the whole layer's (row by row).
    pub fn ifmap(&self, whole: &Tensor) -> Tensor {
        let [n, _, _, w] = whole.dims;
        let (rows, cols) = (self.rows.len(), self.cols.len());
        let mut t = Tensor::zeros([n, self.c.len(), rows, cols]);
        if cols > 0 {
            let mut out = t.data.chunks_exact_mut(cols);
            for i in 0..n {
                for c in self.c.clone() {
                    for row in self.rows.clone() {
                        let at = whole.index([i, c as usize, row as usize, 0]);
                        let src = at + self.cols.start as usize..at + self.cols.end as usize;
                        debug_assert!(self.cols.end as usize <= w);
                        if let Some(dst) = out.next() {
                            dst.copy_from_slice(&whole.data[src]);
                        }
                    }
                }
            }
        }
        t
    }

    /// This part's weights, `[M part][C part][R part][S part]`, from the whole layer's (row by
    /// row).
    pub fn weights(&self, whole: &Tensor) -> Tensor {
        self.weights_in(whole, 0)
    }

    /// Whether this part's weights are all of its filters' (every channel and tap): then the
    /// block of its filters is its weights as they stand.
    pub fn whole_filters(&self, whole: &ConvLayer) -> bool {
        self.c == (0..whole.c) && self.layer.r == whole.r && self.layer.s == whole.s
    }

    /// This part's weights, as [`Part::weights`], from a block of the whole layer's filters
    /// whose first is filter `first` (the block holds at least this part's).
    pub fn weights_in(&self, whole: &Tensor, first: u32) -> Tensor {
        let (r, s) = (self.layer.r as usize, self.layer.s as usize);
        let fc_rows = if self.layer.r as usize == whole.dims[2] {
            0
        } else {
            self.rows.start as usize
        };
        let fc_cols = if self.layer.s as usize == whole.dims[3] {
            0
        } else {
            self.cols.start as usize
        };
        let mut t = Tensor::zeros([self.m.len(), self.c.len(), r, s]);
        if r == whole.dims[2] && s == whole.dims[3] && self.c.len() * r * s > 0 {
            // Whole filter planes (an FC layer's, a part of channels only): each filter's
            // channels of this part are one run in both tensors.
            let run = self.c.len() * r * s;
            let mut out = t.data.chunks_exact_mut(run);
            for m in self.m.clone() {
                let at = whole.index([(m - first) as usize, self.c.start as usize, 0, 0]);
                if let Some(dst) = out.next() {
                    dst.copy_from_slice(&whole.data[at..at + run]);
                }
            }
        } else if s > 0 {
            let mut out = t.data.chunks_exact_mut(s);
            for m in self.m.clone() {
                for c in self.c.clone() {
                    for y in 0..r {
                        let at =
                            whole.index([(m - first) as usize, c as usize, fc_rows + y, fc_cols]);
                        if let Some(dst) = out.next() {
                            dst.copy_from_slice(&whole.data[at..at + s]);
                        }
                    }
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_balanced_and_cover_the_range() {
        assert_eq!(
            blocks(4096, 1024),
            vec![0..1024, 1024..2048, 2048..3072, 3072..4096]
        );
        assert_eq!(blocks(1000, 1024), vec![0..1000]);
        assert_eq!(blocks(7, 3), vec![0..3, 3..6, 6..7]);
        assert_eq!(blocks(13, 12), vec![0..7, 7..13]);
    }

    /// The built-in FC layers on eyeriss-v1 (M and C limits 1024): AlexNet FC6 in 4 filter
    /// blocks, FC7 in 4 x 4, FC8 in 4 channel blocks; VGG-16 FC6 (7 x 7 filters fit) in 4.
    #[test]
    fn the_built_in_fc_layers_split_on_eyeriss_v1() {
        let hw = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1")).unwrap();
        for (name, parts, accumulates) in [
            ("alexnet:fc6", 4, false),
            ("alexnet:fc7", 16, true),
            ("alexnet:fc8", 4, true),
            ("vgg16:fc6", 4, false),
            ("vgg16:fc8", 4, true),
            ("alexnet:conv3", 1, false),
        ] {
            let l = rowsim_workload::layer(name).unwrap();
            let s = Split::of(&l, &hw).unwrap();
            assert_eq!(
                (s.parts.len(), s.accumulates()),
                (parts, accumulates),
                "{name}"
            );
            let macs: u64 = s.parts.iter().map(|p| p.layer.macs()).sum();
            assert_eq!(macs, l.macs(), "{name}");
            assert_eq!(l.is_fc(), name.contains("fc"));
        }
    }

    /// What a split cannot help with is refused naming the limit: a grouped layer over the
    /// filter limit, a CONV (not FC) filter taller than the array.
    #[test]
    fn what_cannot_be_split_names_the_limit() {
        let hw = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1")).unwrap();
        let mut l = rowsim_workload::layer("alexnet:conv2").unwrap();
        l.m = 2048;
        let e = Split::of(&l, &hw).unwrap_err().to_string();
        assert!(e.contains("limits.max_filters"), "{e}");
        let mut l = rowsim_workload::layer("alexnet:conv3").unwrap();
        l.r = 13;
        let e = Split::of(&l, &hw).unwrap_err().to_string();
        assert!(e.contains("limits.max_filter_height"), "{e}");
    }

    /// A part's ifmap and weights are the whole layer's values at the part's filters,
    /// channels, rows and columns, element by element: on FC layers split by filters, by
    /// channels, and (a filter taller and wider than the array) by rows and columns.
    #[test]
    fn parts_take_their_values_from_the_whole_layer() {
        let hw = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1")).unwrap();
        let mut tall = rowsim_workload::layer("alexnet:fc6").unwrap();
        (tall.m, tall.c, tall.h, tall.w, tall.r, tall.s) = (5, 3, 16, 17, 16, 17);
        let mut wide = rowsim_workload::layer("alexnet:fc8").unwrap();
        (wide.m, wide.c) = (3, 1500);
        for l in [tall, wide] {
            let split = Split::of(&l, &hw).unwrap();
            assert!(split.parts.len() > 1, "{}: split", l.name);
            let fill = |dims: [usize; 4]| {
                let mut t = Tensor::zeros(dims);
                for (k, v) in t.data.iter_mut().enumerate() {
                    *v = (k % 65_521) as i16;
                }
                t
            };
            let x = fill([l.n as usize, l.c as usize, l.h as usize, l.w as usize]);
            let w = fill([l.m as usize, l.c as usize, l.r as usize, l.s as usize]);
            for p in &split.parts {
                let (px, pw) = (p.ifmap(&x), p.weights(&w));
                assert_eq!(
                    pw.dims,
                    [p.m.len(), p.c.len(), p.layer.r as usize, p.layer.s as usize]
                );
                assert_eq!(
                    px.dims,
                    [l.n as usize, p.c.len(), p.rows.len(), p.cols.len()]
                );
                for i in 0..l.n as usize {
                    for (k, c) in p.c.clone().enumerate() {
                        for (y, row) in p.rows.clone().enumerate() {
                            for (z, col) in p.cols.clone().enumerate() {
                                let want = x.get([i, c as usize, row as usize, col as usize]);
                                assert_eq!(px.get([i, k, y, z]), want, "{}", p.layer.name);
                            }
                        }
                    }
                }
                // An FC part's filter rows and columns are its input rows and columns.
                for (j, m) in p.m.clone().enumerate() {
                    for (k, c) in p.c.clone().enumerate() {
                        for (y, row) in p.rows.clone().enumerate() {
                            for (z, col) in p.cols.clone().enumerate() {
                                let want =
                                    w.get([m as usize, c as usize, row as usize, col as usize]);
                                assert_eq!(pw.get([j, k, y, z]), want, "{}", p.layer.name);
                            }
                        }
                    }
                }
            }
        }
    }
}
