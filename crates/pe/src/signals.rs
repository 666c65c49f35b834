//! What a trace and a debugger see of a PE: its signals (declared once, sampled after each
//! edge), the one-cycle enables and held registers behind them, and its state as text.

use rowsim_kernel::{SignalId, SignalRegistry, TraceError, TraceFrame};

use crate::Pe;

/// One-cycle enables of the last edge, for the trace: a bit each, cleared by one store.
pub(crate) mod strobe {
    pub const FILTER_WR: u16 = 1 << 0;
    pub const FILTER_RD: u16 = 1 << 1;
    pub const IFMAP_WR: u16 = 1 << 2;
    pub const IFMAP_RD: u16 = 1 << 3;
    pub const PSUM_RD: u16 = 1 << 4;
    pub const PSUM_WR: u16 = 1 << 5;
    pub const ZERO_FLAG: u16 = 1 << 6;
    pub const MAC_VALID: u16 = 1 << 7;
    pub const MAC_GATED: u16 = 1 << 8;
    pub const PSUM_IN: u16 = 1 << 9;
    pub const PSUM_OUT: u16 = 1 << 10;
}

/// The last address and data on each spad port and the PE's data paths: what the registers
/// driving them hold between accesses.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Held {
    pub filter_wr: (u32, i16),
    pub filter_rd: (u32, i16),
    pub ifmap_wr: (u32, i16),
    pub ifmap_rd: (u32, i16),
    pub psum_rd: (u32, i16),
    pub psum_wr: (u32, i16),
    pub sum: i16,
    pub psum_in: i16,
    pub psum_out: i16,
    pub out_credits: u32,
}

/// The signals a PE reports ([`Pe::trace_signals`]).
const TRACED: usize = 37;

#[derive(Default)]
pub(crate) struct Signals {
    /// The values [`Pe::trace_signals`] reported last, in its order (those the trace's table
    /// holds for them: nobody else reports them, and the table starts at zero when they are
    /// declared). A value equal to the last is not reported again: reporting it would change
    /// nothing.
    last: std::cell::RefCell<Vec<u64>>,
    pub state: SignalId,
    pub row: SignalId,
    pub x: SignalId,
    pub filter_fifo_level: SignalId,
    pub ifmap_fifo_level: SignalId,
    pub psum_in_fifo_level: SignalId,
    pub psum_out_credits: SignalId,
    pub filter_wr_en: SignalId,
    pub filter_wr_addr: SignalId,
    pub filter_wr_data: SignalId,
    pub filter_rd_en: SignalId,
    pub filter_rd_addr: SignalId,
    pub filter_rd_data: SignalId,
    pub ifmap_wr_en: SignalId,
    pub ifmap_wr_addr: SignalId,
    pub ifmap_wr_data: SignalId,
    pub ifmap_rd_en: SignalId,
    pub ifmap_rd_addr: SignalId,
    pub ifmap_rd_data: SignalId,
    pub zero_buffer: SignalId,
    pub zero_flag: SignalId,
    pub mac_valid: SignalId,
    pub mac_gated: SignalId,
    pub mac_a: SignalId,
    pub mac_b: SignalId,
    pub mac_product: SignalId,
    pub mac_sum: SignalId,
    pub psum_rd_en: SignalId,
    pub psum_rd_addr: SignalId,
    pub psum_rd_data: SignalId,
    pub psum_wr_en: SignalId,
    pub psum_wr_addr: SignalId,
    pub psum_wr_data: SignalId,
    pub psum_in_en: SignalId,
    pub psum_in_data: SignalId,
    pub psum_out_en: SignalId,
    pub psum_out_data: SignalId,
}

/// The enables of the last edge and the registers' held values.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Probe {
    pub strobes: u16,
    pub held: Held,
}

impl Pe {
    /// The state text of `rowsim step`'s `state`.
    pub(crate) fn state_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}: {:?}  row {}  x {}  op {}  drain {}  weights loaded {}  ifmaps stored {}",
            self.name,
            self.dp.state,
            self.dp.row,
            self.dp.x,
            self.dp.op,
            self.dp.drain_f,
            self.dp.filter.loaded,
            self.dp.ifmap.stored
        );
        match &self.prim {
            Some(p) => {
                let _ = writeln!(o, "  primitive: {p:?}");
            }
            None => o.push_str("  primitive: (not configured)\n"),
        }
        for (name, spad) in [
            ("filter_spad", &self.dp.filter.entries),
            ("ifmap_spad", &self.dp.ifmap.entries),
            ("psum_spad", &self.dp.psum),
        ] {
            let _ = writeln!(o, "  {name} ({} entries):", spad.len());
            for (k, chunk) in spad.chunks(16).enumerate() {
                let words: Vec<String> = chunk.iter().map(|v| format!("{v:6}")).collect();
                let _ = writeln!(o, "    [{:3}] {}", k * 16, words.join(""));
            }
        }
        let _ = writeln!(
            o,
            "  zero_buffer: {:#x}\n  fifo levels: filter_in {}  ifmap_in {}  psum_in {}",
            self.dp.ifmap.zero,
            self.ports.filter_in.in_flight(),
            self.ports.ifmap_in.in_flight(),
            self.ports.psum_in.as_ref().map_or(0, |l| l.in_flight()),
        );
        let c = &self.dp.counters;
        let _ = writeln!(
            o,
            "  counters: macs {} (gated {})  psums in {} out {}  stalls filter {} ifmap {} psum_in {} psum_out {}",
            c.macs,
            c.macs_gated,
            c.psums_in,
            c.psums_out,
            c.stall_filter,
            c.stall_ifmap,
            c.stall_psum_in,
            c.stall_psum_out
        );
        o
    }

    pub(crate) fn declare_signals(&mut self, r: &mut SignalRegistry) -> Result<(), TraceError> {
        let n = self.name.clone();
        let (fa, ia, pa) = self.addr_bits;
        let mut s = |name: &str, w: u32| r.signal(&n, name, w);
        self.sig = Signals {
            state: s("state", 3)?,
            row: s("row", 16)?,
            x: s("x", 16)?,
            filter_fifo_level: s("filter_fifo_level", 8)?,
            ifmap_fifo_level: s("ifmap_fifo_level", 8)?,
            psum_in_fifo_level: s("psum_in_fifo_level", 8)?,
            psum_out_credits: s("psum_out_credits", 8)?,
            filter_wr_en: s("filter_spad_wr_en", 1)?,
            filter_wr_addr: s("filter_spad_wr_addr", fa)?,
            filter_wr_data: s("filter_spad_wr_data", 16)?,
            filter_rd_en: s("filter_spad_rd_en", 1)?,
            filter_rd_addr: s("filter_spad_rd_addr", fa)?,
            filter_rd_data: s("filter_spad_rd_data", 16)?,
            ifmap_wr_en: s("ifmap_spad_wr_en", 1)?,
            ifmap_wr_addr: s("ifmap_spad_wr_addr", ia)?,
            ifmap_wr_data: s("ifmap_spad_wr_data", 16)?,
            ifmap_rd_en: s("ifmap_spad_rd_en", 1)?,
            ifmap_rd_addr: s("ifmap_spad_rd_addr", ia)?,
            ifmap_rd_data: s("ifmap_spad_rd_data", 16)?,
            zero_buffer: s("zero_buffer", self.sizes.ifmap_entries.clamp(1, 64))?,
            zero_flag: s("zero_flag", 1)?,
            mac_valid: s("mac_valid", 1)?,
            mac_gated: s("mac_gated", 1)?,
            mac_a: s("mac_a", 16)?,
            mac_b: s("mac_b", 16)?,
            mac_product: s("mac_product", 16)?,
            mac_sum: s("mac_sum", 16)?,
            psum_rd_en: s("psum_spad_rd_en", 1)?,
            psum_rd_addr: s("psum_spad_rd_addr", pa)?,
            psum_rd_data: s("psum_spad_rd_data", 16)?,
            psum_wr_en: s("psum_spad_wr_en", 1)?,
            psum_wr_addr: s("psum_spad_wr_addr", pa)?,
            psum_wr_data: s("psum_spad_wr_data", 16)?,
            psum_in_en: s("psum_in_en", 1)?,
            psum_in_data: s("psum_in_data", 16)?,
            psum_out_en: s("psum_out_en", 1)?,
            psum_out_data: s("psum_out_data", 16)?,
            ..Signals::default()
        };
        self.sig.last = std::cell::RefCell::new(vec![0; TRACED]);
        self.traced = self.sig.psum_out_credits.is_traced();
        Ok(())
    }

    pub(crate) fn trace_signals(&self, t: &mut TraceFrame) {
        let g = &self.sig;
        let on = |bit: u16| (self.dp.probe.strobes & bit != 0) as u64;
        let w = |v: i16| v as u16 as u64;
        let lvl = |n: usize| n.min(255) as u64;
        // Levels after this edge, whichever end ran ahead of it.
        let at = self.last_cycle;
        // Enables pulse; addresses and data hold their last value, as a register would.
        let h = &self.dp.probe.held;
        let zb_mask = if self.sizes.ifmap_entries >= 64 {
            u64::MAX
        } else {
            (1u64 << self.sizes.ifmap_entries) - 1
        };
        // Each signal and its value after this edge.
        let report: [(SignalId, u64); TRACED] = [
            (g.state, self.dp.state as u64),
            (g.row, self.dp.row as u64 & 0xFFFF),
            (g.x, self.dp.x as u64 & 0xFFFF),
            (
                g.filter_fifo_level,
                lvl(self.ports.filter_in.in_flight_at(at)),
            ),
            (
                g.ifmap_fifo_level,
                lvl(self.ports.ifmap_in.in_flight_at(at)),
            ),
            (
                g.psum_in_fifo_level,
                lvl(self
                    .ports
                    .psum_in
                    .as_ref()
                    .map_or(0, |l| l.in_flight_at(at))),
            ),
            (g.psum_out_credits, h.out_credits.min(255) as u64),
            (g.filter_wr_en, on(strobe::FILTER_WR)),
            (g.filter_wr_addr, h.filter_wr.0 as u64),
            (g.filter_wr_data, w(h.filter_wr.1)),
            (g.filter_rd_en, on(strobe::FILTER_RD)),
            (g.filter_rd_addr, h.filter_rd.0 as u64),
            (g.filter_rd_data, w(h.filter_rd.1)),
            (g.ifmap_wr_en, on(strobe::IFMAP_WR)),
            (g.ifmap_wr_addr, h.ifmap_wr.0 as u64),
            (g.ifmap_wr_data, w(h.ifmap_wr.1)),
            (g.ifmap_rd_en, on(strobe::IFMAP_RD)),
            (g.ifmap_rd_addr, h.ifmap_rd.0 as u64),
            (g.ifmap_rd_data, w(h.ifmap_rd.1)),
            (g.psum_rd_en, on(strobe::PSUM_RD)),
            (g.psum_rd_addr, h.psum_rd.0 as u64),
            (g.psum_rd_data, w(h.psum_rd.1)),
            (g.psum_wr_en, on(strobe::PSUM_WR)),
            (g.psum_wr_addr, h.psum_wr.0 as u64),
            (g.psum_wr_data, w(h.psum_wr.1)),
            (g.zero_buffer, self.dp.ifmap.zero & zb_mask),
            (g.zero_flag, on(strobe::ZERO_FLAG)),
            (g.mac_valid, on(strobe::MAC_VALID)),
            (g.mac_gated, on(strobe::MAC_GATED)),
            (g.mac_a, w(self.dp.pipe.mac_a)),
            (g.mac_b, w(self.dp.pipe.mac_b)),
            (g.mac_product, w(self.dp.pipe.mac_product)),
            (g.mac_sum, w(h.sum)),
            (g.psum_in_en, on(strobe::PSUM_IN)),
            (g.psum_in_data, w(h.psum_in)),
            (g.psum_out_en, on(strobe::PSUM_OUT)),
            (g.psum_out_data, w(h.psum_out)),
        ];
        let mut last = g.last.borrow_mut();
        for (last, &(id, v)) in last.iter_mut().zip(&report) {
            if v != *last {
                *last = v;
                t.set(id, v);
            }
        }
    }
}
