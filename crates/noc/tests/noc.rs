//! The GIN's multicast and flow control over random ID assignments and tags, the GON, and bad
//! input.

use proptest::prelude::*;
use rowsim_kernel::{
    Activity, Collector, Component, Fault, Feeder, Link, LinkRx, Scheduler, StepCtx,
};
use rowsim_noc::{Beat, Gin, GinIds, Gon, GonBeat, NetSpec};

/// A PE's input FIFO drain: takes a word on cycles where `(cycle * 7 + salt) % period == 0`.
struct Sink {
    name: String,
    rx: LinkRx<i16>,
    period: u64,
    salt: u64,
    got: Vec<(u64, i16)>,
}

impl Component for Sink {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if !(cx.cycle * 7 + self.salt).is_multiple_of(self.period) {
            return Ok(Activity::Idle);
        }
        match self.rx.try_recv(cx) {
            Some(w) => {
                self.got.push((cx.cycle, w));
                Ok(Activity::Moved)
            }
            None => Ok(Activity::Idle),
        }
    }
    fn holds_work(&self) -> bool {
        self.rx.in_flight() > 0
    }
}

#[derive(Debug)]
struct Case {
    rows: u32,
    cols: u32,
    row_bits: u32,
    col_bits: u32,
    width_words: u32,
    ids: GinIds,
    beats: Vec<Beat>,
    periods: Vec<u64>,
    depth: u32,
    /// Per PE: whether it has an input FIFO on this network, and whether the GIN's mask lets it
    /// take part (`Gin::set_active`); a destination has both.
    present: Vec<bool>,
    active: Vec<bool>,
}

impl Case {
    fn takes_part(&self, b: usize, p: usize) -> bool {
        let k = b * self.cols as usize + p;
        self.present[k] && self.active[k]
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        1u32..=5,
        1u32..=6,
        1u32..=3,
        1u32..=3,
        prop::sample::select(vec![1u32, 4]),
        1u32..=4,
    )
        .prop_flat_map(|(rows, cols, row_bits, col_bits, width_words, depth)| {
            let n = (rows * cols) as usize;
            (
                Just((rows, cols, row_bits, col_bits, width_words, depth)),
                prop::collection::vec(0u16..(1 << row_bits), rows as usize),
                prop::collection::vec(0u16..(1 << col_bits), n),
                prop::collection::vec(
                    (
                        0u16..(1 << row_bits),
                        0u16..(1 << col_bits),
                        1u8..=width_words as u8,
                    ),
                    1..40,
                ),
                prop::collection::vec(prop::sample::select(vec![1u64, 1, 2, 3]), n),
                prop::collection::vec(prop::bool::weighted(0.85), n),
                prop::collection::vec(prop::bool::weighted(0.85), n),
            )
        })
        .prop_map(
            |(
                (rows, cols, row_bits, col_bits, width_words, depth),
                row_ids,
                flat_cols,
                tags,
                periods,
                present,
                active,
            )| {
                let col_ids: Vec<Vec<u16>> = flat_cols
                    .chunks(cols as usize)
                    .map(|c| c.to_vec())
                    .collect();
                let ids = GinIds { row_ids, col_ids };
                // Only tags that match some PE taking part (a tag matching none is an error,
                // tested apart).
                let beats: Vec<Beat> = tags
                    .into_iter()
                    .enumerate()
                    .filter(|(_, (r, c, _))| {
                        (0..rows as usize).any(|b| {
                            ids.row_ids[b] == *r
                                && (0..cols as usize).any(|p| {
                                    let k = b * cols as usize + p;
                                    ids.col_ids[b][p] == *c && present[k] && active[k]
                                })
                        })
                    })
                    .map(|(i, (r, c, len))| {
                        let words: Vec<i16> = (0..len as i16).map(|k| i as i16 * 8 + k).collect();
                        Beat::new(r, c, &words)
                    })
                    .collect();
                Case {
                    rows,
                    cols,
                    row_bits,
                    col_bits,
                    width_words,
                    ids,
                    beats,
                    periods,
                    depth: depth.max(width_words),
                    present,
                    active,
                }
            },
        )
}

/// Runs a case; returns per PE the (cycle, word) taken, the GIN's counters, and cycles.
fn run(c: &Case, slow: bool) -> (Vec<Vec<(u64, i16)>>, rowsim_noc::NetCounters) {
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let input = Link::<Beat>::new("in", clk, 1, 2).unwrap();
    let mut outputs = vec![];
    let mut sinks = vec![];
    for b in 0..c.rows {
        let mut row = vec![];
        for p in 0..c.cols {
            let k = (b * c.cols + p) as usize;
            if !c.present[k] {
                row.push(None);
                sinks.push(None);
                continue;
            }
            let l = Link::<i16>::new("pe_in", clk, 1, c.depth).unwrap();
            row.push(Some(l.tx));
            sinks.push(Some(s.add(
                clk,
                Sink {
                    name: format!("top.pe_r{b}_c{p}"),
                    rx: l.rx,
                    period: if slow { c.periods[k] } else { 1 },
                    salt: k as u64,
                    got: vec![],
                },
            )));
        }
        outputs.push(row);
    }
    let spec = NetSpec {
        name: "top.noc.gin".into(),
        rows: c.rows,
        cols: c.cols,
        row_id_bits: c.row_bits,
        col_id_bits: c.col_bits,
        width_bits: 16 * c.width_words,
    };
    let mut gin = Gin::new(spec, input.rx, outputs, &c.ids).unwrap();
    gin.set_active(|b, p| c.active[b * c.cols as usize + p]);
    let gin = s.add(clk, gin);
    s.add(
        clk,
        Feeder::new("top.glb_side", input.tx, c.beats.clone(), 1),
    );
    s.set_watchdog(200);
    s.run().unwrap();
    let got = sinks
        .iter()
        .map(|id| id.map_or(vec![], |id| s.component::<Sink>(id).unwrap().got.clone()))
        .collect();
    (got, *s.component::<Gin>(gin).unwrap().counters())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_word_reaches_exactly_the_matching_pes(c in case()) {
        for slow in [false, true] {
            let (got, counters) = run(&c, slow);
            let mut delivered = 0u64;
            for b in 0..c.rows as usize {
                for p in 0..c.cols as usize {
                    let want: Vec<i16> = c.beats.iter()
                        .filter(|x| {
                            c.takes_part(b, p)
                                && c.ids.row_ids[b] == x.row
                                && c.ids.col_ids[b][p] == x.col
                        })
                        .flat_map(|x| x.words().to_vec())
                        .collect();
                    let taken: Vec<i16> = got[b * c.cols as usize + p].iter().map(|w| w.1).collect();
                    // Exactly the matching beats' words, in order: none lost, none duplicated.
                    prop_assert_eq!(&taken, &want, "PE ({}, {}) slow={}", b, p, slow);
                    delivered += want.len() as u64;
                }
            }
            prop_assert_eq!(counters.pe_words, delivered);
            prop_assert_eq!(counters.beats, c.beats.len() as u64);
            if !slow {
                // Always-ready PEs take a beat's first word the cycle after it is sent: every
                // destination of a beat sees it in the same cycle.
                let mut first_seen: std::collections::HashMap<i16, u64> = Default::default();
                for per_pe in &got {
                    for &(cycle, w) in per_pe {
                        if w % 8 == 0 {
                            let at = first_seen.entry(w).or_insert(cycle);
                            prop_assert_eq!(*at, cycle, "beat {} reached its PEs in different cycles", w / 8);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn flow_control_waits_for_the_slowest_destination() {
    // One bus, two PEs with the same column ID: every beat goes to both; PE 1 drains slowly, so
    // the GIN waits for it, and PE 0 never runs ahead by more than its FIFO.
    let c = Case {
        rows: 1,
        cols: 2,
        row_bits: 1,
        col_bits: 1,
        width_words: 1,
        ids: GinIds {
            row_ids: vec![0],
            col_ids: vec![vec![1, 1]],
        },
        beats: (0..20).map(|i| Beat::new(0, 1, &[i * 8])).collect(),
        periods: vec![1, 3],
        depth: 2,
        present: vec![true; 2],
        active: vec![true; 2],
    };
    let (got, counters) = run(&c, true);
    assert_eq!(got[0].len(), 20);
    assert_eq!(got[1].len(), 20);
    assert!(counters.wait_cycles > 20, "{counters:?}");
    for (k, (fast, slow)) in got[0].iter().zip(&got[1]).enumerate() {
        // The fast PE cannot take word k much before the slow one has made room for it.
        assert!(
            fast.0 + 3 * 2 + 2 >= slow.0,
            "word {k}: {fast:?} vs {slow:?}"
        );
    }
    assert_eq!((counters.fanout_total, counters.fanout_max), (40, 2));
}

#[test]
fn bad_ids_and_tags_name_the_network_and_value() {
    let spec = |rows, cols| NetSpec {
        name: "top.chip.noc.gin_ifmap".into(),
        rows,
        cols,
        row_id_bits: 4,
        col_id_bits: 5,
        width_bits: 16,
    };
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let mk = || Link::<Beat>::new("in", clk, 1, 2).unwrap();
    let outs = |r: usize, c: usize| {
        (0..r)
            .map(|_| {
                (0..c)
                    .map(|_| Some(Link::<i16>::new("o", clk, 1, 2).unwrap().tx))
                    .collect()
            })
            .collect::<Vec<_>>()
    };
    let e = Gin::new(
        spec(2, 2),
        mk().rx,
        outs(2, 2),
        &GinIds {
            row_ids: vec![0, 16],
            col_ids: vec![vec![0, 1], vec![0, 1]],
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "top.chip.noc.gin_ifmap: row ID 16 of X-bus 1 is wider than 4 bits"
    );
    let e = Gin::new(
        spec(1, 2),
        mk().rx,
        outs(1, 2),
        &GinIds {
            row_ids: vec![0],
            col_ids: vec![vec![0, 32]],
        },
    )
    .err()
    .unwrap();
    assert!(e
        .to_string()
        .contains("column ID 32 of PE (0, 1) is wider than 5 bits"));
    let e = Gin::new(
        spec(2, 2),
        mk().rx,
        outs(2, 2),
        &GinIds {
            row_ids: vec![0],
            col_ids: vec![vec![0, 1]],
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("IDs must cover the 2 x 2 array"));

    // A tag wider than its field, or matching no PE, stops the run naming the network.
    for (beat, want) in [
        (
            Beat::new(17, 0, &[1]),
            "tag (17, 0) is wider than its fields",
        ),
        (Beat::new(3, 0, &[1]), "tag (3, 0) matches no PE"),
    ] {
        let mut s = Scheduler::new();
        let clk = s.add_clock("core", 200_000_000).unwrap();
        let input = Link::<Beat>::new("in", clk, 1, 2).unwrap();
        let o = Link::<i16>::new("o", clk, 1, 2).unwrap();
        s.add(
            clk,
            Gin::new(
                spec(1, 1),
                input.rx,
                vec![vec![Some(o.tx)]],
                &GinIds {
                    row_ids: vec![0],
                    col_ids: vec![vec![0]],
                },
            )
            .unwrap(),
        );
        s.add(clk, Feeder::new("top.glb_side", input.tx, vec![beat], 1));
        let e = s.run().unwrap_err().to_string();
        assert!(
            e.contains("top.chip.noc.gin_ifmap") && e.contains(want),
            "{e}"
        );
        drop(o.rx);
    }
}

#[test]
fn gon_collects_every_psum_tagged_with_its_pe() {
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let (rows, cols) = (2usize, 3usize);
    let mut inputs = vec![];
    for b in 0..rows {
        let mut row = vec![];
        for p in 0..cols {
            if (b + p) % 2 == 0 {
                let l = Link::<i16>::new("psum_out", clk, 1, 4).unwrap();
                let words: Vec<i16> = (0..10).map(|k| (b * 100 + p * 10) as i16 + k).collect();
                s.add(
                    clk,
                    Feeder::new(&format!("top.pe_r{b}_c{p}"), l.tx, words, 1),
                );
                row.push(Some(l.rx));
            } else {
                row.push(None);
            }
        }
        inputs.push(row);
    }
    let out = Link::<GonBeat>::new("gon_out", clk, 1, 2).unwrap();
    let spec = NetSpec {
        name: "top.noc.gon".into(),
        rows: rows as u32,
        cols: cols as u32,
        row_id_bits: 4,
        col_id_bits: 4,
        width_bits: 64,
    };
    let gon = s.add(clk, Gon::new(spec, inputs, out.tx).unwrap());
    let sink = s.add(clk, Collector::new("top.glb_psum_port", out.rx, 1));
    s.run().unwrap();
    let got = s.component::<Collector<GonBeat>>(sink).unwrap().values();
    for b in 0..rows {
        for p in 0..cols {
            let words: Vec<i16> = got
                .iter()
                .filter(|x| x.bus as usize == b && x.pe as usize == p)
                .flat_map(|x| x.words[..x.len as usize].to_vec())
                .collect();
            let want: Vec<i16> = if (b + p) % 2 == 0 {
                (0..10).map(|k| (b * 100 + p * 10) as i16 + k).collect()
            } else {
                vec![]
            };
            assert_eq!(words, want, "PE ({b}, {p})");
        }
    }
    assert_eq!(s.component::<Gon>(gon).unwrap().counters().y_words, 30);
}
