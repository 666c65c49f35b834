//! A layer beyond the chip's limits, run in parts ([`rowsim_mapper::Split`]) and assembled.

use std::borrow::Cow;

use rowsim_config::HwConfig;
use rowsim_mapper::{Mapping, Part, Split};
use rowsim_workload::Tensor;

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

/// Whether a part of `split` reads out with ReLU: the configured ReLU (`relu`) when its output
/// is final, none when the parts' psums are still to be added.
pub fn part_relu(split: &Split, relu: bool) -> bool {
    relu && !split.accumulates()
}

/// The layer's output and statistics from its parts' (in part order), checked against the
/// reference convolution of the whole layer: ReLU (`relu`) after the parts are added.
pub fn assemble(
    split: &Split,
    outs: &[Tensor],
    parts: Vec<LayerStats>,
    ifmap: &Tensor,
    weights: &Tensor,
    opts: &RunOptions,
    relu: bool,
) -> Result<SplitRun, ChipError> {
    let ofmap = split.assemble(outs, relu);
    let (want, _) = rowsim_workload::reference_conv(&split.whole, ifmap, weights, opts.mac, relu)
        .map_err(ChipError::Setup)?;
    let verified = ofmap == want;
    let stats = LayerStats::combine(
        &split.whole,
        split.describe(),
        parts,
        ifmap.zero_fraction(),
        verified,
    );
    Ok(SplitRun { ofmap, stats })
}

/// Runs a layer, whole or in parts: `run_part` runs each part on its data (sliced from the
/// whole layer's tensors, or the whole tensors for a layer in one part) with its readout ReLU
/// (`relu` when its output is final, none when its psums are still to be added) and returns its
/// statistics and output, or `None` to stop (an interrupted run: then this returns `None`
/// too). A split layer's outputs are assembled and checked against the whole layer's
/// reference ([`assemble`]); a whole layer's statistics are its one part's.
pub fn run_parts<E: From<ChipError>>(
    split: &Split,
    ifmap: &Tensor,
    weights: &Tensor,
    mac: rowsim_datapath::mac::MacConfig,
    relu: bool,
    mut run_part: impl FnMut(&Part, &Tensor, &Tensor, bool) -> Result<Option<(LayerStats, Tensor)>, E>,
) -> Result<Option<SplitRun>, E> {
    let mut parts = Vec::new();
    let mut outs = Vec::new();
    for part in &split.parts {
        let (x, w) = if split.is_split() {
            (
                Cow::Owned(part.ifmap(ifmap)),
                Cow::Owned(part.weights(weights)),
            )
        } else {
            (Cow::Borrowed(ifmap), Cow::Borrowed(weights))
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
    Ok(Some(assemble(
        split, &outs, parts, ifmap, weights, &opts, relu,
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
    weights: &Tensor,
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
