//! The DRAM system end to end across the clock domains: coded ifmaps come back as written, the
//! bus moves 8 bytes a link cycle at saturation, and bus cycles match a closed-form count.

use std::path::Path;

use rowsim_config::HwConfig;
use rowsim_datapath::rlc::{encode, encoded_len, RlcFormat};
use rowsim_dram::{
    build, pack_raw, unpack_raw, DataType, DramCmd, DramController, DramCounters, DramData,
    Inbound, Outbound,
};
use rowsim_kernel::{AsyncFifoRead, Collector, Feeder, Link, Merge, Scheduler, TraceConfig};
use rowsim_tests::waves::{self};

fn hw(name: &str) -> HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A feature map of `rows` rows of `w` values with about `zeros` of them zero.
fn fmap(rows: usize, w: usize, zeros: f64, seed: u64) -> Vec<Vec<i16>> {
    let mut rng = rowsim_workload_rng(seed);
    (0..rows)
        .map(|_| {
            (0..w)
                .map(|_| {
                    if rng() < zeros {
                        0
                    } else {
                        (rng() * 1000.0) as i16 + 1
                    }
                })
                .collect()
        })
        .collect()
}

fn rowsim_workload_rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct ReadRun {
    values: Vec<i16>,
    counters: DramCounters,
    link_cycles: u64,
    first_bus: u64,
    last_bus: u64,
}

/// Reads coded rows back through the whole system; returns the decoded values and the
/// controller. With `trace`, writes a VCD.
fn read_coded(hw: &HwConfig, rows: &[Vec<i16>], trace: Option<&Path>) -> ReadRun {
    let fmt = RlcFormat::EYERISS;
    let mut memory = vec![];
    let mut cmds = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let coded = encode(&fmt, r);
        cmds.push(DramCmd {
            id: i as u32,
            write: false,
            addr: memory.len() as u64,
            len: coded.len() as u32,
            kind: DataType::Ifmap,
            coded: true,
        });
        memory.extend(coded);
    }
    let mut s = Scheduler::new();
    let core = s.add_clock("core", hw.clocks.core_hz).unwrap();
    let link = s.add_clock("link", hw.clocks.link_hz).unwrap();
    let (ports, ctrl) = build(&mut s, core, link, hw, memory, "top.dram").unwrap();
    s.add(
        core,
        Feeder::new("top.chip.dram_requester", ports.cmd, cmds, 1),
    );
    let values = Link::<i16>::new("top.chip.ifmap_values", core, 1, 8).unwrap();
    let mut inbound = Inbound::new("top.chip.rlc_in", fmt, ports.rdata, values.tx, 4);
    for (i, r) in rows.iter().enumerate() {
        let _ = i;
        inbound.expect(r.len(), true);
    }
    s.add(core, inbound);
    let sink = s.add(
        core,
        Collector::new("top.chip.glb_ifmap_writer", values.rx, 8),
    );
    drop(ports.wdata);
    if let Some(p) = trace {
        s.trace_to(&TraceConfig {
            vcd: p.to_path_buf(),
            scopes: vec!["top.dram".into(), "top.chip.rlc_in".into()],
            window: None,
        })
        .unwrap();
    }
    s.run().unwrap();
    s.finish_trace().unwrap();
    let first_last = trace.map(|p| {
        let w = waves::read(p).unwrap();
        // The bus's busy intervals: (rise, fall) times; one interval means it never idled.
        let ch = &w.signals["top.dram.bus_valid"];
        let rises: Vec<u64> = ch.iter().filter(|c| c.1 == 1).map(|c| c.0).collect();
        let falls: Vec<u64> = ch
            .iter()
            .skip(1)
            .filter(|c| c.1 == 0)
            .map(|c| c.0)
            .collect();
        assert_eq!(
            rises.len(),
            1,
            "the bus idled in the middle of the burst: {ch:?}"
        );
        (rises[0], falls[0])
    });
    let values = s.component::<Collector<i16>>(sink).unwrap().values();
    let link_cycles = s.cycles_of(link);
    let (first_bus, last_bus) = first_last.unwrap_or((0, 0));
    let counters = *s.component::<DramController>(ctrl).unwrap().counters();
    ReadRun {
        values,
        counters,
        link_cycles,
        first_bus,
        last_bus,
    }
}

#[test]
fn coded_ifmap_comes_back_as_written_at_8_bytes_a_link_cycle() {
    let hw = hw("eyeriss-v1");
    let rows = fmap(24, 55, 0.6, 3);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dram");
    std::fs::create_dir_all(&dir).unwrap();
    let run = read_coded(&hw, &rows, Some(&dir.join("saturation.vcd")));
    assert_eq!(
        run.values,
        rows.concat(),
        "what comes back is what was written"
    );
    // Closed form: one bus cycle per coded word, each row's count from the codec's size rule.
    let words: u64 = rows
        .iter()
        .map(|r| encoded_len(&RlcFormat::EYERISS, r) as u64)
        .sum();
    let c = &run.counters;
    assert_eq!(c.busy_cycles, words);
    assert_eq!(c.coded_words, words);
    assert_eq!(c.read_bytes[DataType::Ifmap as usize], 8 * words);
    // At saturation the bus never idles between the first word and the last (one busy
    // interval in the trace), and that interval is exactly `words` link cycles: 8 bytes a cycle.
    let edge = |t: u64| ((t as u128 * 60_000_000).div_ceil(1_000_000_000_000) - 1) as u64;
    assert_eq!(edge(run.last_bus) - edge(run.first_bus), words);
    assert!(c.idle_cycles < run.link_cycles);
}

#[test]
fn written_streams_read_back_and_raw_words_round_trip() {
    let hw = hw("tiny");
    let fmt = RlcFormat::EYERISS;
    // Two ofmap rows coded and written by the Outbound unit, then read back as stored words.
    let rows = fmap(2, 30, 0.5, 9);
    let coded: Vec<Vec<u64>> = rows.iter().map(|r| encode(&fmt, r)).collect();
    let total: usize = coded.iter().map(|c| c.len()).sum();
    let mut s = Scheduler::new();
    let core = s.add_clock("core", hw.clocks.core_hz).unwrap();
    let link = s.add_clock("link", hw.clocks.link_hz).unwrap();
    let (ports, ctrl) = build(&mut s, core, link, &hw, vec![0; 64], "top.dram").unwrap();
    let reads = Link::<DramCmd>::new("reads", core, 1, 2).unwrap();
    let writes = Link::<DramCmd>::new("writes", core, 1, 2).unwrap();
    let requester = s.add(
        core,
        Feeder::new("top.chip.dram_reader", reads.tx, vec![], 1),
    );
    s.add(
        core,
        Merge::new("top.chip.dram_cmds", vec![reads.rx, writes.rx], ports.cmd),
    );
    let values = Link::<i16>::new("vals", core, 1, 4).unwrap();
    let mut out = Outbound::new("top.chip.rlc_out", fmt, values.rx, writes.tx, ports.wdata);
    out.expect(rows[0].len(), 0);
    out.expect(rows[1].len(), coded[0].len() as u64);
    s.add(core, out);
    s.add(
        core,
        Feeder::new("top.chip.ofmap_values", values.tx, rows.concat(), 1),
    );
    // Read back over a link: the read-data FIFO's read port a component of its own.
    let rdata = Link::<DramData>::new("top.dram.rdata_fifo.out", core, 1, 2).unwrap();
    s.add(core, AsyncFifoRead::new(ports.rdata, rdata.tx));
    let sink = s.add(core, Collector::new("top.chip.readback", rdata.rx, 1));
    s.run().unwrap();
    // Then read the region back.
    s.component_mut::<Feeder<DramCmd>>(requester)
        .unwrap()
        .push([DramCmd {
            id: 9,
            write: false,
            addr: 0,
            len: total as u32,
            kind: DataType::Psum,
            coded: true,
        }]);
    s.run().unwrap();
    let back: Vec<u64> = s
        .component::<Collector<DramData>>(sink)
        .unwrap()
        .values()
        .iter()
        .map(|d| d.word)
        .collect();
    assert_eq!(back, coded.concat());
    let c = *s.component::<DramController>(ctrl).unwrap().counters();
    assert_eq!(c.write_bytes[DataType::Psum as usize], 8 * total as u64);
    assert_eq!(c.read_bytes[DataType::Psum as usize], 8 * total as u64);
    assert_eq!(
        pack_raw(&[1, -2, 3, 4, 5], 4),
        vec![0x0004_0003_FFFE_0001, 5]
    );
    assert_eq!(
        unpack_raw(&pack_raw(&[1, -2, 3, 4, 5], 4), 4, 5),
        vec![1, -2, 3, 4, 5]
    );
}

#[test]
fn a_command_outside_memory_names_the_controller_and_numbers() {
    let hw = hw("tiny");
    let mut s = Scheduler::new();
    let core = s.add_clock("core", hw.clocks.core_hz).unwrap();
    let link = s.add_clock("link", hw.clocks.link_hz).unwrap();
    let (ports, _) = build(&mut s, core, link, &hw, vec![0; 16], "top.dram").unwrap();
    s.add(
        core,
        Feeder::new(
            "top.chip.dram_requester",
            ports.cmd,
            vec![DramCmd {
                id: 4,
                write: false,
                addr: 10,
                len: 8,
                kind: DataType::Filter,
                coded: false,
            }],
            1,
        ),
    );
    let e = s.run().unwrap_err().to_string();
    assert!(
        e.contains(
            "top.dram: command 4: read of 8 words at address 10 is outside the 16-word memory"
        ),
        "{e}"
    );
}

#[test]
fn dram_burst_across_clock_domains_matches_its_golden_trace() {
    let hw = hw("tiny");
    let rows = vec![vec![0, 0, 5, 0, -1, 7, 9, 0, 0, 0, 3, 4, 0, 2, 8, 1]];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dram");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("burst.vcd");
    let run = read_coded(&hw, &rows, Some(&path));
    assert_eq!(run.values, rows[0]);
    let got = waves::check_golden(&path, "dram/burst.vcd");
    // The hand schedule of golden/README.md.
    let link_edge = |n: u64| (n + 1) * 1_000_000_000_000 / 60_000_000;
    let rise = |s: &str| got.signals[s].iter().find(|c| c.1 == 1).unwrap().0;
    assert_eq!(rise("top.dram.cmd_fifo.wr.wr_en"), 10_000); // core cycle 1
    assert_eq!(rise("top.dram.cmd_fifo.rd.rd_en"), link_edge(1));
    assert_eq!(rise("top.dram.rd_req"), link_edge(2));
    let bus: Vec<u64> = got.signals["top.dram.bus_valid"]
        .iter()
        .filter(|c| c.1 == 1)
        .map(|c| c.0)
        .collect();
    assert_eq!(bus[0], link_edge(6), "data 4 link cycles after the request");
    assert_eq!(encoded_len(&RlcFormat::EYERISS, &rows[0]), 3);
    assert_eq!(bus.len(), 1, "three words back to back");
}

/// What reached the far ends of the coder's two wires: (cycle, command), (cycle, word).
type Delivered = (Vec<(u64, DramCmd)>, Vec<(u64, u64)>);

/// Rows of values (one stream each, at address `100 r`) fed to an `Outbound` with `buffers`
/// write buffers, one value a cycle over a link of latency 1 and depth 2; commands and words go
/// out on wires of the given (latency, depth). What the command wire and the write-data wire
/// delivered: (cycle, command) and (cycle, word).
fn run_coder(
    rows: &[Vec<i16>],
    buffers: usize,
    every_edge: bool,
    cmd_wire: (u32, u32),
    word_wire: (u32, u32),
) -> Delivered {
    let mut s = Scheduler::new();
    s.set_every_edge(every_edge);
    let core = s.add_clock("core", 200_000_000).unwrap();
    let values = Link::<i16>::new("vals", core, 1, 2).unwrap();
    let cmds = Link::<DramCmd>::new("cmds", core, cmd_wire.0, cmd_wire.1).unwrap();
    let wdata = Link::<u64>::new("wdata", core, word_wire.0, word_wire.1).unwrap();
    let mut out = Outbound::new(
        "top.chip.rlc_out",
        RlcFormat::EYERISS,
        values.rx,
        cmds.tx,
        wdata.tx,
    )
    .with_buffers(buffers);
    for (r, row) in rows.iter().enumerate() {
        out.expect(row.len(), 100 * r as u64);
    }
    s.add(core, out);
    s.add(
        core,
        Feeder::new("top.chip.relu", values.tx, rows.concat(), 1),
    );
    let cmd_sink = s.add(core, Collector::new("top.dram.cmds", cmds.rx, 1));
    let word_sink = s.add(core, Collector::new("top.dram.wdata", wdata.rx, 1));
    s.run().unwrap();
    let cmds = s
        .component::<Collector<DramCmd>>(cmd_sink)
        .unwrap()
        .items
        .clone();
    let words = s
        .component::<Collector<u64>>(word_sink)
        .unwrap()
        .items
        .clone();
    (cmds, words)
}

/// `rows` rows of `n` nonzero values.
fn nonzero_rows(rows: usize, n: usize) -> Vec<Vec<i16>> {
    (0..rows)
        .map(|r| (0..n).map(|i| (r * n + i) as i16 + 1).collect())
        .collect()
}

/// The outbound coder's write buffers, against a hand count. Rows of `n` nonzero values come
/// one a cycle; each codes to `w` words; the write-data wire takes a word every `k` cycles
/// (latency `k - 1`, one credit), commands go on a wire of their own. Row `r`'s command and
/// first word leave at `t_r`, its word `j` at `t_r + j k`:
/// - the last value of row 0 is taken at cycle `n` (value `i` is visible from `i + 1`), coded
///   at once, sent at the next edge: `t_0 = n + 1`;
/// - one buffer: the next row's values are taken from the edge its last word leaves, so
///   `t_{r+1} = t_r + (w - 1) k + n`;
/// - two (ping-pong): they come in while the row before it leaves, so with the bus as fast as
///   the values (`w k <= n`), `t_{r+1} = t_r + n`.
#[test]
fn the_coder_takes_a_row_while_the_row_before_it_leaves() {
    let fmt = RlcFormat::EYERISS;
    let (n, k, rows) = (9usize, 3u64, 4usize);
    let data = nonzero_rows(rows, n);
    let w = encoded_len(&fmt, &data[0]) as u64;
    assert_eq!(w, 3, "nine nonzero values, three pairs a word");
    assert!(w * k <= n as u64);
    for buffers in [1usize, 2] {
        for every_edge in [false, true] {
            let (cmds, words) = run_coder(&data, buffers, every_edge, (1, 2), (k as u32 - 1, 1));
            let t = |r: u64| {
                let per_row = if buffers == 1 {
                    (w - 1) * k + n as u64
                } else {
                    n as u64
                };
                n as u64 + 1 + r * per_row
            };
            let want_cmds: Vec<(u64, u64, u32)> = (0..rows as u64)
                .map(|r| (t(r) + 1, 100 * r, w as u32))
                .collect();
            assert_eq!(
                cmds.iter()
                    .map(|(c, d)| (*c, d.addr, d.len))
                    .collect::<Vec<_>>(),
                want_cmds,
                "{buffers} buffers, every edge {every_edge}"
            );
            let want_words: Vec<(u64, u64)> = (0..rows)
                .flat_map(|r| {
                    let coded = encode(&fmt, &data[r]);
                    (0..w).map(move |j| (t(r as u64) + j * k + (k - 1), coded[j as usize]))
                })
                .collect();
            assert_eq!(
                words, want_words,
                "{buffers} buffers, every edge {every_edge}"
            );
        }
    }
}

/// A buffer stays taken until its stream's command has gone too: with commands slower than the
/// rows (a command every `k` cycles on its wire; one-word rows of `n` values, their words on a
/// fast wire), the coder stops taking values while `buffers` coded rows wait for their
/// commands. By hand, row `r`'s last value is taken at `c_r` and its command leaves at `s_r`:
/// - `c_0 = n`; the next row's first value is taken at the first edge after `c_r` at which
///   fewer than `buffers` rows wait, the edge after `c_r` or the one at which the command of
///   row `r + 1 - buffers` leaves: `c_{r+1} = max(c_r + 1, s_{r+1-buffers}) + n - 1`;
/// - `s_r = max(c_r + 1, s_{r-1} + k)`; the row's word leaves at `c_r + 1`.
#[test]
fn a_write_buffer_is_held_until_its_command_has_gone() {
    let (n, k, rows) = (3usize, 6u64, 8usize);
    let data = nonzero_rows(rows, n);
    assert_eq!(encoded_len(&RlcFormat::EYERISS, &data[0]), 1);
    for buffers in [1usize, 2, 3] {
        for every_edge in [false, true] {
            let (cmds, words) = run_coder(&data, buffers, every_edge, (k as u32 - 1, 1), (1, 2));
            let (mut c, mut sent) = (vec![0u64; rows], vec![0u64; rows]);
            for r in 0..rows {
                c[r] = if r == 0 {
                    n as u64
                } else {
                    let free = r.checked_sub(buffers).map_or(0, |older| sent[older]);
                    (c[r - 1] + 1).max(free) + n as u64 - 1
                };
                sent[r] = if r == 0 {
                    c[r] + 1
                } else {
                    (c[r] + 1).max(sent[r - 1] + k)
                };
            }
            let got_cmds: Vec<u64> = cmds.iter().map(|(t, _)| *t).collect();
            let want_cmds: Vec<u64> = sent.iter().map(|t| t + k - 1).collect();
            assert_eq!(
                got_cmds, want_cmds,
                "{buffers} buffers, every edge {every_edge}"
            );
            let got_words: Vec<u64> = words.iter().map(|(t, _)| *t).collect();
            let want_words: Vec<u64> = c.iter().map(|t| t + 2).collect();
            assert_eq!(
                got_words, want_words,
                "{buffers} buffers, every edge {every_edge}"
            );
        }
    }
}
