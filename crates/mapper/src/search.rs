//! Every legal mapping of a layer, priced and ranked.

use rowsim_config::HwConfig;
use rowsim_workload::ConvLayer;
use serde::Serialize;

use crate::bound::cycle_bound;
use crate::counts::{predict, Counts, Energy};
use crate::data::{DataModel, DataTotals};
use crate::dataflow::Dataflow;
use crate::mapping::{check_layer, MapError, Mapping, Problem};

/// A legal mapping with its counts, energy and lower bound on cycles.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub mapping: Mapping,
    pub counts: Counts,
    pub energy: Energy,
    /// The closed-form lower bound on the layer's core cycles ([`cycle_bound`]).
    pub delay: u64,
    /// PEs at work averaged over the layer's passes ([`Mapping::active_pes`]).
    pub active_pes: f64,
}

/// What a mapping is chosen for: least energy (the default), least delay (the cycle bound),
/// least energy-delay product, or the way the chip's compiler chose (`chip`: the most PEs at
/// work averaged over the passes, [`Mapping::active_pes`], then least energy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    #[default]
    Energy,
    Delay,
    Edp,
    Chip,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Energy => "energy",
            Objective::Delay => "delay",
            Objective::Edp => "edp",
            Objective::Chip => "chip",
        }
    }

    /// The value ranked, smaller first.
    pub fn cost(self, r: &Ranked) -> f64 {
        match self {
            Objective::Energy => r.energy.total,
            Objective::Delay => r.delay as f64,
            Objective::Edp => r.energy.total * r.delay as f64,
            // Exact: the mean is a quotient of integers, and equal quotients divide to the
            // same double, so ties fall through to energy.
            Objective::Chip => -r.active_pes,
        }
    }
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "energy" => Ok(Objective::Energy),
            "delay" => Ok(Objective::Delay),
            "edp" => Ok(Objective::Edp),
            "chip" => Ok(Objective::Chip),
            _ => Err(format!(
                "`{s}` is not an objective: energy, delay, edp or chip"
            )),
        }
    }
}

/// Sorts mappings by `objective`; ties go to less energy, fewer passes, more PEs, then the
/// smaller letters, so the ranking is the same on every run.
pub fn rank(out: &mut [Ranked], objective: Objective) {
    // The order is found on indices (a stable sort, so ties keep their order as a sort of the
    // mappings themselves would) and the mappings moved once into it: a mapping's counts are
    // large, and a sort moves its elements many times.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&i, &j| ranking(objective, &out[i], &out[j]));
    permute(out, order);
}

/// The order [`rank`] puts two mappings in: the objective's cost, then energy, fewer passes,
/// more PEs used, and the smaller (m, n, e, p, q, r, t).
pub fn ranking(objective: Objective, a: &Ranked, b: &Ranked) -> std::cmp::Ordering {
    objective
        .cost(a)
        .total_cmp(&objective.cost(b))
        .then(a.energy.total.total_cmp(&b.energy.total))
        .then(a.counts.passes.cmp(&b.counts.passes))
        .then(b.counts.pes_used.cmp(&a.counts.pes_used))
        .then(a.mapping.cmp(&b.mapping))
}

/// Puts `items[order[k]]` at `k` for every `k` (`order` a permutation of the indices), one
/// cycle of the permutation after another.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    const DONE: usize = usize::MAX;
    for start in 0..items.len() {
        if order[start] == DONE {
            continue;
        }
        let mut at = start;
        loop {
            let from = std::mem::replace(&mut order[at], DONE);
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

fn divisors(x: u32) -> Vec<u32> {
    (1..=x).filter(|d| x.is_multiple_of(*d)).collect()
}

/// Every legal row-stationary mapping, cheapest first (see [`enumerate_for`]).
pub fn enumerate(
    layer: &ConvLayer,
    hw: &HwConfig,
    data: &dyn DataModel,
) -> Result<Vec<Ranked>, MapError> {
    enumerate_for(layer, hw, data, Dataflow::Rs)
}

/// Every legal mapping of `dataflow`, cheapest first. Ties (equal energy) go to fewer passes,
/// then more PEs used, then the smaller (m, n, e, p, q, r, t): the ranking is the same on
/// every run.
pub fn enumerate_for(
    layer: &ConvLayer,
    hw: &HwConfig,
    data: &dyn DataModel,
    dataflow: Dataflow,
) -> Result<Vec<Ranked>, MapError> {
    check_layer(layer, hw)?;
    let pb = Problem::lowered(layer, dataflow);
    let totals = DataTotals::on(&pb, data, hw);
    let mut strips = crate::counts::StripCache::default();
    let mut out = Vec::new();
    // Why the last candidate was refused, said only if none is legal.
    let mut last = None;
    // On a machine with compressed weights, each (p, q)'s rows sized from the weights when
    // known: a sparse layer may fit mappings a dense one cannot.
    let compressed = hw.spad.filter.compressed;
    for mapping in candidates(&pb, hw, dataflow) {
        let checked = if compressed {
            let rows = strips.rows(&pb, mapping.p, mapping.q, data.weights());
            mapping.check_rows(&pb, hw, Some(rows))
        } else {
            mapping.check(&pb, hw)
        };
        match checked {
            Ok(place) => {
                let counts = crate::counts::predict_with(
                    &pb,
                    &mapping,
                    place.pes_used,
                    &totals,
                    &mut strips,
                );
                let energy = counts.energy(hw);
                let delay = cycle_bound(&pb, &mapping, hw, &counts).total;
                out.push(Ranked {
                    mapping,
                    counts,
                    energy,
                    delay,
                    active_pes: mapping.active_pes(&pb),
                });
            }
            Err(e) => last = Some(e),
        }
    }
    if out.is_empty() {
        return Err(MapError::NoMapping {
            dataflow,
            layer: layer.name.clone(),
            machine: hw.machine.name.clone(),
            why: last.map_or_else(|| why_no_candidate(&pb, hw), |e| e.to_string()),
        });
    }
    rank(&mut out, Objective::Energy);
    Ok(out)
}

/// The first legal mapping of `dataflow` in the search's order, without pricing any: whether the
/// layer can run on the machine at all, answered fast; the same refusal as
/// [`enumerate_for`] when it cannot.
pub fn first_legal(
    layer: &ConvLayer,
    hw: &HwConfig,
    dataflow: Dataflow,
) -> Result<Mapping, MapError> {
    check_layer(layer, hw)?;
    let pb = Problem::lowered(layer, dataflow);
    let mut last = None;
    for mapping in candidates(&pb, hw, dataflow) {
        match mapping.check(&pb, hw) {
            Ok(_) => return Ok(mapping),
            Err(e) => last = Some(e),
        }
    }
    Err(MapError::NoMapping {
        dataflow,
        layer: layer.name.clone(),
        machine: hw.machine.name.clone(),
        why: last.map_or_else(|| why_no_candidate(&pb, hw), |e| e.to_string()),
    })
}

/// Why the search would try no candidate at all, naming the limit.
fn why_no_candidate(pb: &Problem, hw: &HwConfig) -> String {
    let sp = &hw.spad;
    if pb.s > sp.ifmap.entries {
        format!(
            "a filter row of S = {} weights needs {} ifmap-spad entries for one channel; the ifmap spad (spad.ifmap.entries) has {}",
            pb.s, pb.s, sp.ifmap.entries
        )
    } else if pb.s > sp.filter.entries {
        format!(
            "a filter row of S = {} weights needs {} filter-spad entries; the filter spad (spad.filter.entries) has {}",
            pb.s, pb.s, sp.filter.entries
        )
    } else if hw.array.rows < pb.r {
        format!(
            "a filter of R = {} rows needs {} PEs in a column; the array (array.rows) has {}",
            pb.r, pb.r, hw.array.rows
        )
    } else {
        String::from("no candidate was tried")
    }
}

/// Every candidate the search tries, in its order: (n, m, q, r, p, t, e), each letter within
/// what the spads and the array allow.
fn candidates<'a>(
    pb: &'a Problem,
    hw: &'a HwConfig,
    dataflow: Dataflow,
) -> impl Iterator<Item = Mapping> + 'a {
    let sp = &hw.spad;
    let max_chain = hw.array.rows / pb.r;
    let max_e = pb.e.min(hw.array.cols * (hw.array.rows / pb.r).max(1));
    divisors(pb.n).into_iter().flat_map(move |n| {
        divisors(pb.m).into_iter().flat_map(move |m| {
            (1..=(sp.ifmap.entries / pb.s)).flat_map(move |q| {
                (1..=max_chain)
                    .filter(move |r| pb.c.is_multiple_of(q * r))
                    .flat_map(move |r| {
                        // Compressed, a row may hold up to the mask's bits of weights.
                        let slots = match (sp.filter.compressed, sp.filter.mask_bits) {
                            (true, Some(bits)) => bits.max(sp.filter.entries),
                            _ => sp.filter.entries,
                        };
                        let pmax = (slots / (q * pb.s)).min(sp.psum.entries);
                        (1..=pmax).filter(move |p| m % p == 0).flat_map(move |p| {
                            (1..=m / p)
                                .filter(move |t| m % (p * t) == 0)
                                .flat_map(move |t| {
                                    (1..=max_e).map(move |e| Mapping {
                                        dataflow,
                                        m,
                                        n,
                                        e,
                                        p,
                                        q,
                                        r,
                                        t,
                                    })
                                })
                        })
                    })
            })
        })
    })
}

/// The cheapest legal row-stationary mapping.
pub fn best(layer: &ConvLayer, hw: &HwConfig, data: &dyn DataModel) -> Result<Ranked, MapError> {
    best_for(layer, hw, data, Dataflow::Rs)
}

/// The cheapest legal mapping of `dataflow`.
pub fn best_for(
    layer: &ConvLayer,
    hw: &HwConfig,
    data: &dyn DataModel,
    dataflow: Dataflow,
) -> Result<Ranked, MapError> {
    Ok(enumerate_for(layer, hw, data, dataflow)?.remove(0))
}

/// A pinned mapping, checked and priced.
pub fn evaluate(
    layer: &ConvLayer,
    hw: &HwConfig,
    mapping: Mapping,
    data: &dyn DataModel,
) -> Result<Ranked, MapError> {
    check_layer(layer, hw)?;
    let pb = Problem::lowered(layer, mapping.dataflow);
    let rows = hw
        .spad
        .filter
        .compressed
        .then(|| crate::sparse::FilterRows::of(&pb, mapping.p, mapping.q, data.weights()));
    let place = mapping.check_rows(&pb, hw, rows.as_ref())?;
    let counts = predict(
        &pb,
        &mapping,
        place.pes_used,
        &DataTotals::on(&pb, data, hw),
    );
    let energy = counts.energy(hw);
    let delay = cycle_bound(&pb, &mapping, hw, &counts).total;
    Ok(Ranked {
        mapping,
        counts,
        energy,
        delay,
        active_pes: mapping.active_pes(&pb),
    })
}

/// The data model for pricing a layer before any data exists: its own zero fraction for the
/// ifmap, half zeros for the ofmap, the config's RLC format, and the first layer's input raw
/// unless the config codes it.
pub fn expected_data<'a>(
    layer: &'a ConvLayer,
    hw: &HwConfig,
) -> Result<crate::data::ExpectedData<'a>, MapError> {
    let r = &hw.rlc;
    let rlc = rowsim_datapath::rlc::RlcFormat::new(
        r.run_bits,
        r.level_bits,
        r.pairs_per_word,
        r.word_bits,
    )
    .map_err(|why| MapError::Shape {
        layer: layer.name.clone(),
        why,
    })?;
    Ok(crate::data::ExpectedData {
        layer,
        rlc,
        ifmap_coded: r.codes_ifmap(layer.first),
        ofmap_coded: r.codes_ofmap(),
        ifmap_zero_fraction: layer.ifmap_zero_fraction,
        ofmap_zero_fraction: 0.5,
        weights: None,
    })
}

/// The cheapest legal row-stationary mapping of a layer, priced with [`expected_data`].
pub fn choose(layer: &ConvLayer, hw: &HwConfig) -> Result<Mapping, MapError> {
    choose_for(layer, hw, Dataflow::Rs)
}

/// The cheapest legal mapping of `dataflow`, priced with [`expected_data`].
pub fn choose_for(
    layer: &ConvLayer,
    hw: &HwConfig,
    dataflow: Dataflow,
) -> Result<Mapping, MapError> {
    choose_with(layer, hw, dataflow, Objective::Energy)
}

/// The best legal mapping of `dataflow` for `objective`, priced with [`expected_data`].
pub fn choose_with(
    layer: &ConvLayer,
    hw: &HwConfig,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<Mapping, MapError> {
    let mut all = enumerate_for(layer, hw, &expected_data(layer, hw)?, dataflow)?;
    rank(&mut all, objective);
    Ok(all.remove(0).mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Moving the items along the permutation's cycles puts each where the order says.
        #[test]
        fn permute_puts_each_item_where_the_order_says(
            order in (0usize..40).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let items: Vec<usize> = (0..order.len()).map(|i| i * 7 + 3).collect();
            let want: Vec<usize> = order.iter().map(|&k| items[k]).collect();
            let mut got = items;
            permute(&mut got, order);
            prop_assert_eq!(got, want);
        }
    }
}
