//! The GLB controller's datapaths on a real GLB: write a value stream, read it back as beats and
//! as values, with padding zeros in order, and unpack raw DRAM words.

use rowsim_dram::DramData;
use rowsim_glb::sequencer::{GlbAddr, GlbReader, GlbWriter, ReadItem, ReadOut, Src, WriteIn};
use rowsim_glb::{DataType, Glb, GlbLayout, GlbPort, GlbReq, GlbResp};
use rowsim_kernel::{Collector, Feeder, Link, Scheduler};
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
    w.expect((0..10).map(addr));
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
            tags,
        }
    };
    rd.push([
        glb_item(0, vec![(0, 1), (2, 3)]),
        glb_item(1, vec![(0, 2)]),
        ReadItem {
            src: Src::Zeros(1),
            tags: vec![(1, 1)],
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
    let inp = Link::<DramData>::new("in", clk, 1, 2).unwrap();
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
    s.add(clk, Feeder::new("top.dram", inp.tx, data, 1));
    let mut u = rowsim_dram::Inbound::new(
        "top.chip.unpack",
        rowsim_datapath::rlc::RlcFormat::EYERISS,
        inp.rx,
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
