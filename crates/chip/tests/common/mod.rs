//! What the chip's layer tests share: run a layer on synthetic tensors, check the ofmap against
//! the reference convolution (called here, independently of the chip crate) and the counted
//! accesses against the mapper's closed form.

use rowsim_chip::{run_layer, LayerRun, RunOptions};
use rowsim_config::HwConfig;
use rowsim_datapath::rlc::RlcFormat;
use rowsim_mapper::{predict, DataTotals, ExactData, Mapping, Problem};
use rowsim_workload::{reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats};

pub fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Runs `l` with mapping `m` on the tensors of `seed`; panics unless the ofmap equals the
/// reference and the counts equal the mapper's prediction.
pub fn run_and_check(l: &ConvLayer, hw: &HwConfig, m: &Mapping, seed: u64) -> LayerRun {
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(l, seed, fmt);
    let w = synthetic_weights(l, seed, fmt);
    let run = run_layer(
        hw,
        l,
        m,
        &x,
        &w,
        &RunOptions {
            mac: fmt.mac(),
            ..Default::default()
        },
    )
    .unwrap();
    let (want, _) = reference_conv(l, &x, &w, fmt.mac(), hw.datapath.relu).unwrap();
    assert!(
        run.ofmap == want,
        "{} with {m}: the ofmap differs from the reference",
        l.name
    );
    // The cycle account: every core cycle is a pass running or a wait between passes.
    let c = run.controller;
    assert_eq!(
        run.core_cycles,
        c.processing_cycles + c.idle_config + c.idle_loads + c.idle_psum_slot + c.idle_after,
        "{} with {m}: the cycle account does not add up to the run's cycles",
        l.name
    );
    assert_eq!(c.processing_cycles, run.processing_cycles);
    assert_eq!((c.passes_done, c.loads_done), (c.passes, c.loads));
    let pb = Problem::lowered(l, m.dataflow);
    let data = ExactData {
        layer: l,
        ifmap: &x,
        ofmap: &run.ofmap,
        rlc: RlcFormat::EYERISS,
        ifmap_coded: !l.first,
    };
    let predicted = predict(&pb, m, run.counts.pes_used, &DataTotals::on(&pb, &data, hw));
    assert_eq!(
        run.counts, predicted,
        "{} with {m}: counted accesses differ from the mapper's",
        l.name
    );
    // The PE cycle account: every cycle of every PE used, once; its MAC and gated cycles are
    // the MACs the closed form predicts.
    let pc = run.pe_cycles;
    assert_eq!(
        pc.total(),
        predicted.pes_used as u64 * run.core_cycles,
        "{} with {m}: the PE cycle account",
        l.name
    );
    assert_eq!(pc.mac, predicted.macs - predicted.macs_gated);
    assert_eq!(pc.gated, predicted.macs_gated);
    assert_eq!(pc.config, predicted.pes_used as u64 * c.idle_config);
    // The heatmap's data: one entry a PE used, each on its own place, their MAC slots the MACs.
    let u = &run.pe_utilization;
    assert_eq!(u.len() as u32, predicted.pes_used);
    let places: std::collections::BTreeSet<(u32, u32)> = u.iter().map(|p| (p.row, p.col)).collect();
    assert_eq!(places.len(), u.len());
    assert_eq!(u.iter().map(|p| p.mac_slots).sum::<u64>(), predicted.macs);
    // The closed-form bound is a lower bound.
    let bound = rowsim_mapper::cycle_bound(&pb, m, hw, &predicted);
    assert!(
        bound.total <= run.core_cycles,
        "{} with {m}: {} cycles, under the bound {}",
        l.name,
        run.core_cycles,
        bound.total
    );
    run
}
