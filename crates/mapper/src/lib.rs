//! rowsim's mapper: every legal mapping of a CONV layer onto a machine, for row stationary (RS)
//! and the other dataflows of the ISCA 2016 comparison ([`dataflow`]: WS, OSA, OSB, OSC, NLR,
//! each a restriction of the RS loop nest on a lowered layer), the accesses each makes at every
//! level of the memory hierarchy (in closed form, and by walking its loop nest), their energy,
//! and the cheapest. The symbols below are the lowered layer's (for RS, the layer's own).
//!
//! # Symbols
//! Layer (per group; a grouped layer runs its groups one after another): N batch, C channels,
//! M filters, H x W input (unpadded), R x S filter, U stride, E x F output. Mapping:
//! - `e` output rows per PE set (a set is R x e PEs: filter rows down, output rows across);
//! - `p` filters and `q` channels interleaved in each PE;
//! - `r` sets on different channels (stacked, their psums added in the array) and `t` sets on
//!   different filters (sharing the ifmap);
//! - `n` ifmaps (batch) and `m` filters whose psums the GLB holds.
//!
//! # Placement
//! A set wider than the array (`e > cols`) is split into `ceil(e / cols)` segments of at most
//! `cols` columns. The `r` sets of one filter group are stacked into a chain of `R*r` rows, in
//! which psums flow up, PE to PE, over the local links. The array is tiled with blocks of
//! `R*r` rows by `min(e, cols)` columns; `t * segments` blocks must fit:
//! `floor(rows / (R*r)) * floor(cols / min(e, cols)) >= t * ceil(e / cols)`.
//! PEs used: `R * r * t * e`.
//!
//! # The loop nest (outer to inner), per group
//! ```text
//! for nb in 0..N/n                     images
//!   for mb in 0..M/m                   filter groups whose psums the GLB holds
//!     for eb in 0..ceil(E/e)           strips of e output rows (the last may be narrower)
//!       for cb in 0..C/(q*r)           channel blocks: the strip's ifmap band comes to the GLB
//!         for fb in 0..m/(p*t)         processing passes
//! ```
//! In a pass, PE `(i, j)` of set `(rr, tt)` holds filter row `i` of `p` filters and `q` channels
//! and, for each of the `n` images, convolves it with ifmap row `(eb*e + j)*U + i` (padded
//! coordinates), `q` channels of the `(F-1)*U + S` padded columns some output uses, into
//! `F x p` psums; psums enter a chain's
//! bottom PE from the GLB (psum GIN) when `cb > 0` and leave its top PE for the GLB (GON).
//! After the last channel block, a strip's finished psums go from the GLB through ReLU and the
//! RLC coder to DRAM. Divisibility is required of `n | N`, `m | M`, `p*t | m`, `q*r | C`
//! (`p = q = r = t = n = 1, m = M` always qualifies), not of `e`.
//!
//! # What counts as an access (16-bit words; energy per access from the config's table)
//! - **DRAM**: words crossing the bus, 4 per 64-bit bus word (a raw stream of `v` values costs
//!   `4 * ceil(v / 4)`). Filters raw, once per pass (`p*t*q*r*R*S` values). Ifmaps once
//!   per `(nb, mb, eb, cb)` and real channel of the block: each row of the strip's band
//!   (`(e-1)*U + R` padded rows, less
//!   padding) of each image and channel, as one RLC stream (raw for a first layer). Ofmaps:
//!   each output row of each image and filter, one RLC stream, written once.
//! - **GLB**: filters written and read once per pass; ifmaps written once per `(nb, mb, eb, cb)`
//!   (the block's real channels, whole bands: a block covering part of a lowered channel loads
//!   the channel's band again) and, per pass, each virtual channel reads the real values of its
//!   band once (padding is not stored; it is made on the way to the array; for RS this is each
//!   band value once);
//!   psums written once per pass by each chain top, read once per pass by each chain bottom
//!   when `cb > 0`, and read once more after the last channel block on the way to DRAM.
//! - **NoC**: words delivered into PE FIFOs or taken out of them: each PE receives `p*q*S`
//!   weights and `n*q*((F-1)*U + S)` ifmaps a pass; each PE sends its `n*F*p` psums (up the local
//!   link, or to the GLB); each chain bottom receives `n*F*p` psums from the GLB when `cb > 0`.
//! - **spad**: the PE's own accesses (`rowsim_pe`'s counters): filter writes `p*q*S` a pass,
//!   reads per MAC not gated; ifmap writes per word delivered, reads `n*F*q*S` a pass; psum a
//!   read and a write per MAC not gated, and a read per psum drained.
//! - **Compressed weights** (`spad.filter.compressed`, see [`sparse`]): each PE's row of
//!   `p*q*S` weights is `ceil(p*q*S/16)` mask words and its `nnz` nonzero values, everywhere:
//!   DRAM (each pass's rows as one raw stream), GLB (written and read once per pass), NoC (each
//!   PE receives its row's words) and the PE (a spad write per nonzero, an index write per mask
//!   word, priced at `energy.skip_index`). Summed over a layer, every row once per image block
//!   and output row: NoC filter words `N/n * E * sum of row words`.
//! - **MAC**: MACs not gated. Gating skips every MAC whose ifmap value is zero, including the
//!   padding: a property of the data, the same for every mapping.

pub mod bound;
pub mod counts;
pub mod data;
pub mod dataflow;
pub mod layer_file;
pub mod mapping;
pub mod nest;
pub mod search;
pub mod sparse;
pub mod split;
pub mod walk;

pub use bound::{cycle_bound, ifmap_diagonal_ids_fit, CycleBound, Resource};
pub use counts::{predict, predict_with, Counts, Energy, PerType, StripCache, StripSums};
pub use data::{DataModel, DataTotals, ExactData, ExpectedData};
pub use dataflow::Dataflow;
pub use mapping::{check_layer, MapError, Mapping, Placement, Problem, RealShape};
pub use nest::{filter_stream, loop_nest, BandKey, FilterKey, Phase, TapMajor};
pub use search::{
    best, best_for, choose, choose_for, choose_with, enumerate, enumerate_for, evaluate,
    expected_data, first_legal, rank, ranking, Objective, Ranked,
};
pub use sparse::FilterRows;
pub use split::{Part, Split};
pub use walk::walk;
