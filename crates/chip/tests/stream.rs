//! The GLB controller's datapaths on a real GLB: write a value stream, read it back as beats and
//! as values, with padding zeros in order, and unpack raw DRAM words.

use rowsim_dram::DramData;
use rowsim_glb::desc::{ReadDesc, Region, Words};
use rowsim_glb::sequencer::{GlbAddr, GlbReader, GlbWriter, ReadItem, ReadOut, Src, WriteIn};
use rowsim_glb::{DataType, Glb, GlbLayout, GlbPort, GlbReq, GlbResp};
use rowsim_kernel::{AsyncFifo, Collector, ComponentId, Feeder, Link, Scheduler, StepOrder};
use rowsim_noc::Beat;

fn hw() -> rowsim_config::HwConfig {
    rowsim_config::load(format!(
        "{}/../../hw-configs/tiny.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn written_values_read_back_as_beats_and_values() {
    let hw = hw();
    let layout = GlbLayout::allocate("t", 256, 256, 64, &hw).unwrap();
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let mut ports = vec![];
    let mut ends = vec![];
    for _ in 0..3 {
        let q = Link::<GlbReq>::new("req", clk, 1, 2).unwrap();
        let a = Link::<GlbResp>::new("resp", clk, 1, 2).unwrap();
        ports.push(GlbPort {
            req: q.rx,
            resp: a.tx,
        });
        ends.push((q.tx, a.rx));
    }
    let glb = s.add(clk, Glb::new("top.chip.glb", layout, 1, ports));
    let (r2, r1, r0) = (
        ends.pop().unwrap(),
        ends.pop().unwrap(),
        ends.pop().unwrap(),
    );
    let values: Vec<i16> = (0..10).map(|k| k * 11 - 40).collect();
    let vin = Link::<i16>::new("vin", clk, 1, 2).unwrap();
    s.add(clk, Feeder::new("top.src", vin.tx, values.clone(), 1));
    let mut w = GlbWriter::new("top.chip.glb_loader", r0.0, r0.1, WriteIn::Values(vin.rx));
    let addr = |k: u64| GlbAddr::of(&layout, DataType::Ifmap, 3 + k).unwrap();
    w.expect(Words {
        region: Region::new(layout, DataType::Ifmap),
        base: 3,
        count: 10,
    });
    s.add(clk, w);
    s.run().unwrap();
    // Entries hold the values at word addresses 3..13 (lanes of 4).
    assert_eq!(
        s.component::<Glb>(glb).unwrap().peek(0, 0),
        Some((values[0] as u16 as u64) << 48)
    );
    // Beats: one word a beat, a zero chunk between words 1 and 2, two tags on word 0.
    let beats = Link::<Beat>::new("gin_in", clk, 1, 2).unwrap();
    let mut rd = GlbReader::new("top.chip.ifmap_seq", r1.0, r1.1, ReadOut::Beats(beats.tx));
    let glb_item = |k: u64, tags: Vec<(u16, u16)>| {
        let a = addr(k);
        ReadItem {
            src: Src::Glb {
                bank: a.bank,
                entry: a.entry,
                lane: a.lane,
                len: 1,
                dtype: DataType::Ifmap,
            },
            tags: tags.into(),
        }
    };
    rd.push([
        glb_item(0, vec![(0, 1), (2, 3)]),
        glb_item(1, vec![(0, 2)]),
        ReadItem {
            src: Src::Zeros(1),
            tags: vec![(1, 1)].into(),
        },
        glb_item(2, vec![(0, 3)]),
    ]);
    s.add(clk, rd);
    let got = s.add(clk, Collector::new("top.gin", beats.rx, 1));
    // Values with ReLU: words 0..4 (the negatives become 0).
    let vout = Link::<i16>::new("vout", clk, 1, 2).unwrap();
    let mut ro = GlbReader::new(
        "top.chip.readout",
        r2.0,
        r2.1,
        ReadOut::Values {
            tx: vout.tx,
            relu: true,
        },
    );
    ro.push((0..4).map(|k| glb_item(k, vec![])));
    s.add(clk, ro);
    let vals = s.add(clk, Collector::new("top.relu_out", vout.rx, 1));
    s.run().unwrap();
    let b: Vec<(u16, u16, i16)> = s
        .component::<Collector<Beat>>(got)
        .unwrap()
        .values()
        .iter()
        .map(|b| (b.row, b.col, b.words[0]))
        .collect();
    assert_eq!(
        b,
        vec![
            (0, 1, values[0]),
            (2, 3, values[0]),
            (0, 2, values[1]),
            (1, 1, 0),
            (0, 3, values[2])
        ]
    );
    let v = s.component::<Collector<i16>>(vals).unwrap().values();
    assert_eq!(
        v,
        values[..4].iter().map(|x| (*x).max(0)).collect::<Vec<_>>()
    );
    let c = s.component::<Glb>(glb).unwrap().counters();
    assert_eq!(c.writes[DataType::Ifmap as usize], 10);
    assert_eq!(
        c.reads[DataType::Ifmap as usize],
        3 + 4,
        "one word a read; zeros cost no read"
    );
}

#[test]
fn raw_words_unpack_to_their_stream_lengths() {
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let link = s.add_clock("link", 60_000_000).unwrap();
    // The words come through the read-data FIFO, whose read port the unit steps.
    let (inp, rdata) =
        AsyncFifo::insert_write_port::<DramData>(&mut s, "top.dram.rdata_fifo", link, clk, 4, 2)
            .unwrap();
    let out = Link::<i16>::new("out", clk, 1, 2).unwrap();
    let words = rowsim_dram::pack_raw(&[1, 2, 3, 4, 5, 6], 4);
    let data: Vec<DramData> = words
        .iter()
        .enumerate()
        .map(|(i, &w)| DramData {
            id: 0,
            word: w,
            last: i == 1,
        })
        .collect();
    s.add(link, Feeder::new("top.dram", inp, data, 1));
    let mut u = rowsim_dram::Inbound::new(
        "top.chip.unpack",
        rowsim_datapath::rlc::RlcFormat::EYERISS,
        rdata,
        out.tx,
        4,
    );
    u.expect(6, false);
    s.add(clk, u);
    let c = s.add(clk, Collector::new("top.sink", out.rx, 1));
    s.run().unwrap();
    assert_eq!(
        s.component::<Collector<i16>>(c).unwrap().values(),
        vec![1, 2, 3, 4, 5, 6]
    );
}

/// Jobs over the job port: each job's id comes back on the done port once its last beat has
/// been sent (an empty job at once, in order), and a writer's once its last word is written.
#[test]
fn sequencers_report_each_job_done_after_its_last_beat_or_write() {
    use rowsim_glb::sequencer::{ReadJob, WriteJob};
    let hw = hw();
    let layout = GlbLayout::allocate("t", 256, 256, 64, &hw).unwrap();
    let mut s = Scheduler::new();
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let link = |n: &str| Link::<GlbReq>::new(n, clk, 1, 2).unwrap();
    let (q0, q1) = (link("q0"), link("q1"));
    let a0 = Link::<GlbResp>::new("a0", clk, 1, 2).unwrap();
    let a1 = Link::<GlbResp>::new("a1", clk, 1, 2).unwrap();
    let ports = vec![
        GlbPort {
            req: q0.rx,
            resp: a0.tx,
        },
        GlbPort {
            req: q1.rx,
            resp: a1.tx,
        },
    ];
    let glb = s.add(clk, Glb::new("top.chip.glb", layout, 1, ports));
    // Reader: jobs 7 (two zero chunks), 8 (none), 9 (one), beats taken one a cycle.
    let beats = Link::<Beat>::new("beats", clk, 1, 2).unwrap();
    let rjobs = Link::<ReadJob>::new("rjobs", clk, 1, 4).unwrap();
    let rdone = Link::<u32>::new("rdone", clk, 1, 4).unwrap();
    s.add(
        clk,
        GlbReader::new("top.rd", q0.tx, a0.rx, ReadOut::Beats(beats.tx))
            .with_job_ports(rjobs.rx, rdone.tx),
    );
    let zero = |tag: u16| ReadItem {
        src: Src::Zeros(1),
        tags: vec![(0, tag)].into(),
    };
    let jobs = vec![
        ReadJob {
            id: 7,
            items: ReadDesc::List(vec![zero(1), zero(2)]),
        },
        ReadJob {
            id: 8,
            items: ReadDesc::List(vec![]),
        },
        ReadJob {
            id: 9,
            items: ReadDesc::List(vec![zero(3)]),
        },
    ];
    // The jobs are queued before the first edge (as a controller's step at cycle 0 would).
    let before = before_first_edge(clk);
    let mut rjobs_tx = rjobs.tx;
    for j in jobs {
        rjobs_tx.try_send(&before, j).unwrap();
    }
    let got = s.add(clk, Collector::new("top.gin", beats.rx, 1));
    let rd_done = s.add(clk, Collector::new("top.rd_done", rdone.rx, 4));
    // Writer: job 5 writes three values.
    let vin = Link::<i16>::new("vin", clk, 1, 2).unwrap();
    let wjobs = Link::<WriteJob>::new("wjobs", clk, 1, 4).unwrap();
    let wdone = Link::<u32>::new("wdone", clk, 1, 4).unwrap();
    s.add(
        clk,
        GlbWriter::new("top.wr", q1.tx, a1.rx, WriteIn::Values(vin.rx))
            .with_job_ports(wjobs.rx, wdone.tx),
    );
    let wjob = WriteJob {
        id: 5,
        values: vec![Words {
            region: Region::new(layout, DataType::Ifmap),
            base: 0,
            count: 3,
        }],
        gon: vec![],
    };
    let mut wjobs_tx = wjobs.tx;
    wjobs_tx.try_send(&before, wjob).unwrap();
    s.add(clk, Feeder::new("top.src", vin.tx, vec![1i16, 2, 3], 1));
    let wr_done = s.add(clk, Collector::new("top.wr_done", wdone.rx, 4));
    s.run().unwrap();
    let beat_cycles: Vec<u64> = s
        .component::<Collector<Beat>>(got)
        .unwrap()
        .items
        .iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(beat_cycles.len(), 3);
    let done = s
        .component::<Collector<u32>>(rd_done)
        .unwrap()
        .items
        .clone();
    let ids: Vec<u32> = done.iter().map(|d| d.1).collect();
    assert_eq!(ids, vec![7, 8, 9]);
    // A reader's job is done once its last chunk is sent: its id arrives after its last beat
    // (the beat and the id are both one link away from the reader).
    assert!(done[0].0 >= beat_cycles[1] && done[0].0 < beat_cycles[2]);
    assert!(done[2].0 >= beat_cycles[2]);
    let wdone = s
        .component::<Collector<u32>>(wr_done)
        .unwrap()
        .items
        .clone();
    assert_eq!(wdone.iter().map(|d| d.1).collect::<Vec<_>>(), vec![5]);
    // ... and by then the three values are in the GLB's first ifmap entry.
    assert_eq!(
        s.component::<Glb>(glb).unwrap().peek(0, 0),
        Some(1 | 2 << 16 | 3 << 32)
    );
}

/// A step context at edge 0 of `clk`, for sends made before the run starts (visible from
/// edge 1, as a send at edge 0 would be).
fn before_first_edge(clk: rowsim_kernel::Clock) -> rowsim_kernel::StepCtx {
    rowsim_kernel::StepCtx {
        domain: clk.id,
        cycle: 0,
        time: 0,
        ahead: false,
        parts: 0,
    }
}

/// A reader item: `len` words of the ifmap region from word `k` (within one entry), one beat
/// per tag.
fn ifmap_item(layout: &GlbLayout, k: u64, len: u8, tags: Vec<(u16, u16)>) -> ReadItem {
    let a = GlbAddr::of(layout, DataType::Ifmap, k).unwrap();
    ReadItem {
        src: Src::Glb {
            bank: a.bank,
            entry: a.entry,
            lane: a.lane,
            len,
            dtype: DataType::Ifmap,
        },
        tags: tags.into(),
    }
}

/// Takes one item every `every` cycles and records when.
struct Sipper<T> {
    name: String,
    input: rowsim_kernel::LinkRx<T>,
    every: u64,
    got: Vec<(u64, T)>,
}

impl<T: Send + 'static> rowsim_kernel::Component for Sipper<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(
        &mut self,
        cx: &rowsim_kernel::StepCtx,
    ) -> Result<rowsim_kernel::Activity, rowsim_kernel::Fault> {
        if cx.cycle.is_multiple_of(self.every) {
            if let Some(v) = self.input.try_recv(cx) {
                self.got.push((cx.cycle, v));
                return Ok(rowsim_kernel::Activity::Moved);
            }
        }
        Ok(rowsim_kernel::Activity::Idle)
    }
    fn holds_work(&self) -> bool {
        self.input.in_flight() > 0
    }
}

/// A beat's (row, column) tag and its words.
type BeatSeen<W> = (u16, u16, W);

/// What the requesters of one GLB saw, and when: every beat, value and psum delivered, and
/// the GLB's counters and contents at the end.
#[derive(Debug, PartialEq)]
struct Seen {
    beats_a: Vec<(u64, BeatSeen<i16>)>,
    beats_b: Vec<(u64, BeatSeen<[i16; 4]>)>,
    values: Vec<(u64, i16)>,
    dones: Vec<(u64, u32)>,
    counters: rowsim_glb::GlbCounters,
    entries: Vec<Option<u64>>,
    cycles: u64,
}

/// The same traffic through a GLB whose sequencers are components of their own on ports of
/// links (`inner = false`) or the GLB's own (`inner = true`): a loader writing values as they
/// come, a psum writer taking GON beats, two readers streaming beats of one bank to slow
/// receivers (bank conflicts, full response FIFOs) and a readout through ReLU; or (`!full`)
/// the readout alone with one read, so that nothing else steps the GLB.
fn glb_traffic(inner: bool, every_edge: bool, full: bool) -> Seen {
    use rowsim_glb::sequencer::{GlbReader, GlbWriter, ReadJob};
    use rowsim_glb::{InnerEnd, LinkEnd};
    use rowsim_noc::GonBeat;
    let hw = hw();
    let layout = GlbLayout::allocate("t", 256, 256, 64, &hw).unwrap();
    let mut s = Scheduler::new();
    s.set_every_edge(every_edge);
    s.set_watchdog(1000);
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let ifmap = |base: u64, count: u64| Words {
        region: Region::new(layout, DataType::Ifmap),
        base,
        count,
    };
    // The loader: 48 values, fed two a cycle into a FIFO of 2.
    let values: Vec<i16> = if full {
        (0..48).map(|k| (k * 37 % 101) as i16 - 50).collect()
    } else {
        vec![]
    };
    let loaded = values.len() as u64;
    let vin = Link::<i16>::new("vin", clk, 1, 2).unwrap();
    s.add(clk, Feeder::new("top.src", vin.tx, values, 2));
    // The psum writer: PE (0, 1) and (1, 0) send 8 words each, two a beat.
    let gon = Link::<GonBeat>::new("gon", clk, 1, 2).unwrap();
    let gbeats: Vec<GonBeat> = (0..if full { 8 } else { 0 })
        .map(|k| GonBeat {
            bus: (k % 2) as u16,
            pe: 1 - (k % 2) as u16,
            len: 2,
            words: [k as i16, -(k as i16), 0, 0],
        })
        .collect();
    s.add(clk, Feeder::new("top.gon", gon.tx, gbeats, 1));
    let psums = |base: u64| Words {
        region: Region::new(layout, DataType::Psum),
        base,
        count: 8,
    };
    // Reader items: single words of entries 0..12 with two tags, whole entries, a zero chunk.
    let item = |k: u64, len: u8, tags: Vec<(u16, u16)>| ifmap_item(&layout, k, len, tags);
    let items_a: Vec<ReadItem> = (0..24)
        .map(|k| {
            if k == 7 {
                ReadItem {
                    src: Src::Zeros(1),
                    tags: vec![(3, 3)].into(),
                }
            } else {
                item(k * 2, 1, vec![(0, k as u16), (1, k as u16)])
            }
        })
        .collect();
    let items_b: Vec<ReadItem> = (0..12).map(|k| item(k * 4, 4, vec![(2, 0)])).collect();
    let items_r: Vec<ReadItem> = (0..if full { 20 } else { 1 })
        .map(|k| item(k, 1, vec![]))
        .collect();
    let (items_a, items_b) = if full {
        (items_a, items_b)
    } else {
        (vec![], vec![])
    };
    let psums = |base: u64| Words {
        count: if full { 8 } else { 0 },
        ..psums(base)
    };
    let a = Link::<Beat>::new("a", clk, 1, 2).unwrap();
    let b = Link::<Beat>::new("b", clk, 1, 2).unwrap();
    let v = Link::<i16>::new("v", clk, 1, 2).unwrap();
    let out_a = ReadOut::Beats(a.tx);
    let out_b = ReadOut::Beats(b.tx);
    let out_v = ReadOut::Values {
        tx: v.tx,
        relu: true,
    };
    // The readout's reads come as two jobs over its job port, queued before the first edge
    // (visible from edge 1: a reader idle at edge 0 must be stepped for them); its done ids
    // come back on its done port.
    let rjobs = Link::<ReadJob>::new("rjobs", clk, 1, 4).unwrap();
    let rdone = Link::<u32>::new("rdone", clk, 1, 4).unwrap();
    let before = before_first_edge(clk);
    let mut rjobs_tx = rjobs.tx;
    for (id, items) in [(1, items_r), (2, vec![])] {
        let job = ReadJob {
            id,
            items: ReadDesc::List(items),
        };
        assert!(rjobs_tx.try_send(&before, job).is_ok());
    }
    let mut job_ports = Some((rjobs.rx, rdone.tx));
    let glb = if inner {
        let mut g = Glb::new("top.chip.glb", layout, 1, vec![]);
        let mut loader = GlbWriter::<InnerEnd>::inner("top.ld", WriteIn::Values(vin.rx));
        loader.expect(ifmap(0, loaded));
        g.add_writer(loader);
        let mut pw = GlbWriter::<InnerEnd>::inner("top.pw", WriteIn::Gon(gon.rx));
        pw.expect_from((0, 1), psums(0));
        pw.expect_from((1, 0), psums(8));
        g.add_writer(pw);
        for (name, out, items) in [
            ("top.ra", out_a, items_a),
            ("top.rb", out_b, items_b),
            ("top.rv", out_v, vec![]),
        ] {
            let mut r = GlbReader::<InnerEnd>::inner(name, out);
            match (name, job_ports.take()) {
                ("top.rv", Some((jobs, done))) => r = r.with_job_ports(jobs, done),
                (_, ports) => {
                    job_ports = ports;
                    r.push(items);
                }
            }
            g.add_reader(r);
        }
        s.add(clk, g)
    } else {
        let mut ports = vec![];
        let mut end = || {
            let q = Link::<GlbReq>::new("req", clk, 1, 2).unwrap();
            let a = Link::<GlbResp>::new("resp", clk, 1, 2).unwrap();
            ports.push(GlbPort {
                req: q.rx,
                resp: a.tx,
            });
            LinkEnd {
                req: q.tx,
                resp: a.rx,
            }
        };
        let mut ends: Vec<LinkEnd> = (0..5).map(|_| end()).collect();
        let mut next = || ends.remove(0);
        let e = next();
        let mut loader = GlbWriter::new("top.ld", e.req, e.resp, WriteIn::Values(vin.rx));
        loader.expect(ifmap(0, loaded));
        s.add(clk, loader);
        let e = next();
        let mut pw = GlbWriter::new("top.pw", e.req, e.resp, WriteIn::Gon(gon.rx));
        pw.expect_from((0, 1), psums(0));
        pw.expect_from((1, 0), psums(8));
        s.add(clk, pw);
        for (name, out, items) in [
            ("top.ra", out_a, items_a),
            ("top.rb", out_b, items_b),
            ("top.rv", out_v, vec![]),
        ] {
            let e = next();
            let mut r = GlbReader::new(name, e.req, e.resp, out);
            match (name, job_ports.take()) {
                ("top.rv", Some((jobs, done))) => r = r.with_job_ports(jobs, done),
                (_, ports) => {
                    job_ports = ports;
                    r.push(items);
                }
            }
            s.add(clk, r);
        }
        s.add(clk, Glb::new("top.chip.glb", layout, 1, ports))
    };
    let sa = s.add(
        clk,
        Sipper {
            name: "top.sa".into(),
            input: a.rx,
            every: 3,
            got: vec![],
        },
    );
    let sb = s.add(
        clk,
        Sipper {
            name: "top.sb".into(),
            input: b.rx,
            every: 1,
            got: vec![],
        },
    );
    let dones = s.add(clk, Collector::new("top.rv_done", rdone.rx, 1));
    let sv = s.add(
        clk,
        Sipper {
            name: "top.sv".into(),
            input: v.rx,
            every: 2,
            got: vec![],
        },
    );
    s.run().unwrap();
    let g = s.component::<Glb>(glb).unwrap();
    let seen = Seen {
        beats_a: s
            .component::<Sipper<Beat>>(sa)
            .unwrap()
            .got
            .iter()
            .map(|(c, b)| (*c, (b.row, b.col, b.words[0])))
            .collect(),
        beats_b: s
            .component::<Sipper<Beat>>(sb)
            .unwrap()
            .got
            .iter()
            .map(|(c, b)| (*c, (b.row, b.col, b.words)))
            .collect(),
        values: s.component::<Sipper<i16>>(sv).unwrap().got.clone(),
        dones: s.component::<Collector<u32>>(dones).unwrap().items.clone(),
        counters: *g.counters(),
        entries: (0..layout.banks())
            .flat_map(|bank| (0..16).map(move |e| (bank, e)))
            .map(|(bank, e)| g.peek(bank, e))
            .collect(),
        cycles: s.cycle(),
    };
    seen
}

/// The GLB's own sequencers, stepped inside it on ports of wires, see every word at the cycle
/// they see it as components of their own on ports of links, event-driven or at every edge.
#[test]
fn sequencers_inside_the_glb_keep_their_cycles() {
    let reference = glb_traffic(false, true, true);
    // The traffic is what the test means: every stream delivered, conflicts and stalls seen.
    assert_eq!(reference.beats_a.len(), 2 * 23 + 1);
    assert_eq!(reference.beats_b.len(), 12);
    assert_eq!(reference.values.len(), 20);
    assert_eq!(reference.counters.writes[DataType::Psum as usize], 16);
    assert!(reference.counters.conflict_cycles > 0, "{reference:?}");
    for (inner, every_edge) in [(false, false), (true, true), (true, false)] {
        assert_eq!(
            glb_traffic(inner, every_edge, true),
            reference,
            "inner {inner}, every edge {every_edge}"
        );
    }
    // Alone, the readout is stepped only by its own port's wake-ups (its last response
    // arrives while it has nothing else to do).
    let lone = glb_traffic(false, true, false);
    assert_eq!(lone.values.len(), 1);
    assert_eq!(lone.dones.iter().map(|d| d.1).collect::<Vec<_>>(), [1, 2]);
    for (inner, every_edge) in [(false, false), (true, true), (true, false)] {
        assert_eq!(
            glb_traffic(inner, every_edge, false),
            lone,
            "alone: inner {inner}, every edge {every_edge}"
        );
    }
}

/// A loader alone in the GLB, with two write jobs whose values come in bursts: the cycle each
/// job's id comes back (once its last write is acknowledged) and the cycle the run ends, with
/// the loader on a port of links (a component of its own) or the GLB's own port, event-driven
/// or at every edge. Nothing else steps the block here: a done id a cycle late, or a run
/// that cannot end, shows (an event-driven block must be stepped at the edge each job's last
/// acknowledgement arrives, with no value arriving then).
fn lone_loader(inner: bool, every_edge: bool) -> (Vec<(u64, u32)>, u64, Option<u64>) {
    use rowsim_glb::sequencer::WriteJob;
    use rowsim_glb::{InnerEnd, LinkEnd};
    let hw = hw();
    let layout = GlbLayout::allocate("t", 256, 256, 64, &hw).unwrap();
    let mut s = Scheduler::new();
    s.set_every_edge(every_edge);
    s.set_watchdog(1000);
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let vin = Link::<i16>::new("vin", clk, 1, 8).unwrap();
    let wjobs = Link::<WriteJob>::new("wjobs", clk, 1, 4).unwrap();
    let wdone = Link::<u32>::new("wdone", clk, 1, 4).unwrap();
    let words = |base: u64, count: u64| Words {
        region: Region::new(layout, DataType::Ifmap),
        base,
        count,
    };
    let before = before_first_edge(clk);
    let mut wjobs_tx = wjobs.tx;
    // Job 3: 10 values (two whole entries and half of one); job 4: 9 more from word 12.
    for (id, base, count) in [(3, 0, 10), (4, 12, 9)] {
        let job = WriteJob {
            id,
            values: vec![words(base, count)],
            gon: vec![],
        };
        wjobs_tx.try_send(&before, job).unwrap();
    }
    // Four values a cycle: job 3's from edge 1, job 4's from edge 40. Job 3's last write is
    // acknowledged while nothing arrives (job 4's values expected), and so is job 4's.
    let values: Vec<(u64, i16)> = (1..=19)
        .map(|v| (if v <= 10 { 1 } else { 40 }, v))
        .collect();
    s.add(
        clk,
        Released {
            name: "top.src".into(),
            out: vin.tx,
            items: values.into(),
        },
    );
    let glb = if inner {
        let mut g = Glb::new("top.chip.glb", layout, 1, vec![]);
        g.add_writer(
            GlbWriter::<InnerEnd>::inner("top.ld", WriteIn::Values(vin.rx))
                .with_job_ports(wjobs.rx, wdone.tx),
        );
        s.add(clk, g)
    } else {
        let q = Link::<GlbReq>::new("req", clk, 1, 2).unwrap();
        let a = Link::<GlbResp>::new("resp", clk, 1, 2).unwrap();
        let e = LinkEnd {
            req: q.tx,
            resp: a.rx,
        };
        s.add(
            clk,
            GlbWriter::new("top.ld", e.req, e.resp, WriteIn::Values(vin.rx))
                .with_job_ports(wjobs.rx, wdone.tx),
        );
        let port = GlbPort {
            req: q.rx,
            resp: a.tx,
        };
        s.add(clk, Glb::new("top.chip.glb", layout, 1, vec![port]))
    };
    let done = s.add(clk, Collector::new("top.done", wdone.rx, 1));
    s.run().unwrap();
    let dones = s.component::<Collector<u32>>(done).unwrap().items.clone();
    // The entry that holds the last value (word 20).
    let a = GlbAddr::of(&layout, DataType::Ifmap, 20).unwrap();
    let last = s.component::<Glb>(glb).unwrap().peek(a.bank, a.entry);
    (dones, s.cycle(), last)
}

/// Sends each item from its edge on, in order, as many an edge as its link takes.
struct Released<T> {
    name: String,
    out: rowsim_kernel::LinkTx<T>,
    items: std::collections::VecDeque<(u64, T)>,
}

impl<T: Copy + Send + 'static> rowsim_kernel::Component for Released<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn step(
        &mut self,
        cx: &rowsim_kernel::StepCtx,
    ) -> Result<rowsim_kernel::Activity, rowsim_kernel::Fault> {
        let mut moved = false;
        while let Some(&(at, v)) = self.items.front() {
            if at > cx.cycle || self.out.try_send(cx, v).is_err() {
                break;
            }
            self.items.pop_front();
            moved = true;
        }
        Ok(rowsim_kernel::Activity::from_moved(moved))
    }
    fn holds_work(&self) -> bool {
        !self.items.is_empty()
    }
    fn wake(
        &self,
        cx: &rowsim_kernel::StepCtx,
        _did: rowsim_kernel::Activity,
    ) -> rowsim_kernel::Wake {
        match self.items.front() {
            Some(&(at, _)) if at > cx.cycle => rowsim_kernel::Wake::IdleFor(at - cx.cycle),
            // Waiting for room: a credit wakes it.
            Some(_) => rowsim_kernel::Wake::Idle,
            None => rowsim_kernel::Wake::Idle,
        }
    }
}

#[test]
fn a_loader_in_the_glb_reports_each_job_at_its_last_acknowledgement() {
    let reference = lone_loader(false, true);
    assert_eq!(
        reference.0.iter().map(|d| d.1).collect::<Vec<_>>(),
        [3, 4],
        "{reference:?}"
    );
    for (inner, every_edge) in [(false, false), (true, true), (true, false)] {
        assert_eq!(
            lone_loader(inner, every_edge),
            reference,
            "inner {inner}, every edge {every_edge}"
        );
    }
}

/// What the PEs behind two GINs saw, and when: each PE's words with their cycles, the GINs'
/// and the GLB's counters, and the cycle the run ended.
#[derive(Debug, PartialEq)]
struct GinSeen {
    words: Vec<Vec<(u64, i16)>>,
    gins: Vec<rowsim_noc::NetCounters>,
    glb: rowsim_glb::GlbCounters,
    cycles: u64,
}

/// Two GLB readers streaming to two GINs of a 2 x 2 array, as the chip's GLB block holds them
/// (`block`: the GINs stepped inside it, each fed from its reader's FIFO) or as components of
/// their own fed over links: a 16-bit GIN whose beats reach one PE or two (two of its column
/// IDs match one tag), and a 64-bit one whose 4-word beats reach a whole X-bus; PEs that take a
/// word every 1, 2, 3 or 5 cycles from FIFOs of 2 (ifmap) and 4 (filter) words, so that beats
/// wait for room and the readers for their FIFOs; the ifmaps written by a loader as they
/// arrive, while they are read. Or (`alone`) one ifmap beat and nothing else, so that nothing
/// but that beat in the reader's FIFO asks for the block's step at the edge after it is sent.
fn gin_traffic(block: bool, every_edge: bool, order: StepOrder, alone: bool) -> GinSeen {
    use rowsim_chip::block::GlbBlock;
    use rowsim_glb::InnerEnd;
    use rowsim_kernel::{LinkTx, Wire};
    use rowsim_noc::{GinBuses, GinIds, NetSpec};
    let hw = hw();
    let layout = GlbLayout::allocate("t", 256, 256, 64, &hw).unwrap();
    let mut s = Scheduler::new();
    s.set_every_edge(every_edge);
    s.set_order(order);
    s.set_watchdog(1000);
    let clk = s.add_clock("core", 200_000_000).unwrap();
    let values: Vec<i16> = (0..if alone { 0 } else { 64 })
        .map(|k| (k * 37 % 101) as i16 - 50)
        .collect();
    let loaded = values.len() as u64;
    let vin = Link::<i16>::new("vin", clk, 1, 2).unwrap();
    s.add(clk, Feeder::new("top.src", vin.tx, values, 2));
    let item = |k: u64, len: u8, tags: Vec<(u16, u16)>| ifmap_item(&layout, k, len, tags);
    // Ifmap-like: single words, one tag or two (two beats), a zero chunk among them.
    let items_i: Vec<ReadItem> = (0..40u64)
        .map(|k| match k % 7 {
            3 => ReadItem {
                src: Src::Zeros(1),
                tags: vec![(0, 2)].into(),
            },
            5 => item(k, 1, vec![(0, 0), (0, 1)]),
            _ => item(k, 1, vec![(0, (k % 3) as u16)]),
        })
        // Last, a zero chunk of two beats: the reader has nothing else to do as it sends them
        // (the GIN must see each at the edge after it is sent).
        .chain([ReadItem {
            src: Src::Zeros(1),
            tags: vec![(0, 1), (0, 2)].into(),
        }])
        .collect();
    // Filter-like: whole entries, to X-bus 0 or 1.
    let items_f: Vec<ReadItem> = (0..12u64)
        .map(|k| item(4 * (k % 3), 4, vec![((k % 2) as u16, 0)]))
        .collect();
    let (items_i, items_f) = if alone {
        (vec![item(3, 1, vec![(0, 1)])], vec![])
    } else {
        (items_i, items_f)
    };
    let spec = |name: &str, width_bits| NetSpec {
        name: name.into(),
        rows: 2,
        cols: 2,
        row_id_bits: 1,
        col_id_bits: 2,
        width_bits,
    };
    let mut sinks = vec![];
    let mut outputs = |depth: u32| -> Vec<Vec<Option<LinkTx<i16>>>> {
        (0..2)
            .map(|b| {
                (0..2)
                    .map(|p| {
                        let l =
                            Link::<i16>::new(&format!("top.pe_{b}{p}.in{depth}"), clk, 1, depth)
                                .unwrap();
                        sinks.push(l.rx);
                        Some(l.tx)
                    })
                    .collect()
            })
            .collect()
    };
    // Ifmap: every bus row 0; PE (b, p) column b + p: tag (0, 1) reaches two PEs.
    let ifmap_gin = GinBuses::new(
        spec("top.gin_ifmap", 16),
        outputs(2),
        &GinIds {
            row_ids: vec![0, 0],
            col_ids: vec![vec![0, 1], vec![1, 2]],
        },
    )
    .unwrap();
    let filter_gin = GinBuses::new(
        spec("top.gin_filter", 64),
        outputs(4),
        &GinIds {
            row_ids: vec![0, 1],
            col_ids: vec![vec![0, 0], vec![0, 0]],
        },
    )
    .unwrap();
    let mut g = Glb::new("top.glb", layout, 1, vec![]);
    let mut loader = GlbWriter::<InnerEnd>::inner("top.ld", WriteIn::Values(vin.rx));
    loader.expect(Words {
        region: Region::new(layout, DataType::Ifmap),
        base: 0,
        count: loaded,
    });
    g.add_writer(loader);
    let mut reader = |name: &str, items: Vec<ReadItem>, out: ReadOut| {
        let mut r = GlbReader::<InnerEnd>::inner(name, out);
        r.push(items);
        g.add_reader(r)
    };
    let (glb, gins) = if block {
        let ki = reader("top.ri", items_i, ReadOut::Wire(Wire::new(2)));
        let kf = reader("top.rf", items_f, ReadOut::Wire(Wire::new(2)));
        let b = GlbBlock::new(g, vec![(ki, ifmap_gin), (kf, filter_gin)]).unwrap();
        (s.add(clk, b), vec![])
    } else {
        let li = Link::<Beat>::new("top.gin_ifmap.in", clk, 1, 2).unwrap();
        let lf = Link::<Beat>::new("top.gin_filter.in", clk, 1, 2).unwrap();
        reader("top.ri", items_i, ReadOut::Beats(li.tx));
        reader("top.rf", items_f, ReadOut::Beats(lf.tx));
        let gins = vec![
            s.add(clk, ifmap_gin.fed_by(li.rx)),
            s.add(clk, filter_gin.fed_by(lf.rx)),
        ];
        (s.add(clk, g), gins)
    };
    let ids: Vec<ComponentId> = sinks
        .into_iter()
        .zip([1, 2, 3, 5, 2, 1, 5, 3])
        .enumerate()
        .map(|(k, (rx, every))| {
            s.add(
                clk,
                Sipper {
                    name: format!("top.sink{k}"),
                    input: rx,
                    every,
                    got: vec![],
                },
            )
        })
        .collect();
    s.run().unwrap();
    let (gin_counters, glb_counters) = if block {
        let b = s.component::<GlbBlock>(glb).unwrap();
        (
            vec![*b.gin_counters(0).unwrap(), *b.gin_counters(1).unwrap()],
            *b.glb().counters(),
        )
    } else {
        (
            gins.iter()
                .map(|&id| *s.component::<rowsim_noc::Gin>(id).unwrap().counters())
                .collect(),
            *s.component::<Glb>(glb).unwrap().counters(),
        )
    };
    GinSeen {
        words: ids
            .iter()
            .map(|&id| s.component::<Sipper<i16>>(id).unwrap().got.clone())
            .collect(),
        gins: gin_counters,
        glb: glb_counters,
        cycles: s.cycle(),
    }
}

/// The GINs inside the GLB block, fed from its readers' FIFOs, deliver every word at the cycle
/// the GINs fed over links deliver it, with the same waits, event-driven or at every edge, in
/// shuffled orders.
#[test]
fn gins_inside_the_glb_block_keep_their_cycles() {
    let reference = gin_traffic(false, true, StepOrder::Registration, false);
    // The traffic is what the test means: every beat delivered, beats waiting for room.
    let words: usize = reference.words.iter().map(|w| w.len()).sum();
    // Ifmap: 40 items, tags (0, 0) and (0, 2) one PE each, (0, 1) two; the two-tag items
    // (k % 7 = 5) three words: 60, and 3 for the last zero chunk. Filter: 12 beats of 4 words
    // to an X-bus of two PEs: 96.
    assert_eq!(words, 63 + 96, "{reference:?}");
    assert!(
        reference.gins.iter().all(|g| g.wait_cycles > 0),
        "{reference:?}"
    );
    let lone = gin_traffic(false, true, StepOrder::Registration, true);
    assert_eq!(lone.gins[0].pe_words, 2, "{lone:?}");
    for (block, every_edge, order) in [
        (false, false, StepOrder::Registration),
        (true, true, StepOrder::Registration),
        (true, false, StepOrder::Registration),
        (true, false, StepOrder::Shuffled(7)),
        (true, true, StepOrder::Shuffled(11)),
    ] {
        assert_eq!(
            gin_traffic(block, every_edge, order, false),
            reference,
            "block {block}, every edge {every_edge}, {order:?}"
        );
        assert_eq!(
            gin_traffic(block, every_edge, order, true),
            lone,
            "alone: block {block}, every edge {every_edge}, {order:?}"
        );
    }
}
