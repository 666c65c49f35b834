//! Whole layers through the chip: bit-exact against the reference convolution, and every access
//! the components count equal to the mapper's closed form for the same mapping.

use rowsim_chip::{run_layer, RunOptions};
use rowsim_config::HwConfig;
use rowsim_mapper::{choose, enumerate, expected_data, Mapping};
use rowsim_workload::{reference_conv, synthetic_ifmap, synthetic_weights, ConvLayer, Formats};

mod common;
use common::{hw, layer, run_and_check, tiny_net};

fn check(l: &ConvLayer, hw: &HwConfig, mapping: Option<Mapping>, seed: u64) {
    let m = mapping.unwrap_or_else(|| choose(l, hw).unwrap());
    run_and_check(l, hw, &m, seed);
}

#[test]
fn a_small_layer_runs_bit_exact_with_the_predicted_accesses() {
    check(
        &layer("tiny:a", 1, 2, 6, 4, 3, 1, 1, 1, false),
        &hw("tiny"),
        None,
        1,
    );
}

#[test]
fn without_zero_gating_no_mac_is_gated_and_the_counts_still_equal_the_closed_form() {
    let mut hw = hw("tiny");
    hw.datapath.zero_gating = false;
    let l = layer("tiny:nogate", 1, 2, 6, 4, 3, 1, 1, 1, false);
    let run = run_and_check(&l, &hw, &choose(&l, &hw).unwrap(), 1);
    assert_eq!(run.counts.macs_gated, 0);
    assert_eq!(run.counts.spad_reads.filter, run.counts.macs);
}

/// The dense mode the ISCA 2016 analysis counts in (`rlc.code_feature_maps = false`, no zero
/// gating): feature maps cross the DRAM bus raw, four values to a 64-bit word; the ofmap read
/// back from DRAM is bit-exact and every count equals the closed form, and the DRAM words are
/// the raw sizes by hand.
#[test]
fn in_dense_mode_feature_maps_cross_the_dram_bus_raw() {
    let mut hw = hw("tiny");
    hw.rlc.code_feature_maps = false;
    hw.datapath.zero_gating = false;
    let l = layer("tiny:dense", 1, 2, 6, 4, 3, 1, 1, 1, false);
    let m = choose(&l, &hw).unwrap();
    let run = run_and_check(&l, &hw, &m, 1);
    // The ofmap: N x M x E rows of F = 6 values, each two 64-bit words (8 16-bit words).
    assert_eq!(run.counts.dram_writes.psum, 4 * 6 * 8);
    // Each ifmap row read is W = 6 values, two words: a multiple of 8, and at least every row
    // once.
    assert_eq!(run.counts.dram_reads.ifmap % 8, 0);
    assert!(run.counts.dram_reads.ifmap >= 2 * 6 * 8);
    assert_eq!(run.counts.macs_gated, 0);
    // Coded, the same layer moves fewer feature-map words (its ifmap is 40% zeros).
    let coded = run_and_check(&l, &self::hw("tiny"), &m, 1);
    assert_eq!(coded.ofmap, run.ofmap);
    assert!(coded.counts.dram_reads.ifmap < run.counts.dram_reads.ifmap);
}

#[test]
fn every_layer_of_the_tiny_network_is_bit_exact_under_several_mappings() {
    let hw = hw("tiny");
    for (k, l) in tiny_net().iter().enumerate() {
        let data = expected_data(l, &hw).unwrap();
        let all = enumerate(l, &hw, &data).unwrap();
        // The cheapest, the dearest, and a few between.
        let picks: Vec<usize> = vec![
            0,
            all.len() - 1,
            all.len() / 2,
            all.len() / 3,
            all.len() / 7,
        ];
        for i in picks {
            check(l, &hw, Some(all[i].mapping), 10 + k as u64);
        }
    }
}

#[test]
fn small_layers_on_eyeriss_are_bit_exact() {
    let hw = hw("eyeriss-v1");
    check(
        &layer("small:a", 2, 6, 12, 20, 3, 1, 1, 2, false),
        &hw,
        None,
        3,
    );
    check(
        &layer("small:b", 1, 3, 23, 8, 5, 2, 0, 1, true),
        &hw,
        None,
        4,
    );
}

#[test]
fn statistics_of_the_tiny_network() {
    // Snapshots of each layer's statistics JSON with the mapper's choice: any change to the
    // chip's timing, counts or energy shows up here for review.
    let hw = hw("tiny");
    let fmt = Formats::DEFAULT;
    for (k, l) in tiny_net().iter().enumerate() {
        let seed = 20 + k as u64;
        let m = choose(l, &hw).unwrap();
        let x = synthetic_ifmap(l, seed, fmt);
        let w = synthetic_weights(l, seed, fmt);
        let run = run_layer(
            &hw,
            l,
            &m,
            &x,
            &w,
            &RunOptions {
                mac: fmt.mac(),
                ..Default::default()
            },
        )
        .unwrap();
        let (want, _) = reference_conv(l, &x, &w, fmt.mac(), true).unwrap();
        let stats =
            rowsim_chip::LayerStats::new(&hw, l, seed, &run, x.zero_fraction(), run.ofmap == want);
        assert!(stats.verified);
        // Energy is exactly the counts priced by the table (checked by the mapper's tests).
        insta::assert_snapshot!(
            l.name.replace(':', "_"),
            serde_json::to_string_pretty(&stats).unwrap()
        );
    }
}

/// Stepping a layer cycle by cycle (as `rowsim step` does) is the same run as `run_layer`: the
/// same cycles, passes, accesses and ofmap, and the phases follow the mapping's loop nest.
#[test]
fn stepping_cycle_by_cycle_is_the_same_run() {
    use rowsim_chip::{LayerSim, Phase};
    let hw = hw("tiny");
    let l = layer("tiny:step", 2, 4, 7, 4, 3, 2, 1, 1, false);
    let data = expected_data(&l, &hw).unwrap();
    let m = enumerate(&l, &hw, &data).unwrap().remove(0).mapping;
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(&l, 3, fmt), synthetic_weights(&l, 3, fmt));
    let opts = RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let whole = run_layer(&hw, &l, &m, &x, &w, &opts).unwrap();
    let mut sim = LayerSim::new(&hw, &l, &m, &x, &w, &opts).unwrap();
    let passes = sim
        .phases()
        .iter()
        .filter(|p| matches!(p, Phase::Pass { .. }))
        .count() as u64;
    assert_eq!(passes, whole.counts.passes);
    assert!(sim.finish_trace().unwrap().is_none());
    let mut cycles = 0;
    while sim.step_cycle().unwrap() {
        cycles += 1;
        assert!(sim.progress().passes_done <= passes);
    }
    assert!(sim.done());
    assert!(!sim.step().unwrap(), "a finished layer does not step");
    // The last step_cycle may end mid-cycle (the last phase went quiet at a link edge).
    assert!(cycles == whole.core_cycles || cycles + 1 == whole.core_cycles);
    let stepped = sim.finish().unwrap();
    assert_eq!(stepped.core_cycles, whole.core_cycles);
    assert_eq!(stepped.processing_cycles, whole.processing_cycles);
    assert_eq!(stepped.counts, whole.counts);
    assert_eq!(stepped.ofmap, whole.ofmap);
    let (reference, _) = reference_conv(&l, &x, &w, fmt.mac(), hw.datapath.relu).unwrap();
    assert_eq!(stepped.ofmap, reference);
}

/// The top-level controller is a component like any other: whole layers stepped with the
/// components in shuffled orders give the same cycles, counts, ofmap and VCD, byte for byte.
#[test]
fn whole_layers_in_shuffled_component_orders_are_the_same_run() {
    use rowsim_chip::LayerSim;
    use rowsim_kernel::{StepOrder, TraceConfig};
    let dir = std::env::temp_dir().join(format!("rowsim-shuffle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fmt = Formats::DEFAULT;
    let cases = [
        (
            hw("tiny"),
            layer("tiny:shuffle", 2, 4, 7, 4, 3, 2, 1, 1, false),
        ),
        (hw("tiny"), tiny_net().remove(1)),
        (
            hw("eyeriss-v1"),
            layer("ey:shuffle", 1, 4, 9, 8, 3, 1, 1, 1, false),
        ),
    ];
    for (k, (hw, l)) in cases.iter().enumerate() {
        let m = choose(l, hw).unwrap();
        let (x, w) = (synthetic_ifmap(l, 5, fmt), synthetic_weights(l, 5, fmt));
        let mut runs = Vec::new();
        for (i, order) in [
            StepOrder::Registration,
            StepOrder::Shuffled(1),
            StepOrder::Shuffled(0xDEAD_BEEF),
        ]
        .into_iter()
        .enumerate()
        {
            let vcd = dir.join(format!("case{k}_order{i}.vcd"));
            let opts = RunOptions {
                mac: fmt.mac(),
                trace: Some(TraceConfig {
                    vcd: vcd.clone(),
                    scopes: vec![],
                    window: None,
                }),
                ..Default::default()
            };
            let mut sim = LayerSim::new(hw, l, &m, &x, &w, &opts).unwrap();
            sim.scheduler_mut().set_order(order);
            while sim.run_for(1 << 12).unwrap() {}
            let run = sim.finish().unwrap();
            runs.push((run, std::fs::read(&vcd).unwrap()));
        }
        let (first, vcd0) = &runs[0];
        let (want, _) = reference_conv(l, &x, &w, fmt.mac(), hw.datapath.relu).unwrap();
        assert_eq!(first.ofmap, want, "{}", l.name);
        for (run, vcd) in &runs[1..] {
            assert_eq!(run.core_cycles, first.core_cycles, "{}", l.name);
            assert_eq!(run.counts, first.counts, "{}", l.name);
            assert_eq!(run.controller, first.controller, "{}", l.name);
            assert_eq!(run.ofmap, first.ofmap, "{}", l.name);
            assert!(vcd == vcd0, "{}: the VCDs differ", l.name);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The event-driven kernel (components asleep while idle, PEs computing their MAC bursts in one
/// go) gives the same run as stepping every component at every edge: every layer of the tiny
/// network, and a small layer on eyeriss-v1, in registration and in shuffled orders.
#[test]
fn event_driven_runs_equal_runs_stepped_at_every_edge() {
    use rowsim_kernel::StepOrder;
    let tiny = hw("tiny");
    for (k, l) in tiny_net().iter().enumerate() {
        let m = choose(l, &tiny).unwrap();
        let order = if k % 2 == 0 {
            StepOrder::Registration
        } else {
            StepOrder::Shuffled(k as u64)
        };
        common::event_driven_equals_every_edge(&tiny, l, &m, 30 + k as u64, order);
    }
    let ey = hw("eyeriss-v1");
    let l = layer("ey:event", 2, 8, 13, 16, 3, 1, 1, 1, false);
    let m = choose(&l, &ey).unwrap();
    for order in [StepOrder::Registration, StepOrder::Shuffled(0xBEEF)] {
        common::event_driven_equals_every_edge(&ey, &l, &m, 9, order);
    }
}

/// A layer traced to FST holds the same value changes as its VCD, read back by wellen: every
/// signal of a PE, the ifmap GIN and the GLB, over a whole tiny-network layer.
#[test]
fn a_layer_traced_to_fst_equals_its_vcd() {
    use rowsim_chip::LayerSim;
    use rowsim_kernel::TraceConfig;
    use rowsim_tests::waves;
    let hw = hw("tiny");
    let l = tiny_net().remove(0);
    let m = choose(&l, &hw).unwrap();
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(&l, 4, fmt), synthetic_weights(&l, 4, fmt));
    let dir = std::env::temp_dir().join(format!("rowsim-fst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut got = Vec::new();
    for ext in ["vcd", "fst"] {
        let path = dir.join(format!("layer.{ext}"));
        let opts = RunOptions {
            mac: fmt.mac(),
            trace: Some(TraceConfig {
                vcd: path.clone(),
                scopes: vec![
                    "top.chip.pe_array.pe_r0_c0".into(),
                    "top.chip.noc.gin_ifmap".into(),
                    "top.chip.glb".into(),
                ],
                window: None,
            }),
            ..Default::default()
        };
        let mut sim = LayerSim::new(&hw, &l, &m, &x, &w, &opts).unwrap();
        while sim.run_for(1 << 12).unwrap() {}
        sim.finish().unwrap();
        got.push(waves::without_ranges(waves::read(&path).unwrap()));
    }
    let (vcd, fst) = (&got[0], &got[1]);
    assert!(vcd.signals.len() > 50, "{}", vcd.signals.len());
    assert_eq!(vcd.widths, fst.widths);
    assert_eq!(waves::first_difference(vcd, fst), None);
    assert_eq!(vcd.signals, fst.signals);
    assert_eq!(vcd.end, fst.end);
    std::fs::remove_dir_all(&dir).ok();
}

/// Tracing only a block on the link clock, in a window: the event-driven run's VCD (window
/// opening, changes, end) is the stepped run's, byte for byte.
#[test]
fn a_windowed_trace_of_the_link_clock_is_the_same_event_driven() {
    use rowsim_chip::LayerSim;
    use rowsim_kernel::TraceConfig;
    let hw = hw("tiny");
    let l = tiny_net().remove(1);
    let m = choose(&l, &hw).unwrap();
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(&l, 8, fmt), synthetic_weights(&l, 8, fmt));
    let dir = std::env::temp_dir().join(format!("rowsim-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for every_edge in [false, true] {
        let vcd = dir.join(format!("dram_{every_edge}.vcd"));
        let opts = RunOptions {
            mac: fmt.mac(),
            every_edge,
            trace: Some(TraceConfig {
                vcd: vcd.clone(),
                scopes: vec!["top.dram".into()],
                window: Some(1001..2999),
            }),
            ..Default::default()
        };
        let mut sim = LayerSim::new(&hw, &l, &m, &x, &w, &opts).unwrap();
        while sim.run_for(1 << 12).unwrap() {}
        sim.finish().unwrap();
        files.push(std::fs::read(&vcd).unwrap());
    }
    assert!(files[0].len() > 500);
    assert!(files[0] == files[1], "the VCDs differ");
    std::fs::remove_dir_all(&dir).ok();
}

/// Depthwise convolutions (`groups` = C = M: one channel and one filter a group), as
/// MobileNets have them, strided and not, batch 2: bit-exact, and every count the simulation
/// makes equals the mapper's closed form (`run_and_check`).
#[test]
fn depthwise_convolutions_are_bit_exact_with_closed_form_counts() {
    let hw = common::hw("tiny");
    for (u, h) in [(1, 6), (2, 8)] {
        let l = common::layer("tiny:dw", 2, 6, h, 6, 3, u, 1, 6, false);
        assert_eq!((l.cg(), l.mg()), (1, 1));
        let m = rowsim_mapper::choose(&l, &hw).unwrap();
        let run = common::run_and_check(&l, &hw, &m, 4);
        assert_eq!(run.counts.macs, l.macs());
    }
}

/// The layers a Transformer encoder layer runs (`rowsim_model::build::encoder_layer` on tiny):
/// a projection over tokens (an FC layer whose batch is the N x L tokens: 2 x 8 of 16 values,
/// 16 filters), `Q K^T` of one image (8 rows of 16, 8 filters: K's rows) and attention x V (8
/// rows of 8, 16 filters: V's columns); bit-exact, every access count the mapper's closed
/// form, the MACs `batch x C x M`.
#[test]
fn matmul_layers_are_bit_exact_with_closed_form_counts() {
    let hw = common::hw("tiny");
    for (n, c, m) in [(16, 16, 16), (8, 16, 8), (8, 8, 16)] {
        let l = common::layer("tiny:matmul", n, c, 1, m, 1, 1, 0, 1, false);
        let mp = rowsim_mapper::choose(&l, &hw).unwrap();
        let run = common::run_and_check(&l, &hw, &mp, 5);
        assert_eq!(run.counts.macs, (n * c * m) as u64);
    }
}

/// The interconnect statistics count what the networks carried: the ifmap GIN's 16-bit beats
/// are the ifmap values read from the GLB (no padding here to be made on the way), the filter
/// GIN's 64-bit beats carry each pass's filter stream four words at a time, and the GON's
/// carry the psums written to the GLB, up to four a beat. With split GLB ports (a two-port
/// SRAM) a pass's psum reads and writes no longer take turns: the GLB refuses no request
/// (35 cycles shared), the layer takes no more cycles, and the run is otherwise the same.
#[test]
fn the_interconnect_counts_what_the_networks_carried() {
    let mut hw = hw("tiny");
    let l = layer("tiny:nets", 1, 4, 6, 4, 3, 1, 0, 1, false);
    let m: Mapping = "m=4,n=1,e=4,p=4,q=1,r=1,t=1".parse().unwrap();
    let fmt = Formats::DEFAULT;
    let (x, w) = (synthetic_ifmap(&l, 3, fmt), synthetic_weights(&l, 3, fmt));
    let opts = RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let run = |hw: &HwConfig| run_layer(hw, &l, &m, &x, &w, &opts).unwrap();
    let shared = run(&hw);
    let (c, i) = (&shared.counts, &shared.interconnect);
    assert_eq!(i.ifmap_gin.beats, c.glb_reads.ifmap);
    assert_eq!(4 * i.filter_gin.beats, c.glb_reads.filter);
    assert!(4 * i.gon.beats >= c.glb_writes.psum && i.gon.beats <= c.glb_writes.psum);
    // The psum GIN carries what the GLB read for continuing passes, not the readout's reads
    // of the finished ofmap (N*M*E*F = 4*4*4 values).
    let into_array = c.glb_reads.psum - 4 * 4 * 4;
    assert!(4 * i.psum_gin.beats >= into_array && i.psum_gin.beats <= into_array);
    assert!(i.psum_gin.beats > 0);
    hw.glb.port_kind = rowsim_config::GlbPorts::Split;
    let split = run(&hw);
    assert_eq!(split.interconnect.glb_refused_cycles, 0);
    assert!(shared.interconnect.glb_refused_cycles > 0);
    assert!(split.core_cycles <= shared.core_cycles);
    assert_eq!(split.ofmap, shared.ofmap);
    assert_eq!(split.counts, shared.counts);
}
