//! A layer beyond the chip's limits, run in parts ([`rowsim_mapper::Split`]) and assembled.

use std::borrow::Cow;
use std::ops::Range;

use rowsim_config::HwConfig;
use rowsim_mapper::{Mapping, Part, Split};
use rowsim_workload::{Tensor, Weights};

use crate::layer::{run_checked, ChipError, RunOptions};
use crate::stats::LayerStats;

/// A layer's run, whole or in parts.
#[derive(Clone, Debug)]
pub struct SplitRun {
    /// The layer's output: the chip's, or its parts' assembled.
    pub ofmap: Tensor,
    /// The layer's statistics (for a split layer, the parts' sums with each part's inside).
    pub stats: LayerStats,
}

/// The host memory a run of `split` holds at its peak, in bytes, from its shapes alone (as
/// [`crate::host_bytes`], which it is for a layer in one part): one part's run at a time (its
/// own tensors, DRAM image and row maps; its weights made as it starts, see [`run_parts`]),
/// beside the whole layer's ifmap and its output twice (the parts' assembled, and the
/// parts' outputs before), and the whole layer's weights when they are `held` (read from a
/// file or pruned) rather than made a block of filters at a time. Saturates at `u64::MAX`.
pub fn host_bytes(split: &Split, held: bool) -> u64 {
    let whole = &split.whole;
    if !split.is_split() {
        return crate::host_bytes(whole);
    }
    let part = split
        .parts
        .iter()
        .map(|p| crate::host_bytes(&p.layer))
        .max()
        .unwrap_or(0);
    let values = |a: [u32; 4]| a.iter().map(|&x| x as u128).product::<u128>();
    let ifmap = values([whole.n, whole.c, whole.h, whole.w]);
    let ofmap = values([whole.n, whole.m, whole.e(), whole.f()]);
    let weights = if held {
        values([whole.m, whole.cg(), whole.r, whole.s])
    } else {
        0
    };
    let own = ifmap
        .saturating_add(ofmap.saturating_mul(2))
        .saturating_add(weights)
        .saturating_mul(2);
    u64::try_from(own.saturating_add(part as u128)).unwrap_or(u64::MAX)
}

/// Whether a part of `split` reads out with ReLU: the configured ReLU (`relu`) when its output
/// is final, none when the parts' psums are still to be added.
pub fn part_relu(split: &Split, relu: bool) -> bool {
    relu && !split.accumulates()
}

/// The layer's output and statistics from its parts' (in part order), checked against the
/// reference convolution of the whole layer: ReLU (`relu`) after the parts are added. The
/// reference is made a block of filters at a time (`filter_blocks`); `made` holds those
/// already made (see [`run_parts`]), the others are made here from `weights`.
#[allow(clippy::too_many_arguments)] // the parts, the layer's tensors and the arithmetic
pub fn assemble(
    split: &Split,
    outs: &[Tensor],
    parts: Vec<LayerStats>,
    ifmap: &Tensor,
    weights: &Weights,
    made: Vec<(Range<u32>, Tensor)>,
    opts: &RunOptions,
    relu: bool,
) -> Result<SplitRun, ChipError> {
    let ofmap = split.assemble(outs, relu);
    let mut made = made.into_iter();
    let verified = matches_reference(&split.whole, &ofmap, &filter_blocks(split), |m| match made
        .find(|(b, _)| *b == m)
    {
        Some((_, want)) => Ok(want),
        None => block_reference(
            &split.whole,
            ifmap,
            &weights.filters(m.clone()),
            m,
            opts.mac,
            relu,
        ),
    })?;
    let stats = LayerStats::combine(
        &split.whole,
        split.describe(),
        parts,
        ifmap.zero_fraction(),
        verified,
    );
    Ok(SplitRun { ofmap, stats })
}

/// The blocks of filters the whole layer's reference is made in: the parts' filter ranges (so
/// that no more of the weights is made or held at once than a part needs), or all filters in
/// one for grouped filters (a block of them is not a layer of its own) or ranges that do not
/// tile `0..M` in order.
fn filter_blocks(split: &Split) -> Vec<Range<u32>> {
    let whole = &split.whole;
    let mut blocks: Vec<Range<u32>> = Vec::new();
    for p in &split.parts {
        if blocks.last() != Some(&p.m) {
            blocks.push(p.m.clone());
        }
    }
    let tiles = blocks.first().is_some_and(|b| b.start == 0)
        && blocks.windows(2).all(|w| w[0].end == w[1].start)
        && blocks.last().is_some_and(|b| b.end == whole.m);
    if whole.groups > 1 || !tiles {
        return std::iter::once(0..whole.m).collect();
    }
    blocks
}

/// The reference convolution of filters `m` of layer `whole` (`filters` are theirs), with ReLU
/// if `relu`: `[N][m][E][F]`.
fn block_reference(
    whole: &rowsim_workload::ConvLayer,
    ifmap: &Tensor,
    filters: &Tensor,
    m: Range<u32>,
    mac: rowsim_datapath::mac::MacConfig,
    relu: bool,
) -> Result<Tensor, ChipError> {
    let mut l = whole.clone();
    l.m = m.len() as u32;
    rowsim_workload::reference_conv(&l, ifmap, filters, mac, relu)
        .map(|(want, _)| want)
        .map_err(ChipError::Setup)
}

/// Whether `ofmap` (the whole layer's, `[N][M][E][F]`) equals the reference convolution of each
/// block of its filters, `reference(block)` (`[N][block][E][F]`), made one block at a time: the
/// outputs of a filter depend on no other filter, so the blocks' references are the whole
/// layer's, filter for filter.
fn matches_reference(
    whole: &rowsim_workload::ConvLayer,
    ofmap: &Tensor,
    blocks: &[Range<u32>],
    mut reference: impl FnMut(Range<u32>) -> Result<Tensor, ChipError>,
) -> Result<bool, ChipError> {
    let [n, m, e, f] = rowsim_workload::ofmap_dims(whole);
    if ofmap.dims != [n, m, e, f] {
        return Ok(false);
    }
    let plane = e * f;
    for b in blocks {
        let want = reference(b.clone())?;
        let k = b.len();
        if want.dims != [n, k, e, f] {
            return Ok(false);
        }
        for i in 0..n {
            let got = &ofmap.data[(i * m + b.start as usize) * plane..][..k * plane];
            if got != &want.data[i * k * plane..][..k * plane] {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Runs a layer, whole or in parts: `run_part` runs each part on its data (the whole tensors
/// for a layer in one part; else its weights from the block of its filters, made as it starts
/// when they are synthetic and shared with the next part when it has the same filters, and its
/// ifmap sliced from the whole unless it takes all of it) with its readout ReLU
/// (`relu` when its output is final, none when its psums are still to be added) and returns its
/// statistics and output, or `None` to stop (an interrupted run: then this returns `None`
/// too). A split layer's outputs are assembled and checked against the whole layer's
/// reference ([`assemble`]); a whole layer's statistics are its one part's.
pub fn run_parts<E: From<ChipError>>(
    split: &Split,
    ifmap: &Tensor,
    weights: &Weights,
    mac: rowsim_datapath::mac::MacConfig,
    relu: bool,
    mut run_part: impl FnMut(&Part, &Tensor, &Tensor, bool) -> Result<Option<(LayerStats, Tensor)>, E>,
) -> Result<Option<SplitRun>, E> {
    let mut parts = Vec::new();
    let mut outs = Vec::new();
    let whole = &split.whole;
    // The block of filters the part before took its weights from: the parts of a filter
    // block split by channels take theirs from it too.
    let mut block: Option<(Range<u32>, Cow<'_, Tensor>)> = None;
    // The whole layer's reference, made a block of filters at a time as each is made for its
    // parts (so that the check after them does not make the weights again).
    let checked = if split.is_split() {
        filter_blocks(split)
    } else {
        Vec::new()
    };
    let mut made = Vec::new();
    for part in &split.parts {
        if block.as_ref().is_none_or(|(m, _)| *m != part.m) {
            // The one before freed before the next is made.
            drop(block.take());
            let filters = weights.filters(part.m.clone());
            if checked.contains(&part.m) {
                let m = part.m.clone();
                made.push((
                    m.clone(),
                    block_reference(whole, ifmap, &filters, m, mac, relu)?,
                ));
            }
            block = Some((part.m.clone(), filters));
        }
        let Some((_, filters)) = &block else {
            unreachable!("a block was just made")
        };
        let w = if !split.is_split() || part.whole_filters(whole) {
            Cow::Borrowed(filters.as_ref())
        } else {
            Cow::Owned(part.weights_in(filters, part.m.start))
        };
        let x = if part.c == (0..whole.c) && part.rows == (0..whole.h) && part.cols == (0..whole.w)
        {
            Cow::Borrowed(ifmap)
        } else {
            Cow::Owned(part.ifmap(ifmap))
        };
        let Some((stats, ofmap)) = run_part(part, &x, &w, part_relu(split, relu))? else {
            return Ok(None);
        };
        parts.push(stats);
        outs.push(ofmap);
    }
    if !split.is_split() {
        return Ok(Some(SplitRun {
            ofmap: outs.remove(0),
            stats: parts.remove(0),
        }));
    }
    let opts = RunOptions {
        mac,
        ..Default::default()
    };
    drop(block);
    Ok(Some(assemble(
        split, &outs, parts, ifmap, weights, made, &opts, relu,
    )?))
}

/// Runs a layer, whole or in parts ([`run_parts`]), each part checked against its reference
/// convolution and the assembled output against the whole layer's; `mapping` chooses each
/// part's mapping from the part and its weights (a machine with compressed weights sizes the
/// rows from them). `opts.relu` (or the config's) is the layer's ReLU.
pub fn run_split(
    hw: &HwConfig,
    split: &Split,
    ifmap: &Tensor,
    weights: &Weights,
    seed: u64,
    opts: &RunOptions,
    mapping: &mut dyn FnMut(&rowsim_workload::ConvLayer, &Tensor) -> Result<Mapping, String>,
) -> Result<SplitRun, ChipError> {
    let relu = opts.relu_on(hw);
    let ran = run_parts(split, ifmap, weights, opts.mac, relu, |part, x, w, relu| {
        let m = mapping(&part.layer, w).map_err(ChipError::Setup)?;
        let o = RunOptions {
            relu: Some(relu),
            ..opts.clone()
        };
        let c = run_checked(hw, &part.layer, &m, x, w, &o)?;
        let mut s = LayerStats::new(hw, &part.layer, seed, &c.run, x.zero_fraction(), c.verified);
        s.host = Some(c.host);
        Ok::<_, ChipError>(Some((s, c.run.ofmap)))
    })?;
    ran.ok_or_else(|| ChipError::Setup("a part stopped".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowsim_workload::{reference_conv, synthetic_ifmap, ConvLayer, Formats};

    fn layer(groups: u32) -> ConvLayer {
        ConvLayer {
            name: "t".into(),
            n: 2,
            c: 4,
            h: 5,
            w: 5,
            m: 6,
            r: 3,
            s: 3,
            stride_v: 1,
            stride_h: 1,
            pad: 1,
            groups,
            ifmap_zero_fraction: 0.2,
            first: false,
        }
    }

    /// A split of `l` whose parts take the filter ranges `ms` in order.
    fn split_of(l: &ConvLayer, ms: &[Range<u32>]) -> Split {
        Split {
            whole: l.clone(),
            parts: ms
                .iter()
                .map(|m| Part {
                    layer: l.clone(),
                    m: m.clone(),
                    c: 0..l.c,
                    rows: 0..l.h,
                    cols: 0..l.w,
                })
                .collect(),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn the_reference_is_made_in_the_parts_filter_blocks_or_whole() {
        let l = layer(1);
        // Parts of one filter block split by channels share it.
        let s = split_of(&l, &[0..2, 0..2, 2..5, 2..5, 5..6]);
        assert_eq!(filter_blocks(&s), vec![0..2, 2..5, 5..6]);
        // Grouped filters, or ranges that do not tile 0..M in order: all at once.
        assert_eq!(
            filter_blocks(&split_of(&layer(2), &[0..3, 3..6])),
            vec![0..6]
        );
        assert_eq!(filter_blocks(&split_of(&l, &[0..3, 4..6])), vec![0..6]);
        assert_eq!(filter_blocks(&split_of(&l, &[3..6, 0..3])), vec![0..6]);
        let short = [0..3, 3..5];
        assert_eq!(filter_blocks(&split_of(&l, &short)), vec![0..6]);
    }

    /// The whole layer's reference made block by block accepts its own output and refuses
    /// any one value changed, in any block and image.
    #[test]
    fn a_reference_made_in_blocks_checks_every_filter_of_every_image() {
        let l = layer(1);
        let fmt = Formats::DEFAULT;
        let x = synthetic_ifmap(&l, 4, fmt);
        let weights = Weights::Synthetic {
            layer: l.clone(),
            seed: 4,
            fmt,
        };
        let (whole, _) = reference_conv(&l, &x, &weights.whole(), fmt.mac(), false).unwrap();
        let blocks = [0..2, 2..5, 5..6];
        let check = |ofmap: &Tensor| {
            matches_reference(&l, ofmap, &blocks, |m| {
                let mut b = l.clone();
                b.m = m.len() as u32;
                Ok(
                    reference_conv(&b, &x, &weights.filters(m), fmt.mac(), false)
                        .unwrap()
                        .0,
                )
            })
            .unwrap()
        };
        assert!(check(&whole));
        for at in [
            [0, 0, 0, 0],
            [1, 1, 4, 4],
            [0, 2, 2, 3],
            [1, 4, 0, 1],
            [1, 5, 4, 4],
        ] {
            let mut bad = whole.clone();
            bad.set(at, whole.get(at).wrapping_add(1));
            assert!(!check(&bad), "a change at {at:?} went unseen");
        }
        let mut short = whole.clone();
        short.dims[1] = 5;
        short.data.truncate(2 * 5 * 25);
        assert!(!check(&short));
    }
}
