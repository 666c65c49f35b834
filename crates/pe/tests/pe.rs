//! The PE against the reference 1-D convolution, its counters against closed forms, its timing
//! against the formula of the crate docs, and zero gating against gating off.

use proptest::prelude::*;
use rowsim_datapath::mac::{MacConfig, Overflow, Rounding};
use rowsim_pe::testbench::{reference_rows, BenchWiring, Harness, RowJob, RunResult};
use rowsim_pe::{PeSizes, Primitive};

const EYERISS: PeSizes = PeSizes {
    filter_entries: 224,
    ifmap_entries: 12,
    psum_entries: 24,
    mask_bits: None,
};

fn run(job: &RowJob, sizes: PeSizes) -> RunResult {
    Harness::new("top.pe", sizes, job, BenchWiring::default())
        .unwrap()
        .run(job, None)
        .unwrap()
}

/// Closed-form access counts of a job (crate docs, "What counts as an access").
fn check_counts(job: &RowJob, r: &RunResult) {
    let pr = job.prim;
    let (p, q, s, u, f, rows) = (
        pr.p as u64,
        pr.q as u64,
        pr.s as u64,
        pr.u as u64,
        pr.f as u64,
        pr.rows as u64,
    );
    let w = pr.w() as u64;
    // Zero ifmap values used by each window position, times the p filters that would use them.
    let mut zero_slots = 0u64;
    for row in &job.ifmaps {
        for x in 0..f {
            for c in 0..q {
                for si in 0..s {
                    zero_slots += (row[(c * w + x * u + si) as usize] == 0) as u64 * p;
                }
            }
        }
    }
    let gated = if pr.zero_gating { zero_slots } else { 0 };
    let c = &r.counters;
    let slots = p * q * s * f * rows;
    assert_eq!(c.macs + c.macs_gated, slots);
    assert_eq!(c.macs_gated, gated);
    assert_eq!(c.filter_spad_writes, p * q * s);
    assert_eq!(c.filter_spad_reads, slots - gated);
    assert_eq!(c.ifmap_spad_writes, rows * w * q);
    assert_eq!(c.ifmap_spad_reads, rows * f * q * s);
    assert_eq!(c.psum_spad_writes, slots - gated);
    assert_eq!(c.psum_spad_reads, slots - gated + rows * f * p);
    assert_eq!(c.psums_out, rows * f * p);
    assert_eq!(c.psums_in, if pr.psum_in { rows * f * p } else { 0 });
}

fn job_strategy(sizes: PeSizes) -> impl Strategy<Value = RowJob> {
    let fe = sizes.filter_entries;
    let ie = sizes.ifmap_entries;
    let pe = sizes.psum_entries;
    (1u32..=3, 1u32..=6, 1u32..=3, 1u32..=6, 1u32..=3)
        .prop_flat_map(move |(q, s, u, f, rows)| {
            let q = q.min(ie);
            let s = s.min(ie / q).max(1);
            let pmax = (fe / (q * s)).min(pe).clamp(1, 5);
            (
                Just((q, s, u, f, rows)),
                1u32..=pmax,
                0u32..=16,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                0u32..=3,
                any::<bool>(),
            )
        })
        .prop_flat_map(
            |((q, s, u, f, rows), p, shift, sat, rne, psum_in, zero_level, gating)| {
                let prim = Primitive {
                    p,
                    q,
                    s,
                    u,
                    f,
                    rows,
                    psum_in,
                    mac: MacConfig::new(
                        shift,
                        if rne {
                            Rounding::NearestEven
                        } else {
                            Rounding::Truncate
                        },
                        if sat {
                            Overflow::Saturate
                        } else {
                            Overflow::Wrap
                        },
                    )
                    .unwrap(),
                    zero_gating: gating,
                    zero_skipping: false,
                    compressed: false,
                };
                let w = prim.w();
                // zero_level 0: no zeros; 3: mostly zeros.
                let value = move || {
                    prop_oneof![
                        (4 - zero_level) => any::<i16>(),
                        zero_level => Just(0i16),
                    ]
                };
                (
                    Just(prim),
                    prop::collection::vec(any::<i16>(), (p * q * s) as usize),
                    prop::collection::vec(
                        prop::collection::vec(value(), (q * w) as usize),
                        rows as usize,
                    ),
                    prop::collection::vec(
                        prop::collection::vec(any::<i16>(), (f * p) as usize),
                        rows as usize,
                    ),
                )
            },
        )
        .prop_map(|(prim, weights, ifmaps, psum_in)| RowJob {
            prim,
            weights,
            ifmaps,
            psum_in,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pe_matches_the_reference_bit_for_bit(job in job_strategy(EYERISS)) {
        let r = run(&job, EYERISS);
        prop_assert_eq!(&r.rows, &reference_rows(&job));
        check_counts(&job, &r);
    }

    #[test]
    fn small_spads_without_room_to_prefetch(job in job_strategy(PeSizes { filter_entries: 48, ifmap_entries: 6, psum_entries: 8, mask_bits: None })) {
        let sizes = PeSizes { filter_entries: 48, ifmap_entries: 6, psum_entries: 8, mask_bits: None };
        let r = run(&job, sizes);
        prop_assert_eq!(&r.rows, &reference_rows(&job));
        check_counts(&job, &r);
    }

    /// Zero skipping: the same psums as gating, and every counter the closed form of the
    /// nonzero pairs: MACs issued = pairs with both operands nonzero, the rest skipped; a
    /// position's index cycle and read; a read of the ifmap spad and of the index per visited
    /// (nonzero) ifmap value; the cycle account adds up with the index cycles.
    #[test]
    fn zero_skipping_walks_only_the_nonzero_pairs(mut job in job_strategy(EYERISS), wz in 0u32..=3) {
        // Zero some weights too (a quarter per level).
        for (k, v) in job.weights.iter_mut().enumerate() {
            if (k as u32 * 7 + 3) % 4 < wz {
                *v = 0;
            }
        }
        job.prim.zero_gating = true;
        job.prim.zero_skipping = false;
        let gate = run(&job, EYERISS);
        job.prim.zero_skipping = true;
        let skip = run(&job, EYERISS);
        prop_assert_eq!(&skip.rows, &gate.rows);
        prop_assert_eq!(&skip.rows, &reference_rows(&job));
        let pr = job.prim;
        let (p, q, s, u, f, rows) = (pr.p as u64, pr.q as u64, pr.s as u64, pr.u as u64, pr.f as u64, pr.rows as u64);
        let w = pr.w() as u64;
        let (mut nonzero, mut visited) = (0u64, 0u64);
        for row in &job.ifmaps {
            for x in 0..f {
                for si in 0..s {
                    for c in 0..q {
                        if row[(c * w + x * u + si) as usize] != 0 {
                            visited += 1;
                            for ff in 0..p {
                                // RowJob order: (f*q + c)*S + s.
                                nonzero += (job.weights[((ff * q + c) * s + si) as usize] != 0) as u64;
                            }
                        }
                    }
                }
            }
        }
        let c = &skip.counters;
        let slots = p * q * s * f * rows;
        let positions = f * rows;
        prop_assert_eq!(c.macs, nonzero);
        prop_assert_eq!(c.macs_skipped, slots - nonzero);
        prop_assert_eq!(c.macs_gated, 0);
        prop_assert_eq!(c.index_cycles, positions);
        prop_assert_eq!(c.index_reads, positions + visited);
        prop_assert_eq!(c.ifmap_spad_reads, visited);
        prop_assert_eq!(c.filter_spad_reads, nonzero);
        prop_assert_eq!(c.psum_spad_writes, nonzero);
        prop_assert_eq!(c.psum_spad_reads, nonzero + positions * p);
        let pipeline = c.filter_spad_writes + c.pipeline_bubbles + c.psums_out;
        prop_assert_eq!(
            c.macs + c.stall_filter + c.stall_ifmap + c.stall_psum_in + c.stall_psum_out + pipeline + c.index_cycles,
            c.active_cycles
        );
    }

    /// Compressed weights: the same psums as skipping with the row uncompressed and the same
    /// MAC-side counters; the row loads as its `ceil(L/16)` mask words (an index write each)
    /// and its nonzero values (a spad write each), and the cycle account adds up with them. An
    /// 8-entry spad runs rows of up to 224 weights with at most 8 nonzero.
    #[test]
    fn compressed_weights_load_the_mask_and_the_nonzeros(mut job in job_strategy(EYERISS), wz in 0u32..=3, narrow in any::<bool>()) {
        for (k, v) in job.weights.iter_mut().enumerate() {
            if (k as u32 * 7 + 3) % 4 < wz {
                *v = 0;
            }
        }
        let mut sizes = PeSizes { mask_bits: Some(224), ..EYERISS };
        if narrow {
            // Keep the first 8 nonzero weights of the row (in spad order) only.
            let mut kept = 0;
            let (p, q, s) = (job.prim.p, job.prim.q, job.prim.s);
            for si in 0..s {
                for c in 0..q {
                    for f in 0..p {
                        let v = &mut job.weights[((f * q + c) * s + si) as usize];
                        if *v != 0 {
                            if kept == 8 { *v = 0 } else { kept += 1 }
                        }
                    }
                }
            }
            sizes.filter_entries = 8;
        }
        job.prim.zero_gating = true;
        job.prim.zero_skipping = true;
        let plain = run(&job, PeSizes { mask_bits: Some(224), ..EYERISS });
        job.prim.compressed = true;
        let packed = run(&job, sizes);
        prop_assert_eq!(&packed.rows, &reference_rows(&job));
        prop_assert_eq!(&packed.rows, &plain.rows);
        let l = (job.prim.p * job.prim.q * job.prim.s) as u64;
        let nnz = job.weights.iter().filter(|&&v| v != 0).count() as u64;
        let (c, d) = (packed.counters, plain.counters);
        prop_assert_eq!(c.index_writes, l.div_ceil(16));
        prop_assert_eq!(c.filter_spad_writes, nnz);
        prop_assert_eq!(d.index_writes, 0);
        prop_assert_eq!(d.filter_spad_writes, l);
        for (a, b) in [
            (c.macs, d.macs), (c.macs_skipped, d.macs_skipped), (c.index_reads, d.index_reads),
            (c.index_cycles, d.index_cycles), (c.filter_spad_reads, d.filter_spad_reads),
            (c.ifmap_spad_reads, d.ifmap_spad_reads), (c.ifmap_spad_writes, d.ifmap_spad_writes),
            (c.psum_spad_reads, d.psum_spad_reads), (c.psum_spad_writes, d.psum_spad_writes),
        ] {
            prop_assert_eq!(a, b);
        }
        let pipeline = c.filter_spad_writes + c.index_writes + c.pipeline_bubbles + c.psums_out;
        prop_assert_eq!(
            c.macs + c.stall_filter + c.stall_ifmap + c.stall_psum_in + c.stall_psum_out + pipeline + c.index_cycles,
            c.active_cycles
        );
    }

    #[test]
    fn zero_gating_changes_energy_counters_only(mut job in job_strategy(EYERISS)) {
        job.prim.zero_gating = true;
        let on = run(&job, EYERISS);
        job.prim.zero_gating = false;
        let off = run(&job, EYERISS);
        prop_assert_eq!(&on.rows, &off.rows);
        prop_assert_eq!(&on.out_cycles, &off.out_cycles);
        prop_assert_eq!(on.cycles, off.cycles);
        let (mut a, mut b) = (on.counters, off.counters);
        prop_assert_eq!(a.macs + a.macs_gated, b.macs);
        prop_assert_eq!(b.filter_spad_reads - a.filter_spad_reads, a.macs_gated);
        // Everything else is the same.
        for c in [&mut a, &mut b] {
            c.macs = 0; c.macs_gated = 0; c.filter_spad_reads = 0; c.psum_spad_reads = 0; c.psum_spad_writes = 0;
        }
        prop_assert_eq!(a, b);
    }
}

/// A dense primitive of 3-wide filter rows, stride 1, over two rows of `f` outputs.
fn dense_rows(p: u32, q: u32, f: u32) -> Primitive {
    Primitive {
        p,
        q,
        s: 3,
        u: 1,
        f,
        rows: 2,
        psum_in: false,
        mac: MacConfig::default(),
        zero_gating: true,
        zero_skipping: false,
        compressed: false,
    }
}

/// A window that fills the ifmap spad (q*S = 12 entries, CONV3's q = 4, S = 3): the sliding
/// window loads the next column into the entries the position releases as it computes (an
/// `(s, c)` group's entry once its last MAC has issued), so no position of a row waits for its
/// ifmap values: positions are `p*q*S + 2 + p` cycles apart.
#[test]
fn a_window_that_fills_the_spad_slides_without_stalls() {
    let prim = dense_rows(2, 4, 6);
    let w = prim.w() as usize;
    let job = RowJob {
        prim,
        weights: (1..=24).collect(),
        ifmaps: vec![
            (1..=4 * w as i16).collect(),
            (1..=4 * w as i16).map(|v| v * 3).collect(),
        ],
        psum_in: vec![],
    };
    let r = run(&job, EYERISS);
    assert_eq!(r.rows, reference_rows(&job));
    check_counts(&job, &r);
    // Position k's first psum leaves 24 + 2 + 2 = 28 cycles after position k-1's, within a
    // row: the next column (4 values, one a cycle) is in before the 24 MACs are done.
    let firsts: Vec<u64> = r.out_cycles.chunks(2).map(|c| c[0]).collect();
    let gaps: Vec<u64> = firsts.windows(2).map(|w| w[1] - w[0]).collect();
    for (k, &g) in gaps.iter().enumerate() {
        if (k + 1) % prim.f as usize != 0 {
            assert_eq!(g, 28, "position {} of {gaps:?}", k + 1);
        }
    }
    // By hand: the weights take cycles 1-24 and the first window's 12 values 1-12, so the
    // first position waits for nothing but its weights: MACs at 25-48, bubbles at 49-50, its
    // psums drain at 51-52 and reach the collector at 52-53.
    assert_eq!(&r.out_cycles[..2], &[52, 53]);
    // A new row's window is 3 new columns: 4 of its 12 values go into the entries the row's
    // last position releases, the other 8 once the window moves at the last psum (one at that
    // edge, then 7 at the edges the first MAC waits for): the only ifmap stall.
    assert_eq!(r.counters.stall_ifmap, 7);
    assert_eq!(gaps[prim.f as usize - 1], 28 + 7);
}

#[test]
fn steady_state_costs_pqs_plus_2_plus_p_cycles_per_position() {
    // p=2, q=2, S=3, U=1: a window of 6 values, 12 entries leave room to prefetch the next
    // column while computing; the 12 MACs + 2 bubbles + 2 drains = 16 cycles per position.
    let prim = dense_rows(2, 2, 8);
    let w = prim.w() as usize;
    let job = RowJob {
        prim,
        weights: (1..=12).collect(),
        ifmaps: vec![
            (0..2 * w as i16).collect(),
            (0..2 * w as i16).map(|v| v * 3).collect(),
        ],
        psum_in: vec![],
    };
    let r = run(&job, EYERISS);
    assert_eq!(r.rows, reference_rows(&job));
    let firsts: Vec<u64> = r.out_cycles.chunks(2).map(|c| c[0]).collect();
    let gaps: Vec<u64> = firsts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g == 16), "{gaps:?}");
    // By hand: the feeders send at cycle 0; words arrive at cycle 1 (link latency 1). The 12
    // weights are written at cycles 1..=12 (one per cycle), while the first window's 6 ifmaps are
    // stored at 1..=6. MACs issue at 13..=24, bubbles at 25 and 26, psums drain at 27 and 28
    // and reach the collector a cycle later: 28 and 29. Position k starts 16k cycles later.
    assert_eq!(&r.out_cycles[..4], &[28, 29, 44, 45]);
    assert_eq!(*r.out_cycles.last().unwrap(), 28 + 15 * 16 + 1);
    assert_eq!(
        r.counters.stall_filter, 1,
        "cycle 0: nothing has arrived yet"
    );
    assert_eq!(
        r.counters.stall_ifmap, 0,
        "the next column always loads during compute"
    );
    assert_eq!(r.counters.pipeline_bubbles, 2 * 16);
}

#[test]
fn primitives_that_do_not_fit_name_the_spad() {
    let base = Primitive {
        p: 2,
        q: 2,
        s: 3,
        u: 1,
        f: 4,
        rows: 1,
        psum_in: false,
        mac: MacConfig::default(),
        zero_gating: true,
        zero_skipping: false,
        compressed: false,
    };
    let job = |prim: Primitive| RowJob {
        prim,
        weights: vec![],
        ifmaps: vec![],
        psum_in: vec![],
    };
    let err = |prim| {
        Harness::new("top.pe", EYERISS, &job(prim), BenchWiring::default())
            .err()
            .unwrap()
    };
    let e = err(Primitive { q: 3, s: 5, ..base });
    assert_eq!(e, "top.pe: the primitive needs 15 ifmap-spad entries (a window of q*S values); the ifmap spad has 12");
    let e = err(Primitive {
        p: 24,
        q: 2,
        s: 5,
        ..base
    });
    assert!(
        e.contains("needs 240 filter-spad entries (p*q*S weights); the filter spad has 224"),
        "{e}"
    );
    let e = err(Primitive {
        p: 25,
        q: 1,
        s: 1,
        ..base
    });
    assert!(
        e.contains("needs 25 psum-spad entries (p psums); the psum spad has 24"),
        "{e}"
    );
    let e = err(Primitive { f: 0, ..base });
    assert!(e.contains("F must be at least 1"), "{e}");
}

#[test]
fn sizes_come_from_the_hw_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs");
    let hw = rowsim_config::load(dir.join("eyeriss-v1.toml")).unwrap();
    assert_eq!(PeSizes::from_config(&hw), EYERISS);
    let tiny = rowsim_config::load(dir.join("tiny.toml")).unwrap();
    assert_eq!(
        PeSizes::from_config(&tiny),
        PeSizes {
            filter_entries: 48,
            ifmap_entries: 6,
            psum_entries: 8,
            mask_bits: None,
        }
    );
}

/// A corrupt compressed row is a fault that names the PE, the word and the cycle, never a panic:
/// mask bits past the row, more nonzero weights than entries, a zero where the mask promises a
/// value (raised at the same cycle event-driven as at every edge); and
/// a compressed primitive on a PE without a mask is refused.
#[test]
fn corrupt_compressed_rows_are_faults_naming_the_word() {
    let prim = Primitive {
        p: 2,
        q: 2,
        s: 3,
        u: 1,
        f: 2,
        rows: 1,
        psum_in: false,
        mac: MacConfig::default(),
        zero_gating: true,
        zero_skipping: true,
        compressed: true,
    };
    let w = prim.w() as usize;
    let job = RowJob {
        prim,
        weights: vec![1, 0, 2, 0, 0, 3, 0, 0, 0, 4, 0, 5],
        ifmaps: vec![(1..=2 * w as i16).collect()],
        psum_in: vec![],
    };
    let sizes = PeSizes {
        filter_entries: 4,
        mask_bits: Some(16),
        ..EYERISS
    };
    // The fault at the edge that loads the word, event-driven (where the PE loads a row's
    // words ahead, up to one that would fault) as at every edge.
    let fail = |stream: Vec<i16>| {
        let run = |every_edge: bool| {
            let mut h = Harness::with_filter_stream(
                "top.pe",
                sizes,
                &job,
                BenchWiring::default(),
                stream.clone(),
            )
            .unwrap();
            h.sched.set_every_edge(every_edge);
            h.run(&job, None)
                .expect_err("a corrupt row must fail")
                .to_string()
        };
        let e = run(false);
        assert_eq!(e, run(true), "event-driven and at every edge");
        e
    };
    // Bit 12 of a 12-weight row.
    let e = fail(vec![0x1001, 7]);
    assert!(
        e.contains("top.pe") && e.contains("mask word 0 (0x1001)"),
        "{e}"
    );
    // Five nonzero weights on a 4-entry spad (the row above has 5).
    let e = fail(job.filter_stream());
    assert!(
        e.contains("top.pe") && e.contains("5 nonzero weights") && e.contains("4 entries"),
        "{e}"
    );
    // A zero value at word 2.
    let e = fail(vec![0b11, 9, 0]);
    assert!(
        e.contains("top.pe") && e.contains("word 2 is a zero value"),
        "{e}"
    );
    // No mask on this PE.
    let e = Harness::new("top.pe", EYERISS, &job, BenchWiring::default())
        .err()
        .unwrap();
    assert!(e.contains("no weight zero mask"), "{e}");
    let e = Harness::new(
        "top.pe",
        PeSizes {
            mask_bits: Some(8),
            ..EYERISS
        },
        &job,
        BenchWiring::default(),
    )
    .err()
    .unwrap();
    assert!(e.contains("12 mask bits; the mask has 8"), "{e}");
}
