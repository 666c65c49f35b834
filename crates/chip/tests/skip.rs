//! Zero skipping (`datapath.zero_skipping`, the eyeriss-v1-skip machine): bit-exact against the
//! reference convolution, every count equal to the closed form with the weights' zeros, the
//! same run event-driven as stepped at every edge, and the MAC-slot cycles saved against
//! gating equal to a closed form from the nonzero counts: `skipped - positions`.

use rowsim_chip::LayerRun;
use rowsim_config::HwConfig;
use rowsim_mapper::{choose, Mapping};
use rowsim_workload::{synthetic_ifmap, synthetic_weights, ConvLayer, Formats, Tensor};

mod common;
use common::{hw, pruned, run_and_check_on, tiny_net};

/// `hw` with zero skipping on (index reads at half a spad access, as eyeriss-v1-skip).
fn skipping(mut hw: HwConfig) -> HwConfig {
    hw.datapath.zero_skipping = true;
    hw.energy.skip_index = Some(0.5);
    hw
}

/// Gate and skip on the same tensors: both bit-exact with closed-form counts; the same ofmap;
/// skip's PE cycles spent on MAC slots and index reads = gate's less `skipped - positions`.
fn gate_and_skip(
    l: &ConvLayer,
    gate_hw: &HwConfig,
    x: &Tensor,
    w: &Tensor,
) -> (LayerRun, LayerRun) {
    let skip_hw = skipping(gate_hw.clone());
    let m: Mapping = choose(l, gate_hw).unwrap();
    let gate = run_and_check_on(l, gate_hw, &m, x, w);
    let skip = run_and_check_on(l, &skip_hw, &m, x, w);
    assert!(gate.ofmap == skip.ofmap, "{}", l.name);
    let (g, s) = (gate.pe_cycles, skip.pe_cycles);
    let slots = skip.counts.macs;
    let skipped = skip.counts.macs_gated;
    let positions = slots / (m.p * m.q * l.s) as u64;
    assert_eq!(g.mac + g.gated, slots);
    assert_eq!(s.mac, slots - skipped);
    assert_eq!(s.index, positions);
    assert_eq!(
        (g.mac + g.gated) - (s.mac + s.index),
        skipped - positions,
        "{}: MAC-slot cycles saved",
        l.name
    );
    // Skipping skips what gating gates, and zero weights besides.
    assert!(skipped >= gate.counts.macs_gated);
    assert!(skip.counts.index_reads > 0 && gate.counts.index_reads == 0);
    (gate, skip)
}

#[test]
fn the_tiny_network_skips_bit_exact_dense_and_pruned() {
    let tiny = hw("tiny");
    let fmt = Formats::DEFAULT;
    for (k, l) in tiny_net().iter().enumerate() {
        let x = synthetic_ifmap(l, 40 + k as u64, fmt);
        let w = synthetic_weights(l, 40 + k as u64, fmt);
        let (_, dense) = gate_and_skip(l, &tiny, &x, &w);
        let (gate, sparse) = gate_and_skip(l, &tiny, &x, &pruned(&w, 0.5));
        assert!(
            sparse.counts.macs_gated > dense.counts.macs_gated,
            "{}",
            l.name
        );
        // Pruned weights save the skip machine MAC energy that gating cannot.
        assert!(
            sparse.counts.macs_gated > gate.counts.macs_gated,
            "{}",
            l.name
        );
    }
}

/// Weights coded on the bus (`rlc.code_filters`, as eyeriss-v1-skip): bit-exact, the coded
/// filter words equal to the closed form (each pass's stream coded, from the weights), and
/// pruning shrinks them; gate and skip machines alike.
#[test]
fn coded_weights_cross_dram_in_their_closed_form_size() {
    let fmt = Formats::DEFAULT;
    for skip in [false, true] {
        let mut hw = hw("tiny");
        hw.rlc.code_filters = true;
        if skip {
            hw = skipping(hw);
        }
        for (k, l) in tiny_net().iter().enumerate() {
            let m = choose(l, &hw).unwrap();
            let x = synthetic_ifmap(l, 80 + k as u64, fmt);
            let w = synthetic_weights(l, 80 + k as u64, fmt);
            let dense = run_and_check_on(l, &hw, &m, &x, &w);
            let sparse = run_and_check_on(l, &hw, &m, &x, &pruned(&w, 0.3));
            assert!(dense.ofmap != sparse.ofmap || l.m == 0);
            assert!(
                sparse.counts.dram_reads.filter < dense.counts.dram_reads.filter,
                "{}: {} coded filter words pruned, {} dense",
                l.name,
                sparse.counts.dram_reads.filter,
                dense.counts.dram_reads.filter
            );
        }
    }
}

/// A corrupt coded weight stream stops the run with the RLC decoder's error, naming the
/// component, the word and the cycle: never a panic.
#[test]
fn a_corrupt_coded_weight_stream_is_an_error_naming_where() {
    let mut hw = hw("tiny");
    hw.rlc.code_filters = true;
    let l = tiny_net().remove(2);
    let m = choose(&l, &hw).unwrap();
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(&l, 3, fmt), synthetic_weights(&l, 3, fmt));
    let opts = rowsim_chip::RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let mut sim = rowsim_chip::LayerSim::new(&hw, &l, &m, &x, &w, &opts).unwrap();
    let (_, addr, words) = sim.filter_streams()[0];
    assert!(words > 0);
    // Every pair's run at its largest, levels nonzero, the unused top bit set: past the stream.
    sim.dram_memory_mut().unwrap()[addr as usize] = u64::MAX;
    let err = loop {
        match sim.run_for(1 << 12) {
            Ok(true) => continue,
            Ok(false) => panic!("the corrupt stream was accepted"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("top.chip.rlc_in") && err.contains("RLC word"),
        "{err}"
    );
    assert!(err.contains("cycle"), "{err}");
    eprintln!("{err}");
}

#[test]
fn skipping_is_the_same_run_event_driven_as_stepped_at_every_edge() {
    let tiny = skipping(hw("tiny"));
    let fmt = Formats::DEFAULT;
    for (k, l) in tiny_net().iter().enumerate() {
        let m = choose(l, &tiny).unwrap();
        let x = synthetic_ifmap(l, 60 + k as u64, fmt);
        let w = pruned(&synthetic_weights(l, 60 + k as u64, fmt), 0.6);
        common::event_driven_equals_every_edge_on(
            &tiny,
            l,
            &m,
            60 + k as u64,
            rowsim_kernel::StepOrder::Registration,
            &x,
            &w,
        );
    }
}

#[test]
fn the_skip_machine_config_is_eyeriss_v1_with_skipping() {
    let v1 = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1")).unwrap();
    let skip = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1-skip")).unwrap();
    assert!(skip.datapath.zero_skipping && !v1.datapath.zero_skipping);
    assert_eq!(skip.energy.skip_index, Some(0.5));
    assert!(skip.rlc.code_filters && !v1.rlc.code_filters);
    let mut same = skip.clone();
    same.datapath.zero_skipping = false;
    same.energy.skip_index = None;
    same.rlc.code_filters = false;
    same.machine = v1.machine.clone();
    assert_eq!(same, v1);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn alexnet_conv5_skips_bit_exact_dense_and_pruned() {
    let v1 = hw("eyeriss-v1");
    let l = rowsim_workload::layer("alexnet:conv5").unwrap();
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(&l, 7, fmt);
    let w = synthetic_weights(&l, 7, fmt);
    for (what, w) in [("dense", w.clone()), ("pruned to 50%", pruned(&w, 0.5))] {
        let t = std::time::Instant::now();
        let (gate, skip) = gate_and_skip(&l, &v1, &x, &w);
        let skip_hw = skipping(v1.clone());
        eprintln!(
            "alexnet:conv5 {what}: gate {} cycles, {:.4e} energy; skip {} cycles, {:.4e} energy; MACs gated {}, skipped {} of {} ({:.1} s)",
            gate.core_cycles,
            gate.counts.energy(&v1).total,
            skip.core_cycles,
            skip.counts.energy(&skip_hw).total,
            gate.counts.macs_gated,
            skip.counts.macs_gated,
            skip.counts.macs,
            t.elapsed().as_secs_f64()
        );
    }
}
