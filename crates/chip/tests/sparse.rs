//! Compressed weights (`spad.filter.compressed`, the eyeriss-v1-sparse machine): each PE's
//! filter row crosses DRAM, sits in the GLB, crosses the filter GIN and lives in the PE as its
//! zero mask and nonzero values. Bit-exact against the reference convolution, every count equal
//! to the closed form, the DRAM filter words equal to a hand count from the weights, fewer NoC
//! and DRAM words than the same machine without compression once the weights are sparse, and
//! mappings that only a sparse layer fits.

use rowsim_chip::LayerRun;
use rowsim_config::HwConfig;
use rowsim_mapper::{enumerate_for, expected_data, Dataflow, Mapping, Problem};
use rowsim_workload::{synthetic_ifmap, synthetic_weights, ConvLayer, Formats, Tensor};

mod common;
use common::{hw, pruned, run_and_check_on, tiny_net};

/// `hw` with zero skipping (index accesses at half a spad access, as eyeriss-v1-skip) and,
/// when `compressed`, compressed weights with a mask of `mask_bits`.
fn machine(mut hw: HwConfig, compressed: bool, mask_bits: u32) -> HwConfig {
    hw.datapath.zero_skipping = true;
    hw.energy.skip_index = Some(0.5);
    hw.rlc.code_filters = false;
    if compressed {
        hw.spad.filter.compressed = true;
        hw.spad.filter.mask_bits = Some(mask_bits);
    }
    hw
}

/// The tiny machine with a 16-entry filter spad and a 48-bit mask: a dense row holds at most
/// 16 weights, a sparse one up to 48 of which 16 nonzero.
fn tiny_sparse() -> HwConfig {
    let mut hw = hw("tiny");
    hw.spad.filter.entries = 16;
    machine(hw, true, 48)
}

/// The cheapest mapping on `hw` with the rows sized from `w`.
fn choose_for(l: &ConvLayer, hw: &HwConfig, w: &Tensor) -> Mapping {
    let mut data = expected_data(l, hw).unwrap();
    data.weights = Some(w);
    enumerate_for(l, hw, &data, Dataflow::Rs).unwrap()[0].mapping
}

/// DRAM filter words of a run by hand: every pass's stream, rows of `p*q*S` weights each
/// `ceil(p*q*S/16)` mask words plus its nonzeros, raw on the bus (4 words a bus word), loaded
/// once per image block and strip.
fn dram_filter_words_by_hand(l: &ConvLayer, m: &Mapping, w: &Tensor) -> u64 {
    let pb = Problem::lowered(l, m.dataflow);
    let len = (m.p * m.q * pb.s) as usize;
    let mut words = 0u64;
    for g in 0..pb.groups {
        for mb in 0..pb.m / m.m {
            for cb in 0..pb.c / (m.q * m.r) {
                for fb in 0..m.m / (m.p * m.t) {
                    let v = rowsim_mapper::filter_stream(
                        &pb,
                        m,
                        rowsim_mapper::FilterKey { g, mb, cb, fb },
                        w,
                    );
                    let stream: u64 = v
                        .chunks(len)
                        .map(|row| {
                            len.div_ceil(16) as u64 + row.iter().filter(|&&x| x != 0).count() as u64
                        })
                        .sum();
                    words += stream.div_ceil(4) * 4;
                }
            }
        }
    }
    words * (pb.n / m.n) as u64 * pb.e.div_ceil(m.e) as u64
}

/// Runs `l` with `w` on the compressed machine and on the same machine uncompressed, both
/// checked (bit-exact, counts equal to the closed form); the compressed run's filter DRAM words
/// equal the hand count, its spad writes the nonzero weights delivered, its index writes the
/// mask words.
fn both(
    l: &ConvLayer,
    packed_hw: &HwConfig,
    m: &Mapping,
    x: &Tensor,
    w: &Tensor,
) -> (LayerRun, LayerRun) {
    let packed = run_and_check_on(l, packed_hw, m, x, w);
    let plain = run_and_check_on(l, &plain_hw(packed_hw), m, x, w);
    assert!(packed.ofmap == plain.ofmap, "{}", l.name);
    assert_eq!(
        packed.counts.dram_reads.filter,
        dram_filter_words_by_hand(l, m, w),
        "{} with {m}: DRAM filter words",
        l.name
    );
    // The MAC side is the same: compression changes how weights move and sit, not what runs.
    let (a, b) = (&packed.counts, &plain.counts);
    assert_eq!((a.macs, a.macs_gated), (b.macs, b.macs_gated));
    assert_eq!(a.spad_reads, b.spad_reads);
    assert_eq!(a.index_reads, b.index_reads);
    assert_eq!(b.index_writes, 0);
    // Each PE's row once per strip row and image block: the mask words and the nonzeros.
    let pb = Problem::lowered(l, m.dataflow);
    let deliveries = b.noc.filter / (m.p * m.q * pb.s) as u64;
    assert_eq!(
        a.index_writes,
        deliveries * ((m.p * m.q * pb.s) as u64).div_ceil(16)
    );
    assert_eq!(a.noc.filter, a.index_writes + a.spad_writes.filter);
    (packed, plain)
}

#[test]
fn the_tiny_network_runs_compressed_bit_exact_dense_and_pruned() {
    let fmt = Formats::DEFAULT;
    // The tiny machine's own spads (48 entries), a 48-bit mask.
    let packed_hw = machine(hw("tiny"), true, 48);
    for (k, l) in tiny_net().iter().enumerate() {
        let x = synthetic_ifmap(l, 90 + k as u64, fmt);
        let w = synthetic_weights(l, 90 + k as u64, fmt);
        let m = choose_for(l, &packed_hw, &w);
        let (dense, _) = both(l, &packed_hw, &m, &x, &w);
        for density in [0.5, 0.3] {
            let wp = pruned(&w, density);
            let (packed, plain) = both(l, &packed_hw, &m, &x, &wp);
            // Sparse rows move fewer words on the GIN and the bus than uncompressed ones (and
            // than the dense rows compressed).
            let (a, b) = (&packed.counts, &plain.counts);
            assert!(
                a.noc.filter < b.noc.filter,
                "{}: {} vs {}",
                l.name,
                a.noc.filter,
                b.noc.filter
            );
            assert!(a.dram_reads.filter <= b.dram_reads.filter, "{}", l.name);
            assert!(a.noc.filter < dense.counts.noc.filter, "{}", l.name);
            assert!(
                a.dram_reads.filter <= dense.counts.dram_reads.filter,
                "{}",
                l.name
            );
            assert!(
                a.energy(&packed_hw).by_type.filter
                    < b.energy(&plain_hw(&packed_hw)).by_type.filter,
                "{}: filter energy",
                l.name
            );
        }
    }
}

/// `h` with its weights uncompressed (the rest the same).
fn plain_hw(h: &HwConfig) -> HwConfig {
    let mut p = h.clone();
    p.spad.filter.compressed = false;
    p.spad.filter.mask_bits = None;
    p
}

/// With a 16-entry filter spad, the search on pruned weights takes a mapping whose rows hold
/// more than 16 weights (the dense check refuses it), and it runs bit-exact with the counts of
/// the closed form; the same mapping with the dense weights is refused, naming the spad.
#[test]
fn a_sparse_layer_fits_mappings_a_dense_one_cannot() {
    let fmt = Formats::DEFAULT;
    let hw = tiny_sparse();
    let l = &tiny_net()[1];
    let pb = Problem::lowered(l, Dataflow::Rs);
    let x = synthetic_ifmap(l, 5, fmt);
    let w = pruned(&synthetic_weights(l, 5, fmt), 0.25);
    let mut data = expected_data(l, &hw).unwrap();
    data.weights = Some(&w);
    let wide = enumerate_for(l, &hw, &data, Dataflow::Rs)
        .unwrap()
        .into_iter()
        .map(|r| r.mapping)
        .find(|m| m.p * m.q * pb.s > 16)
        .expect("a mapping with rows wider than the spad");
    let e = wide.check(&pb, &hw).unwrap_err().to_string();
    assert!(e.contains("nonzero; the filter spad holds 16"), "{e}");
    let run = run_and_check_on(l, &hw, &wide, &x, &w);
    assert!(run.counts.index_writes > 0);
    // The dense weights cannot run it: the chip refuses it before any cycle.
    let dense = synthetic_weights(l, 5, fmt);
    let opts = rowsim_chip::RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let err = rowsim_chip::LayerSim::new(&hw, l, &wide, &x, &dense, &opts)
        .err()
        .expect("dense rows do not fit")
        .to_string();
    assert!(err.contains("the filter spad holds 16"), "{err}");
}

/// A corrupt compressed row stops the run with an error, never a panic or a hang: a zero where
/// the mask promises a value is the PE's error naming the PE, the word and the cycle, the same
/// cycle event-driven (where the PE loads rows ahead) as stepped at every edge; a mask
/// that is well formed but promises more values than the stream carries leaves the PE waiting,
/// which the watchdog reports naming the PEs that still hold work.
#[test]
fn a_corrupt_compressed_row_is_an_error_naming_where() {
    let fmt = Formats::DEFAULT;
    let hw = machine(hw("tiny"), true, 48);
    let l = tiny_net().remove(1);
    let x = synthetic_ifmap(&l, 3, fmt);
    // Dense weights: every row's first value is nonzero and follows its mask.
    let w = synthetic_weights(&l, 3, fmt);
    let w = Tensor {
        data: w.data.iter().map(|&v| if v == 0 { 1 } else { v }).collect(),
        ..w
    };
    let m = choose_for(&l, &hw, &w);
    let pb = Problem::lowered(&l, m.dataflow);
    let masks = ((m.p * m.q * pb.s) as usize).div_ceil(16);
    let opts = rowsim_chip::RunOptions {
        mac: fmt.mac(),
        ..Default::default()
    };
    let run_on = |corrupt: &dyn Fn(&mut [u64], u64), every_edge: bool| {
        let opts = rowsim_chip::RunOptions {
            every_edge,
            ..opts.clone()
        };
        let mut sim = rowsim_chip::LayerSim::new(&hw, &l, &m, &x, &w, &opts).unwrap();
        let (_, addr, words) = sim.filter_streams()[0];
        assert!(words > 0);
        corrupt(sim.dram_memory_mut().unwrap(), addr);
        loop {
            match sim.run_for(1 << 12) {
                Ok(true) => continue,
                Ok(false) => panic!("the corrupt row was accepted"),
                Err(e) => break e.to_string(),
            }
        }
    };
    let run = |corrupt: &dyn Fn(&mut [u64], u64)| run_on(corrupt, false);
    // The first row's first value (stream word `masks`) zeroed.
    let zero_value = |mem: &mut [u64], addr: u64| {
        let (k, lane) = (addr as usize + masks / 4, masks % 4);
        mem[k] &= !(0xFFFFu64 << (16 * lane));
    };
    let err = run(&zero_value);
    assert!(
        err.contains("top.chip.pe_array.pe_")
            && err.contains(&format!("word {masks} is a zero value")),
        "{err}"
    );
    assert!(err.contains("cycle"), "{err}");
    assert_eq!(err, run_on(&zero_value, true));
    // The first mask word's low bit cleared: one value fewer than the row carries, so the
    // row's last word is taken as the next's; somewhere a PE waits for a word that never comes.
    let err = run(&|mem, addr| {
        mem[addr as usize] &= !1;
    });
    assert!(err.contains("pe_array.pe_"), "{err}");
}

#[test]
fn compressed_runs_are_the_same_event_driven_as_stepped_at_every_edge() {
    let hw = tiny_sparse();
    let fmt = Formats::DEFAULT;
    for (k, l) in tiny_net().iter().enumerate() {
        let x = synthetic_ifmap(l, 70 + k as u64, fmt);
        let w = pruned(&synthetic_weights(l, 70 + k as u64, fmt), 0.4);
        let m = choose_for(l, &hw, &w);
        common::event_driven_equals_every_edge_on(
            &hw,
            l,
            &m,
            70 + k as u64,
            rowsim_kernel::StepOrder::Registration,
            &x,
            &w,
        );
    }
}

#[test]
fn the_sparse_machine_config_is_eyeriss_v1_skip_with_compressed_weights() {
    let skip = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1-skip")).unwrap();
    let sparse = rowsim_config::load_spec(std::path::Path::new("eyeriss-v1-sparse")).unwrap();
    assert!(sparse.spad.filter.compressed && !skip.spad.filter.compressed);
    assert_eq!(sparse.spad.filter.mask_bits, Some(288));
    assert!(!sparse.rlc.code_filters && skip.rlc.code_filters);
    let mut same = sparse.clone();
    same.spad.filter.compressed = false;
    same.spad.filter.mask_bits = None;
    same.rlc.code_filters = true;
    same.machine = skip.machine.clone();
    assert_eq!(same, skip);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: minutes in a debug build; run with cargo test --release"
)]
fn alexnet_conv5_runs_compressed_bit_exact_dense_and_pruned() {
    let sparse = hw("eyeriss-v1-sparse");
    let l = rowsim_workload::layer("alexnet:conv5").unwrap();
    let fmt = Formats::DEFAULT;
    let x = synthetic_ifmap(&l, 7, fmt);
    let w = synthetic_weights(&l, 7, fmt);
    for (what, w) in [("dense", w.clone()), ("pruned to 50%", pruned(&w, 0.5))] {
        let t = std::time::Instant::now();
        // The same mapping on both machines: the uncompressed one's choice (it fits both).
        let m = choose_for(&l, &plain_hw(&sparse), &w);
        let (packed, plain) = both(&l, &sparse, &m, &x, &w);
        eprintln!(
            "alexnet:conv5 {what} with {m}: compressed {} cycles, {:.4e} energy, {} filter NoC words, {} filter DRAM words; uncompressed {} cycles, {:.4e} energy, {} NoC, {} DRAM ({:.1} s)",
            packed.core_cycles,
            packed.counts.energy(&sparse).total,
            packed.counts.noc.filter,
            packed.counts.dram_reads.filter,
            plain.core_cycles,
            plain.counts.energy(&plain_hw(&sparse)).total,
            plain.counts.noc.filter,
            plain.counts.dram_reads.filter,
            t.elapsed().as_secs_f64()
        );
        if what != "dense" {
            assert!(packed.counts.noc.filter < plain.counts.noc.filter);
            assert!(packed.counts.dram_reads.filter < plain.counts.dram_reads.filter);
        }
    }
}
