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
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn run_and_check(l: &ConvLayer, hw: &HwConfig, m: &Mapping, seed: u64) -> LayerRun {
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(l, seed, fmt);
    let w = synthetic_weights(l, seed, fmt);
    run_and_check_on(l, hw, m, &x, &w)
}

/// [`run_and_check`] on given tensors.
pub fn run_and_check_on(
    l: &ConvLayer,
    hw: &HwConfig,
    m: &Mapping,
    x: &rowsim_workload::Tensor,
    w: &rowsim_workload::Tensor,
) -> LayerRun {
    let fmt = Formats::DEFAULT;
    let (x, w) = (x.clone(), w.clone());
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
        ifmap_coded: hw.rlc.codes_ifmap(l.first),
        ofmap_coded: hw.rlc.codes_ofmap(),
        weights: Some(&w),
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
    if hw.datapath.zero_skipping {
        // Skipped slots take no cycle; each position takes one to read its index.
        assert_eq!(pc.gated, 0);
        let pqs = (m.p * m.q * pb.s) as u64;
        assert_eq!(
            pc.index,
            predicted.macs / pqs,
            "{} with {m}: index cycles",
            l.name
        );
    } else {
        assert_eq!(pc.gated, predicted.macs_gated);
        assert_eq!(pc.index, 0);
    }
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

/// Runs `l` twice, event-driven and with every component stepped at every edge, each with a
/// VCD of one PE and the ifmap GIN (the rest untraced, so they sleep in the event-driven run),
/// and asserts the same core cycles, every statistic (counts, cycle accounts, PE cycles,
/// energy), the same ofmap, equal to the reference, and byte-identical VCDs. `order` steps the
/// event-driven run's components in that order. Returns the event-driven run.
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn event_driven_equals_every_edge(
    hw: &HwConfig,
    l: &ConvLayer,
    m: &Mapping,
    seed: u64,
    order: rowsim_kernel::StepOrder,
) -> LayerRun {
    let fmt = Formats::DEFAULT;
    let (x, w) = (
        synthetic_ifmap(l, seed, fmt),
        synthetic_weights(l, seed, fmt),
    );
    event_driven_equals_every_edge_on(hw, l, m, seed, order, &x, &w)
}

/// [`event_driven_equals_every_edge`] on given tensors.
#[allow(dead_code)]
pub fn event_driven_equals_every_edge_on(
    hw: &HwConfig,
    l: &ConvLayer,
    m: &Mapping,
    seed: u64,
    order: rowsim_kernel::StepOrder,
    x: &rowsim_workload::Tensor,
    w: &rowsim_workload::Tensor,
) -> LayerRun {
    use rowsim_chip::{LayerSim, LayerStats};
    use rowsim_kernel::TraceConfig;
    let fmt = Formats::DEFAULT;
    let (x, w) = (x.clone(), w.clone());
    let dir = std::env::temp_dir().join(format!("rowsim-event-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A PE in the middle of the array's used part, and the ifmap GIN.
    let pe = "top.chip.pe_array.pe_r1_c1";
    let mut out = Vec::new();
    for every_edge in [false, true] {
        let vcd = dir.join(format!(
            "{}_{}.vcd",
            l.name.replace(':', "_"),
            if every_edge { "every_edge" } else { "event" }
        ));
        let opts = RunOptions {
            mac: fmt.mac(),
            every_edge,
            trace: Some(TraceConfig {
                vcd: vcd.clone(),
                scopes: vec![pe.into(), "top.chip.noc.gin_ifmap".into()],
                window: None,
            }),
            ..Default::default()
        };
        let mut sim = LayerSim::new(hw, l, m, &x, &w, &opts).unwrap();
        if !every_edge {
            sim.scheduler_mut().set_order(order);
        }
        while sim.run_for(1 << 14).unwrap() {}
        let run = sim.finish().unwrap();
        let stats = LayerStats::new(hw, l, seed, &run, x.zero_fraction(), true);
        let bytes = std::fs::read(&vcd).unwrap();
        std::fs::remove_file(&vcd).ok();
        out.push((run, serde_json::to_string_pretty(&stats).unwrap(), bytes));
    }
    let (every, ev) = (out.pop().unwrap(), out.pop().unwrap());
    // Untraced, everything sleeps that can: the same statistics again.
    let opts = RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let mut sim = LayerSim::new(hw, l, m, &x, &w, &opts).unwrap();
    sim.scheduler_mut().set_order(order);
    while sim.run_for(1 << 14).unwrap() {}
    let quiet = sim.finish().unwrap();
    let quiet_stats = LayerStats::new(hw, l, seed, &quiet, x.zero_fraction(), true);
    assert_eq!(
        serde_json::to_string_pretty(&quiet_stats).unwrap(),
        every.1,
        "{}: untraced, the statistics differ",
        l.name
    );
    assert!(
        quiet.ofmap == every.0.ofmap,
        "{}: untraced, the ofmaps differ",
        l.name
    );
    let (want, _) = reference_conv(l, &x, &w, fmt.mac(), hw.datapath.relu).unwrap();
    assert!(
        ev.0.ofmap == want,
        "{}: the ofmap differs from the reference",
        l.name
    );
    assert!(ev.0.ofmap == every.0.ofmap, "{}: the ofmaps differ", l.name);
    assert_eq!(
        ev.0.core_cycles, every.0.core_cycles,
        "{}: core cycles",
        l.name
    );
    assert_eq!(
        ev.0.link_cycles, every.0.link_cycles,
        "{}: link cycles",
        l.name
    );
    assert_eq!(ev.0.counts, every.0.counts, "{}: counts", l.name);
    assert_eq!(
        ev.0.controller, every.0.controller,
        "{}: controller",
        l.name
    );
    assert_eq!(ev.0.pe_cycles, every.0.pe_cycles, "{}: PE cycles", l.name);
    assert_eq!(ev.1, every.1, "{}: the statistics differ", l.name);
    assert!(
        ev.2.len() > 1000 && ev.2.windows(9).any(|w| w == b"mac_valid"),
        "{}: the VCD does not hold the PE's signals",
        l.name
    );
    assert!(ev.2 == every.2, "{}: the VCDs differ", l.name);
    ev.0
}

/// A square layer of the tests' tables.
#[allow(clippy::too_many_arguments, dead_code)] // a table row of layer shapes
pub fn layer(
    name: &str,
    n: u32,
    c: u32,
    h: u32,
    m: u32,
    r: u32,
    u: u32,
    pad: u32,
    groups: u32,
    first: bool,
) -> ConvLayer {
    ConvLayer {
        name: name.into(),
        n,
        c,
        h,
        w: h,
        m,
        r,
        s: r,
        stride_v: u,
        stride_h: u,
        pad,
        groups,
        ifmap_zero_fraction: 0.4,
        first,
    }
}

/// The tiny-config test network: strides, padding, groups, batch > 1, channels and filters that
/// need several passes, a first layer whose input crosses the bus raw.
#[allow(dead_code)]
pub fn tiny_net() -> Vec<ConvLayer> {
    vec![
        layer("tinynet:conv1", 2, 3, 9, 8, 3, 2, 1, 1, true),
        layer("tinynet:conv2", 2, 8, 5, 12, 3, 1, 1, 2, false),
        layer("tinynet:conv3", 1, 12, 5, 16, 2, 1, 0, 1, false),
        layer("tinynet:conv4", 3, 16, 4, 10, 1, 1, 0, 2, false),
    ]
}

/// Magnitude pruning of weights to `density`: the smallest magnitudes zeroed (the project's one
/// pruner, `rowsim_workload::keep_largest`).
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn pruned(w: &rowsim_workload::Tensor, density: f64) -> rowsim_workload::Tensor {
    let mut t = w.clone();
    let keep = rowsim_workload::kept(t.data.len(), density);
    rowsim_workload::keep_largest(&mut t.data, keep, |v| (v as f64).abs());
    t
}
