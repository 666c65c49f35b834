//! The order in which a processing pass's operands cross the GINs: the test bench's feeders
//! ([`crate::build_pass`]) walk it, and the controller's GLB read descriptors
//! ([`crate::controller`]), which the sequencers expand, make exactly it, item by item (the
//! controller's tests check every pass and readout of several layers and dataflows), so a pass
//! test drives the array with the streams the chip sends.
//!
//! - Filters: a bus width of each logical filter row in turn, rows round robin in `(tt, rr, i)`
//!   order; a row that has ended (a shorter compressed row) drops out of the round.
//! - Ifmaps: image by image, column by column; in each column every row of the band of each
//!   channel block, and in each row the `q` channels.
//! - Psums in (a pass that continues an accumulation): position by position (image, then output
//!   column), each chain's bottom in `(tt, j)` order, `p` psums each.

use rowsim_mapper::{Mapping, Problem};

/// A bus width of one logical filter row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterChunk {
    pub tt: u32,
    pub rr: u32,
    pub i: u32,
    /// The row's index in `(tt, rr, i)` order.
    pub row: usize,
    /// The chunk's first word in the row, and its words.
    pub start: u64,
    pub len: u64,
}

/// The filter stream of a pass whose rows are `lens` words long (in `(tt, rr, i)` order), `width`
/// words a beat.
pub fn filter_chunks<'a>(
    m: &Mapping,
    pb: &Problem,
    lens: &'a [u64],
    width: u64,
) -> impl Iterator<Item = FilterChunk> + 'a {
    let (t, r, rows) = (m.t, m.r, pb.r);
    let beats = lens
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .div_ceil(width.max(1));
    (0..beats).flat_map(move |b| {
        (0..t).flat_map(move |tt| {
            (0..r).flat_map(move |rr| {
                (0..rows).filter_map(move |i| {
                    let row = ((tt * r + rr) * rows + i) as usize;
                    let start = b * width;
                    let row_len = lens[row];
                    (start < row_len).then(|| FilterChunk {
                        tt,
                        rr,
                        i,
                        row,
                        start,
                        len: (row_len - start).min(width),
                    })
                })
            })
        })
    })
}

/// One ifmap value of a pass's stream: image `img` of the pass, column `col` of the padded
/// row, channel block `rr`, row `y` of the band, channel `c` of the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfmapValue {
    pub img: u32,
    pub col: u32,
    pub rr: u32,
    pub y: u32,
    pub c: u32,
}

/// The ifmap stream of a pass over a band of `band` rows.
pub fn ifmap_values(m: &Mapping, pb: &Problem, band: u32) -> impl Iterator<Item = IfmapValue> {
    let (n, r, q, cols) = (m.n, m.r, m.q, pb.w_used());
    (0..n).flat_map(move |img| {
        (0..cols).flat_map(move |col| {
            (0..r).flat_map(move |rr| {
                (0..band).flat_map(move |y| (0..q).map(move |c| IfmapValue { img, col, rr, y, c }))
            })
        })
    })
}

/// The incoming psums of a pass over a strip of `e_cur` rows: `(position, tt, j)`, each the `p`
/// psums of output position `position` (image-major) for the chain `(tt, j)`.
pub fn psum_positions(
    m: &Mapping,
    pb: &Problem,
    e_cur: u32,
) -> impl Iterator<Item = (u64, u32, u32)> {
    let (t, positions) = (m.t, (m.n * pb.f) as u64);
    (0..positions)
        .flat_map(move |pos| (0..t).flat_map(move |tt| (0..e_cur).map(move |j| (pos, tt, j))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(t: u32, r: u32, n: u32, q: u32) -> Mapping {
        Mapping {
            dataflow: Default::default(),
            m: 8,
            n,
            e: 2,
            p: 2,
            q,
            r,
            t,
        }
    }

    /// A layer of `c` channels of `h x h`, `m` filters of `k x k`, stride 1, no padding.
    fn layer(c: u32, h: u32, m: u32, k: u32) -> rowsim_workload::ConvLayer {
        rowsim_workload::ConvLayer {
            name: "l".into(),
            n: 2,
            c,
            h,
            w: h,
            m,
            r: k,
            s: k,
            stride_v: 1,
            stride_h: 1,
            pad: 0,
            groups: 1,
            ifmap_zero_fraction: 0.5,
            first: false,
        }
    }

    #[test]
    fn filter_rows_go_round_robin_a_bus_width_at_a_time_and_ended_rows_drop_out() {
        let l = layer(4, 6, 8, 2);
        let pb = Problem::of(&l);
        let m = mapping(1, 2, 1, 1);
        // Rows (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1): 6, 2, 5 and 4 words, 4 a beat.
        let lens = [6, 2, 5, 4];
        let got: Vec<(usize, u64, u64)> = filter_chunks(&m, &pb, &lens, 4)
            .map(|c| (c.row, c.start, c.len))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 4),
                (1, 0, 2),
                (2, 0, 4),
                (3, 0, 4),
                (0, 4, 2),
                (2, 4, 1)
            ]
        );
        let c = filter_chunks(&m, &pb, &lens, 4).nth(2).unwrap();
        assert_eq!((c.tt, c.rr, c.i), (0, 1, 0));
    }

    #[test]
    fn ifmaps_go_by_image_column_block_row_channel_and_psums_by_position_then_chain() {
        let l = layer(4, 5, 8, 3);
        let pb = Problem::of(&l);
        let m = mapping(2, 2, 2, 2);
        let v: Vec<IfmapValue> = ifmap_values(&m, &pb, 3).collect();
        assert_eq!(v.len(), (2 * pb.w_used() * 2 * 3 * 2) as usize);
        assert_eq!(
            v[1],
            IfmapValue {
                img: 0,
                col: 0,
                rr: 0,
                y: 0,
                c: 1
            }
        );
        assert_eq!(
            v[2],
            IfmapValue {
                img: 0,
                col: 0,
                rr: 0,
                y: 1,
                c: 0
            }
        );
        assert_eq!(
            v[6],
            IfmapValue {
                img: 0,
                col: 0,
                rr: 1,
                y: 0,
                c: 0
            }
        );
        assert_eq!(
            v[12],
            IfmapValue {
                img: 0,
                col: 1,
                rr: 0,
                y: 0,
                c: 0
            }
        );
        let p: Vec<(u64, u32, u32)> = psum_positions(&m, &pb, 2).take(5).collect();
        assert_eq!(
            p,
            vec![(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0)]
        );
        assert_eq!(psum_positions(&m, &pb, 2).count() as u32, 2 * pb.f * 2 * 2);
    }
}
