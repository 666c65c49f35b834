//! The PE's control FSM and its ifmap write port, and the PE as a clocked component: the filter
//! load, the position's operations (issued by the mode's engine), the drain, the stalls, and
//! how an event-driven run brings the PE through edges without a step each (the run-ahead and
//! the settling of skipped edges).

use rowsim_datapath::mac;
use rowsim_kernel::{
    Activity, Component, Fault, SignalRegistry, StepCtx, TraceError, TraceFrame, Wake,
};

use crate::signals::strobe;
use crate::{IfmapAuto, Pe, PeState, Primitive};

impl Pe {
    /// The filter load's operation at edge `at` (`cx`'s edge, or a later one when running
    /// ahead): the next word of the filter stream into the spad (as the mode writes it) if it
    /// has arrived, else a stall.
    #[inline]
    fn load_weight(&mut self, cx: &StepCtx, at: u64, prim: &Primitive) -> Result<bool, Fault> {
        if self.ports.filter_in.auto_pending() {
            // The link takes the row's weights for the PE (see `load_ahead`): the one it took
            // at this edge, if any (those of the edges before are loaded already).
            let (n, _) = self.collect_weights(cx, Some(at), prim)?;
            if n > 1 {
                return Err(format!(
                    "{}: {n} weights taken for edge {at}, which loads one",
                    self.name
                )
                .into());
            }
            if n == 0 {
                self.dp.counters.stall_filter += 1;
            }
            return Ok(n == 1);
        }
        match self.ports.filter_in.try_recv_at(cx, at) {
            Some(w) => {
                self.mode.load(&mut self.dp, w, prim, &self.name)?;
                Ok(true)
            }
            None => {
                self.dp.counters.stall_filter += 1;
                Ok(false)
            }
        }
    }

    /// The weights the filter link took for the PE (see `LinkRx::auto_take`) at edges up to
    /// `upto` (all it has taken with `None`), loaded in order as each edge would have loaded
    /// its own. Returns how many, and the edge of the last when they are all the link took.
    fn collect_weights(
        &mut self,
        cx: &StepCtx,
        upto: Option<u64>,
        prim: &Primitive,
    ) -> Result<(usize, Option<u64>), String> {
        let mut words = std::mem::take(&mut self.run_buf);
        words.clear();
        let (n, last) = self.ports.filter_in.take_auto(cx, upto, &mut words);
        let loaded = words
            .iter()
            .try_for_each(|&w| self.mode.load(&mut self.dp, w, prim, &self.name));
        self.run_buf = words;
        loaded.map(|()| (n, last))
    }

    fn issue_drain(
        &mut self,
        cx: &StepCtx,
        prim: &Primitive,
        pipe_busy: bool,
    ) -> Result<bool, Fault> {
        if pipe_busy {
            self.dp.counters.pipeline_bubbles += 1;
            return Ok(false);
        }
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            if port.peek(cx).is_none() {
                self.dp.counters.stall_psum_in += 1;
                self.drain_waits_for_psum_in = true;
                return Ok(false);
            }
        }
        if !self.ports.psum_out.can_send(cx) {
            self.dp.counters.stall_psum_out += 1;
            self.drain_waits_for_psum_in = false;
            return Ok(false);
        }
        self.drain_psum(cx, cx.cycle, prim)?;
        Ok(true)
    }

    /// Drains psum `drain_f` at edge `at` (`cx`'s edge, or a later one when running ahead),
    /// given that its incoming psum (if any) has arrived by then and the output has a credit.
    #[inline]
    fn drain_psum(&mut self, cx: &StepCtx, at: u64, prim: &Primitive) -> Result<(), Fault> {
        let dp = &mut self.dp;
        let mut incoming = 0i16;
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            incoming = port
                .try_recv_at(cx, at)
                .ok_or("an incoming psum vanished between its check and its use")?;
            dp.counters.psums_in += 1;
            dp.probe.strobes |= strobe::PSUM_IN;
            dp.probe.held.psum_in = incoming;
        }
        let f = dp.drain_f;
        let own = dp.psum[f as usize];
        dp.counters.psum_spad_reads += 1;
        dp.probe.strobes |= strobe::PSUM_RD;
        dp.probe.held.psum_rd = (f, own);
        let out = mac::add(own, incoming, prim.mac, &mut dp.counters.overflows);
        // The psum register clears as it is read out, ready for the next position.
        dp.psum[f as usize] = 0;
        if self.ports.psum_out.try_send_at(cx, at, out).is_err() {
            return Err("psum output refused a word although it had a credit".into());
        }
        dp.counters.psums_out += 1;
        dp.probe.strobes |= strobe::PSUM_OUT;
        dp.probe.held.psum_out = out;
        dp.drain_f += 1;
        if dp.drain_f == prim.p {
            dp.drain_f = 0;
            dp.x += 1;
            if dp.x == prim.f {
                dp.x = 0;
                dp.row += 1;
            }
            dp.state = if dp.row == prim.rows {
                PeState::Done
            } else {
                PeState::Compute
            };
        }
        Ok(())
    }

    /// Drains psums `drain_f ..` at the `n` edges from `first` on, one an edge, as
    /// [`Pe::drain_psum`] at each: the incoming psums (already arrived by their edges) taken and
    /// the outgoing ones sent as one run each way (`n` output credits held, short of the
    /// position's last psum).
    fn drain_run(
        &mut self,
        cx: &StepCtx,
        first: u64,
        n: usize,
        prim: &Primitive,
    ) -> Result<(), Fault> {
        let dp = &mut self.dp;
        debug_assert!(dp.drain_f as usize + n < prim.p as usize);
        let mut incoming = std::mem::take(&mut self.run_buf);
        incoming.clear();
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            if port.take_counted_run_at(cx, first, n, &mut incoming) != n {
                return Err("incoming psums vanished between their check and their use".into());
            }
            dp.counters.psums_in += n as u64;
            dp.probe.strobes |= strobe::PSUM_IN;
            dp.probe.held.psum_in = incoming[n - 1];
        } else {
            incoming.resize(n, 0);
        }
        let f0 = dp.drain_f as usize;
        // Each incoming psum becomes the outgoing one in place (the buffer is reused).
        let mut own = 0;
        for (k, v) in incoming.iter_mut().enumerate() {
            own = dp.psum[f0 + k];
            *v = mac::add(own, *v, prim.mac, &mut dp.counters.overflows);
            // The psum register clears as it is read out, ready for the next position.
            dp.psum[f0 + k] = 0;
        }
        dp.counters.psum_spad_reads += n as u64;
        dp.probe.strobes |= strobe::PSUM_RD | strobe::PSUM_OUT;
        let f_last = (f0 + n - 1) as u32;
        dp.probe.held.psum_rd = (f_last, own);
        dp.probe.held.psum_out = incoming[n - 1];
        let sent = self
            .ports
            .psum_out
            .send_run_at(cx, first, incoming.drain(..));
        self.run_buf = incoming;
        if !sent {
            return Err("psum output refused a run although it held the credits".into());
        }
        dp.counters.psums_out += n as u64;
        dp.drain_f += n as u32;
        Ok(())
    }

    /// While the FSM is ahead (through `a`): when the ifmap port next has an arrived value to
    /// store, and when the FSM next needs a step.
    fn note_next(&mut self, cx: &StepCtx, prim: &Primitive, a: u64) {
        self.port_next = if self.ifmap_auto.is_some() {
            // The link stores for the port through `a`; what it leaves to the port, the port
            // stores after `a` (see `arm_ifmap`).
            None
        } else {
            self.port_next_edge(prim, cx.cycle + 1)
        };
        self.fsm_next = if self.dp.state == PeState::LoadFilters {
            // The burst took every weight on its way: the next one, if already sent; none
            // while the link takes them for the PE (it asks for a step at the row's last).
            if self.ports.filter_in.auto_pending() {
                None
            } else {
                self.ports.filter_in.head_ready_at().map(|r| r.max(a + 1))
            }
        } else {
            Some(a + 1)
        };
        // A drain stopped short for the psum from below, none of which is on its way: the
        // edges from `a + 1` on stall for it (counted so when they are settled) until one
        // arrives, which wakes the PE (see `arm_port` for the ifmap values).
        self.fsm_waits_below = self.dp.state == PeState::Drain
            && prim.psum_in
            && self.dp.pipe.is_empty()
            && self.ports.psum_in.as_mut().is_some_and(|p| {
                // Looking at the link binds it to the PE, so that a psum sent later wakes it.
                p.peek(cx).is_none() && p.head_ready_at().is_none()
            });
        if self.fsm_waits_below {
            self.drain_waits_for_psum_in = true;
        }
    }

    /// After a step at `cx` that moved: the edges after it whose every input is already known,
    /// run now, exactly as steps at them would, as far as they are known:
    /// - a position whose window is stored computes the rest of its operations and the two
    ///   pipeline bubbles (as [`Pe::burst`]); a position of zero skipping first reads its
    ///   index (an edge);
    /// - a filter load takes the weights already on their way, each at the first edge at or
    ///   after its arrival, one an edge (the edges between are filter stalls), to the last;
    /// - a drain sends the position's psums one an edge while the incoming psums are already
    ///   on their way and the output credits held now last ([`Pe::drain_ahead`]); its last psum
    ///   moves the window, and the ifmap write port works at that edge if a value has arrived
    ///   (the port had nothing to do before it);
    /// - a position waiting for its window stalls while the ifmap values already on their way
    ///   are stored, one an edge, until the window is complete or the next value is not on its
    ///   way yet (which then wakes the PE at its arrival).
    ///
    /// One leads into the next (a drain into the next position's window and its operations)
    /// while each link end makes at most one run of events ahead (what the other end can be
    /// told: see `LinkTx::can_send_ahead_at`), so at most one drain and one window a call.
    ///
    /// The ifmap write port runs ahead with the FSM only where the FSM moves the window (a
    /// drain's last psum) or waits for it; the edges it has worked are those before
    /// `port_free`, and a step at one of them leaves it alone. Through a burst or a filter load
    /// it works on its own: the window stays put, and a burst notes the edges at which it
    /// releases the window's leading entries (`releases`), so links still wake the PE for the
    /// port at the edges its values arrive, and the PE wakes at each release with a value
    /// waiting (see [`Pe::step`], `port_next`). A filter-load or drain run needs an
    /// empty pipeline, and a drain's last psum an ifmap port with nothing to do before it (else
    /// it takes a step of its own). A compressed row loads ahead in its parts (its mask
    /// words, then the values they promise) and only up to a word that would fault, which a
    /// step at that word's edge loads and raises; it leaves no word to the link (one sent
    /// later could fault where no step looks).
    fn run_ahead(&mut self, cx: &StepCtx, prim: &Primitive) -> Result<(), Fault> {
        let mut c = cx.cycle;
        self.releases.valid = false;
        loop {
            let pipe_empty = self.dp.pipe.is_empty();
            match self.dp.state {
                // The rest of the position's operations and the two bubbles: they read only
                // the window, of which the ifmap port writes only entries released (their
                // groups' MACs issued).
                PeState::Compute if self.dp.window_stored(prim) => {
                    if self.mode.burst_edges(&self.dp, prim).is_some() {
                        c += self.burst(prim, Some(c + 1));
                    } else if pipe_empty {
                        // Zero skipping: the position's index read, an edge of its own.
                        c += 1;
                        self.dp.counters.active_cycles += 1;
                        self.mode.issue(&mut self.dp, prim);
                    } else {
                        break;
                    }
                }
                _ if !pipe_empty => break,
                PeState::LoadFilters => {
                    c = self.load_ahead(cx, c, prim)?;
                    break;
                }
                PeState::Compute => {
                    c = self.window_ahead(cx, c, prim)?;
                    if !self.dp.window_stored(prim) || !self.dp.ifmap_port_blocked(prim) {
                        // Waiting for a value, or the port has more to store through the
                        // position: its values wake the PE (see `wake`).
                        break;
                    }
                }
                PeState::Drain => {
                    let last = c;
                    c = self.drain_ahead(cx, c, prim)?;
                    if c == last
                        || self.dp.state != PeState::Compute
                        || self.port_free <= c
                        || self.ifmap_auto.is_some()
                    {
                        // The drain stopped short, the program ended, or the port did not
                        // work the last psum's edge (no value had arrived for it).
                        break;
                    }
                    // The port worked the drain's last edge: the window follows.
                }
                _ => break,
            }
        }
        if c > cx.cycle {
            self.ahead_until = Some(c);
        }
        Ok(())
    }

    /// A position waiting for its window, from edge `c + 1` on: a stall at each edge while the
    /// values already on their way are stored, one an edge, up to the one that completes the
    /// window (the operation issues at the edge after it) or the first edge with none arrived.
    /// Returns the last edge it ran; the port has worked every edge up to it.
    fn window_ahead(&mut self, cx: &StepCtx, mut c: u64, prim: &Primitive) -> Result<u64, Fault> {
        let e = c + 1;
        if self.ifmap_auto.is_none()
            && !self.dp.window_stored(prim)
            && !self.dp.ifmap_port_blocked(prim)
            && self.ports.ifmap_in.head_ready_at().is_some_and(|r| r <= e)
            && self.ports.ifmap_in.can_pop_ahead_at(cx, e)
        {
            let ifmap = &self.dp.ifmap;
            let window_end = (self.dp.window_start(prim) + prim.s as u64) * prim.q as u64;
            let need = window_end.min(ifmap.total) - ifmap.stored;
            let mut values = std::mem::take(&mut self.run_buf);
            values.clear();
            // Those that have arrived by their edges (at least the head, by `e`).
            let n = self
                .ports
                .ifmap_in
                .take_run_at(cx, e, need as usize, &mut values);
            for &v in &values {
                self.write_ifmap(v, prim);
            }
            self.run_buf = values;
            self.dp.counters.stall_ifmap += n as u64;
            self.dp.counters.active_cycles += n as u64;
            c += n as u64;
        }
        self.port_free = self.port_free.max(c + 1);
        Ok(c)
    }

    /// A filter load from edge `c + 1` on: the weights already on their way, each at the first
    /// edge at or after its arrival, one an edge (the edges between are filter stalls), taken
    /// as runs (a compressed row's up to a word that would fault: see [`Pe::run_ahead`]). With
    /// none on its way, the rest of a dense row is left to the link, which takes
    /// each for the PE as it is sent, at the edge the PE would have (`LinkRx::auto_take`),
    /// and asks for a step at the last: the PE sleeps through the load, and loads what the
    /// link took when it is next stepped (here, in `load_weight`, or settling the edges).
    /// Returns the last edge it ran.
    fn load_ahead(&mut self, cx: &StepCtx, mut c: u64, prim: &Primitive) -> Result<u64, Fault> {
        while self.dp.state == PeState::LoadFilters {
            if self.ports.filter_in.auto_pending() {
                let (n, last) = self.collect_weights(cx, None, prim)?;
                let Some(end) = last.filter(|_| n > 0) else {
                    break;
                };
                // Each edge from `c + 1` to `end` took a weight or found none.
                self.dp.counters.stall_filter += end - c - n as u64;
                self.dp.counters.active_cycles += end - c;
                c = end;
                continue;
            }
            let left = self.mode.words_left(&self.dp, prim);
            let Some(r) = self.ports.filter_in.head_ready_at() else {
                if !prim.compressed {
                    self.ports.filter_in.auto_take(cx, c + 1, left as u64, 0);
                }
                // A compressed row's words are the PE's to take (each arrival wakes it): one
                // may fault, which must stop the run at its edge.
                break;
            };
            let first = r.max(c + 1);
            if !self.ports.filter_in.can_pop_ahead_at(cx, first) {
                break;
            }
            let mut n = self.ports.filter_in.arrived_run(first, left as usize);
            let mut words = std::mem::take(&mut self.run_buf);
            words.clear();
            if prim.compressed {
                // Up to a word that would fault: it faults at its own edge, in a step.
                let rx = &self.ports.filter_in;
                words.extend((0..n).filter_map(|k| rx.peek_nth(k).copied()));
                n = self.mode.loadable(&self.dp, prim, &words);
                words.clear();
                if n == 0 {
                    self.run_buf = words;
                    break;
                }
            }
            if self
                .ports
                .filter_in
                .take_counted_run_at(cx, first, n, &mut words)
                != n
            {
                return Err("weights vanished between their check and their use".into());
            }
            let engine = &mut self.mode;
            for &w in &words {
                engine.load(&mut self.dp, w, prim, &self.name)?;
            }
            self.run_buf = words;
            // Stalls until the first arrives, then a weight an edge.
            self.dp.counters.stall_filter += first - c - 1;
            self.dp.counters.active_cycles += first - c - 1 + n as u64;
            c = first + n as u64 - 1;
        }
        Ok(c)
    }

    /// A drain from edge `c + 1` on: the position's psums one an edge while each one's incoming
    /// psum has arrived by its edge and an output credit is held (short of the last, as one
    /// run each way). The last psum moves the window: the ifmap write port then works at its
    /// edge, with a value that has arrived by it; if none has, the port's edge is left to a
    /// step (`port_free`), which its arrival wakes. Returns the last edge it ran (`c` if none).
    fn drain_ahead(&mut self, cx: &StepCtx, c: u64, prim: &Primitive) -> Result<u64, Fault> {
        let left = (prim.p - self.dp.drain_f) as usize;
        let mut n = left.min(self.ports.psum_out.credits_held() as usize);
        if !self.ports.psum_out.can_send_ahead_at(cx, c + 1) {
            n = 0;
        }
        if prim.psum_in {
            let port = self.ports.psum_in.as_mut().ok_or("psum input not wired")?;
            if !port.can_pop_ahead_at(cx, c + 1) {
                n = 0;
            }
            n = port.arrived_run(c + 1, n);
        }
        // The last psum moves the window: a step of its own unless the port's edge is known.
        // While the port has values to store, it works through the drain on its own (the
        // window stays put until the last psum, which then takes a step of its own). With the
        // values before the move left to the link, and more to come (the values after them,
        // blocked until the move, come after those), the port's work is the link's.
        let last = n == left
            && if self.ifmap_auto == Some(IfmapAuto::Window) {
                self.ports.ifmap_in.auto_armed()
            } else {
                self.dp.ifmap_port_blocked(prim)
                    && self.ports.ifmap_in.can_pop_ahead_at(cx, c + n as u64)
            };
        let run = if n == left { n - 1 } else { n };
        let mut c = c;
        if run > 0 {
            self.drain_run(cx, c + 1, run, prim)?;
            self.dp.counters.active_cycles += run as u64;
            c += run as u64;
        }
        if n == left && n > 0 && last {
            c += 1;
            self.dp.counters.active_cycles += 1;
            self.drain_psum(cx, c, prim)?;
            self.releases.valid = false;
            // The ifmap write port at the same edge, after the window moved.
            if self.ifmap_auto == Some(IfmapAuto::Window) {
                // The link's: what it takes at this edge, the FSM's next step writes.
            } else if self.dp.state == PeState::Compute && !self.dp.ifmap_port_blocked(prim) {
                if self.ports.ifmap_in.head_ready_at().is_some_and(|r| r <= c)
                    && self.ports.ifmap_in.can_pop_ahead_at(cx, c)
                {
                    let v = self
                        .ports
                        .ifmap_in
                        .try_recv_at(cx, c)
                        .ok_or("an ifmap value vanished between its check and its use")?;
                    self.write_ifmap(v, prim);
                    self.port_free = c + 1;
                } else {
                    self.port_free = c;
                }
            } else {
                self.port_free = c + 1;
            }
        }
        Ok(c)
    }

    /// Edges from now in which the PE touches no link: the pipeline bubbles before a drain,
    /// while the ifmap write port has nothing to do. (A position's operations, which a step
    /// that finds the window stored runs ahead, are [`Pe::run_ahead`]'s.)
    fn quiet_edges(&self) -> u64 {
        let Some(prim) = self.prim else {
            return 0;
        };
        if !self.dp.ifmap_port_blocked(&prim) {
            return 0;
        }
        match self.dp.state {
            PeState::Drain if self.dp.pipe.rd.is_some() => 2,
            PeState::Drain if self.dp.pipe.mul.is_some() => 1,
            _ => 0,
        }
    }

    /// One edge without links (the PE is in a burst, or stalled with nothing arriving).
    fn quiet_edge(&mut self, prim: &Primitive) {
        self.dp.probe.strobes = 0;
        self.dp.counters.active_cycles += 1;
        let pipe_busy = self.dp.advance_pipeline(prim);
        let c = &mut self.dp.counters;
        match self.dp.state {
            PeState::LoadFilters => c.stall_filter += 1,
            PeState::Compute => {
                self.mode.issue(&mut self.dp, prim);
            }
            PeState::Drain if pipe_busy => c.pipeline_bubbles += 1,
            PeState::Drain if self.drain_waits_for_psum_in => c.stall_psum_in += 1,
            PeState::Drain => c.stall_psum_out += 1,
            PeState::Idle | PeState::Done => {}
        }
    }

    /// The rest of a position's operations and the two bubbles after them, in one go: what is
    /// in the pipeline first, then each operation through MUL and ADD as the mode's engine
    /// issues it. Returns the edges it covered.
    /// From a run ahead, `first` is the edge of its first operation: the burst then notes
    /// when it releases the window's leading entries to the write port (`releases`).
    fn burst(&mut self, prim: &Primitive, first: Option<u64>) -> u64 {
        let engine = &mut self.mode;
        let edges = engine
            .burst_edges(&self.dp, prim)
            .expect("a burst runs a position that can");
        self.releases.valid = false;
        if let Some(first) = first {
            let from = self.dp.released(prim);
            let leading = (prim.u.min(prim.s) * prim.q) as u64;
            let n = (leading - from.min(leading)) as usize;
            if n <= self.releases.edges.len() {
                let r = &mut self.releases;
                engine.release_edges(&self.dp, prim, first, from, &mut r.edges[..n]);
                (r.valid, r.from, r.n) = (true, from, n);
            }
        }
        self.dp.flush_pipeline(prim);
        engine.run_position(&mut self.dp, prim);
        self.dp.counters.active_cycles += edges;
        self.dp.counters.pipeline_bubbles += 2;
        self.dp.probe.strobes = 0;
        edges
    }

    /// Whether the write port has no free entry at edge `e`: while the FSM is ahead through a
    /// position's MACs, with the entries they have released by then.
    fn port_blocked_at(&self, prim: &Primitive, e: u64) -> bool {
        self.dp
            .ifmap_port_blocked_with(prim, self.port_released_at(prim, e))
    }

    /// The window's leading entries released to the write port by edge `e` (see
    /// [`Pe::port_blocked_at`]).
    fn port_released_at(&self, prim: &Primitive, e: u64) -> u64 {
        if self.ahead_until.is_some() && self.releases.valid {
            self.releases.at(e)
        } else {
            self.dp.released(prim)
        }
    }

    /// While the FSM is ahead through `a` and needs a step after it: leaves the values the
    /// write port can store by `a` to the ifmap link, which takes each for the port (those
    /// already on their way at once, the others as they are sent) at the edge the port would (see
    /// `LinkRx::auto_take_within`): the first at or after its arrival, after the store before
    /// it and the edges the port has worked (`port_free`), at which the port has an entry
    /// for it (the entries the burst releases by then, `releases`). The PE then sleeps until
    /// the FSM's step instead of stepping at each value, and writes what the link took when
    /// it is next stepped (`collect_ifmap`). A value the link would store after `a` it leaves
    /// to the port, and the values after it: the port stores them after `a`, so the PE
    /// ignores its links until then (see `wake`).
    fn arm_ifmap(&mut self, cx: &StepCtx, prim: &Primitive, a: u64) {
        if !cx.ahead || self.ifmap_auto.is_some() || self.fsm_next != Some(a + 1) || a <= cx.cycle {
            return;
        }
        let ifmap = &self.dp.ifmap;
        let from = (cx.cycle + 1).max(self.port_free);
        let mut not_before = std::mem::take(&mut self.not_before);
        not_before.clear();
        // At most a spad's worth: the values beyond wait for entries the burst does not free.
        let end = ifmap.total.min(ifmap.stored + ifmap.entries.len() as u64);
        self.port_entry_edges(prim, from, a, end, &mut not_before);
        if !not_before.is_empty()
            && self
                .ports
                .ifmap_in
                .auto_take_within(cx, from, a, &not_before)
        {
            self.ifmap_auto = Some(IfmapAuto::Ahead(a));
        }
        self.not_before = not_before;
    }

    /// While the FSM is ahead through `a`: what the ifmap link takes for the write port. When
    /// the drain then waits for the psum from below, the values the port can store before the
    /// window moves (`arm_window`); else those it stores by `a` (`arm_ifmap`), or the first
    /// window after a filter load (`arm_window`).
    fn arm_port(&mut self, cx: &StepCtx, prim: &Primitive, a: u64) {
        if self.fsm_waits_below {
            self.arm_window(cx, prim);
        }
        self.arm_ifmap(cx, prim, a);
        if !self.fsm_waits_below {
            self.arm_window(cx, prim);
        }
        if self.ifmap_auto.is_some() {
            // The link took the values on their way that the port stores by then.
            self.port_next = None;
        }
        // The PE sleeps past `a` only if no ifmap value waits for the port unseen: one sent
        // later wakes it, or is taken for the port; one on its way already asked for its step.
        self.fsm_waits_below &= self.ports.ifmap_in.head_ready_at().is_none();
    }

    /// While the FSM is stalled (not ahead) waiting for its window, or in a drain waiting for
    /// a psum, or loads its filters, or is ahead through a burst whose drain then waits for
    /// the psum from below: leaves the values of the window it waits for (the next
    /// position's, in a drain; the first, in a filter load) that the write port has entries
    /// for to the ifmap link, which takes each for the port (those already on their way at
    /// once, the others as they are sent) at the edge the port would (the
    /// first at or after its arrival, after the store before it and `port_free`: the entries
    /// stay free, and more only come free, whatever the FSM does next), and asks for a step at
    /// the edge after the last (where a waiting FSM issues). The PE sleeps through the wait
    /// instead of stepping at each value, and writes what the link took at its steps (before
    /// the FSM looks at the window, and as the port's work at the edge).
    fn arm_window(&mut self, cx: &StepCtx, prim: &Primitive) {
        let dp = &self.dp;
        // Ahead only through a filter load: the port's entries are those of its state now.
        let stalled = self.ahead_until.is_none() || dp.state == PeState::LoadFilters;
        // Or through a burst whose drain then waits for the psum from below: the entries the
        // burst releases, at the edges it releases them, stay free until the drain's last
        // psum, which only frees more.
        let below = !stalled && self.fsm_waits_below && self.releases.valid;
        if !cx.ahead || !(stalled || below) || self.ifmap_auto.is_some() || !dp.pipe.is_empty() {
            return;
        }
        let start = dp.window_start(prim);
        let limit = dp.ifmap.port_limit(start, prim.q, dp.released(prim));
        let window_end = |first: u64| (first + prim.s as u64) * prim.q as u64;
        let end = match dp.state {
            // The window it waits for (the first, after a filter load): the step after its
            // last value issues.
            PeState::Compute if !dp.window_stored(prim) => window_end(start).min(limit),
            PeState::LoadFilters => window_end(start).min(limit),
            // Every value the port can store before the drain moves the window, when the next
            // position's window takes them all: the step after the last then finds it
            // complete, and the values after them wait for the move.
            PeState::Drain => {
                let next = if dp.x + 1 < prim.f {
                    start + prim.u as u64
                } else {
                    (dp.row as u64 + 1) * dp.w as u64
                };
                if window_end(next) < limit {
                    return;
                }
                limit
            }
            _ => return,
        }
        .min(dp.ifmap.total);
        if end <= dp.ifmap.stored {
            return;
        }
        let from = (cx.cycle + 1).max(self.port_free);
        let need = end - dp.ifmap.stored;
        if !below {
            if self.ports.ifmap_in.auto_take(cx, from, need, 1) {
                self.ifmap_auto = Some(IfmapAuto::Window);
            }
            return;
        }
        // Each value from the first edge at which it has an entry, and no step asked for after
        // the last: the drain waits for the psum from below, whose arrival wakes the PE; the
        // FSM asks once it waits for the window (`step`). (The burst releases every leading
        // entry, so every value has one.)
        let mut not_before = std::mem::take(&mut self.not_before);
        not_before.clear();
        self.port_entry_edges(prim, from, u64::MAX, end, &mut not_before);
        if not_before.len() as u64 == need
            && self.ports.ifmap_in.auto_take_each(cx, from, &not_before)
        {
            self.ifmap_auto = Some(IfmapAuto::Window);
        }
        self.not_before = not_before;
    }

    /// For each value from the next the write port stores up to `end`, the first edge from
    /// `from` at which the port has an entry for it (limits only grow: the entries the FSM's
    /// run ahead releases, `releases`), into `out`; it stops at the first value without one by
    /// edge `until`.
    fn port_entry_edges(
        &self,
        prim: &Primitive,
        from: u64,
        until: u64,
        end: u64,
        out: &mut Vec<u64>,
    ) {
        let ifmap = &self.dp.ifmap;
        let start = self.dp.window_start(prim);
        let mut e = from;
        for j in ifmap.stored..end {
            while j >= ifmap.port_limit(start, prim.q, self.port_released_at(prim, e)) {
                match self.releases.next_after(e).filter(|_| self.releases.valid) {
                    Some(r) if r <= until => e = r,
                    _ => return,
                }
            }
            if e > until {
                return;
            }
            out.push(e);
        }
    }

    /// With the window left to the ifmap link (see [`Pe::arm_window`]): the values it took at
    /// edges up to `upto`; the port is the PE's again once it has them all.
    fn collect_window(&mut self, cx: &StepCtx, upto: u64, prim: &Primitive) {
        self.collect_ifmap(cx, Some(upto), prim);
        if !self.ports.ifmap_in.auto_pending() {
            self.ifmap_auto = None;
        }
    }

    /// The ifmap values the link took for the write port (see [`Pe::arm_ifmap`]) at edges up
    /// to `upto` (all with `None`), written in order, as the port wrote each at its edge.
    fn collect_ifmap(&mut self, cx: &StepCtx, upto: Option<u64>, prim: &Primitive) {
        let mut values = std::mem::take(&mut self.run_buf);
        values.clear();
        let (_, last) = self.ports.ifmap_in.take_auto(cx, upto, &mut values);
        for &v in &values {
            self.write_ifmap(v, prim);
        }
        self.run_buf = values;
        if let Some(last) = last {
            self.port_free = self.port_free.max(last + 1);
        }
    }

    /// Past the edge through which the ifmap link took values for the port: writes them all
    /// (each taken by then) and takes the port back.
    fn finish_ifmap(&mut self, cx: &StepCtx) {
        if let (Some(IfmapAuto::Ahead(a)), Some(prim)) = (self.ifmap_auto, self.prim) {
            self.ifmap_auto = None;
            self.collect_ifmap(cx, None, &prim);
            self.ports.ifmap_in.auto_cancel();
            debug_assert!(
                self.port_free <= a + 1,
                "{}: a value taken after {a}",
                self.name
            );
        }
    }

    /// The first edge at or after `from` at which the write port can store the value at the
    /// head of the ifmap FIFO: once it has arrived, the port has worked the edges before
    /// (`port_free`) and has a free entry. `None` when no value is on its way (its arrival
    /// wakes the PE), or the port stays full while the FSM is ahead (its step looks again).
    fn port_next_edge(&mut self, prim: &Primitive, from: u64) -> Option<u64> {
        let head = self.ports.ifmap_in.head_ready_at()?;
        let e = head.max(from).max(self.port_free);
        if !self.port_blocked_at(prim, e) {
            return Some(e);
        }
        if self.ahead_until.is_some() && self.releases.valid && !self.dp.ifmap.all_stored() {
            return self.releases.next_after(e);
        }
        None
    }

    /// The last edge up to `a` (the end of the FSM's run ahead) through which the write port
    /// does nothing, whatever arrives: it has worked it, or it has no free entry until the
    /// next release.
    fn port_quiet_until(&self, prim: &Primitive, c: u64, a: u64) -> u64 {
        let e = (c + 1).max(self.port_free);
        if e > a {
            return a;
        }
        if !self.port_blocked_at(prim, e) {
            return e - 1;
        }
        if self.ahead_until.is_some() && self.releases.valid && !self.dp.ifmap.all_stored() {
            if let Some(r) = self.releases.next_after(e) {
                return (r - 1).min(a);
            }
        }
        a
    }

    /// The ifmap spad's write port at `cx`'s edge: the value at the head of the ifmap FIFO into
    /// the next free entry, if it has arrived and the spad has room.
    fn store_ifmap(&mut self, cx: &StepCtx, prim: &Primitive) -> bool {
        if cx.cycle < self.port_free || self.port_blocked_at(prim, cx.cycle) {
            return false;
        }
        let Some(v) = self.ports.ifmap_in.try_recv(cx) else {
            return false;
        };
        self.write_ifmap(v, prim);
        true
    }

    /// Writes an arriving ifmap value into the next free entry of the spad's window.
    #[inline]
    fn write_ifmap(&mut self, v: i16, prim: &Primitive) {
        let a = self.dp.ifmap.write(v, prim.q);
        self.dp.counters.ifmap_spad_writes += 1;
        self.dp.probe.strobes |= strobe::IFMAP_WR;
        self.dp.probe.held.ifmap_wr = (a, v);
    }
}

impl Component for Pe {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, cx: &StepCtx) -> Result<Activity, Fault> {
        if let Some(fault) = self.deferred.take() {
            return Err(fault.into());
        }
        // Strobes (enables) last one cycle, also into an idle or finished PE.
        self.dp.probe.strobes = 0;
        self.last_cycle = cx.cycle;
        if let Some(a) = self.ahead_until {
            if cx.cycle <= a {
                // The control FSM has run through this edge already (a burst); a value has
                // reached the ifmap port, which works on as it would have.
                let Some(prim) = self.prim else {
                    return Ok(Activity::Idle);
                };
                // The edge moved (the burst ran through it), whatever the port does. While the
                // link takes values for the port, the port stores only those (see `arm_ifmap`).
                if self.ifmap_auto == Some(IfmapAuto::Window) {
                    self.collect_window(cx, cx.cycle, &prim);
                    if self.ifmap_auto.is_none() {
                        self.store_ifmap(cx, &prim);
                    }
                } else if self.ifmap_auto.is_some() {
                    self.collect_ifmap(cx, Some(cx.cycle), &prim);
                } else {
                    self.store_ifmap(cx, &prim);
                }
                self.note_next(cx, &prim, a);
                self.arm_port(cx, &prim, a);
                return Ok(Activity::Moved);
            }
            self.ahead_until = None;
            self.finish_ifmap(cx);
        }
        if matches!(self.dp.state, PeState::Done | PeState::Idle) {
            let Some(prim) = self.config_port.try_recv(cx) else {
                return Ok(Activity::Idle);
            };
            self.configure(prim).map_err(|e| e.to_string())?;
            return Ok(Activity::Moved);
        }
        let Some(prim) = self.prim else {
            return Ok(Activity::Idle);
        };
        let window_left = self.ifmap_auto == Some(IfmapAuto::Window);
        if window_left {
            // What the link stored for the port at the edges before this one.
            self.collect_window(cx, cx.cycle - 1, &prim);
        }
        self.dp.counters.active_cycles += 1;
        let pipe_busy = self.dp.advance_pipeline(&prim);
        let mut moved = pipe_busy;
        // RD: issue the next operation, from the state as it was before this edge.
        moved |= match self.dp.state {
            PeState::LoadFilters => self.load_weight(cx, cx.cycle, &prim)?,
            PeState::Compute => self.mode.issue(&mut self.dp, &prim),
            PeState::Drain => self.issue_drain(cx, &prim, pipe_busy)?,
            PeState::Idle | PeState::Done => false,
        };
        // The ifmap spad's write port works alongside (or the link for it, see `arm_window`).
        if self.ifmap_auto == Some(IfmapAuto::Window) {
            let before = self.dp.ifmap.stored;
            self.collect_window(cx, cx.cycle, &prim);
            moved |= self.dp.ifmap.stored > before;
        }
        if self.ifmap_auto.is_none() {
            // Its own work, from the edge after the link's last store (`port_free`).
            moved |= self.store_ifmap(cx, &prim);
        }
        if cx.ahead && moved {
            self.run_ahead(cx, &prim)?;
            if let Some(a) = self.ahead_until {
                self.note_next(cx, &prim, a);
                self.arm_port(cx, &prim, a);
            }
        }
        if self.ahead_until.is_none() {
            self.arm_window(cx, &prim);
        }
        if self.ifmap_auto == Some(IfmapAuto::Window)
            && self.ahead_until.is_none()
            && self.dp.state == PeState::Compute
            && !self.dp.window_stored(&prim)
        {
            // The FSM waits for the window the link stores: a step after its last value (asked
            // for when the link was armed, unless armed through a burst: see `arm_window`).
            self.ports.ifmap_in.auto_wake_after_last(cx, 1);
        }
        if self.traced {
            self.dp.probe.held.out_credits = self.ports.psum_out.credits(cx);
        }
        Ok(Activity::from_moved(moved))
    }

    /// An idle step (a stall, or waiting for a primitive) repeats until a link wakes the PE;
    /// through a burst it has run ahead (and the pipeline bubbles before a drain) it looks at
    /// no link but the ifmap port's, and at none while that port has nothing to do.
    fn wake(&self, cx: &StepCtx, did: Activity) -> Wake {
        if let Some(a) = self.ahead_until {
            // Every edge up to `a` moves (a burst), and the FSM needs a step after it. Until
            // then only a value for the ifmap port needs a step, and none does while the port
            // has nothing to do (its window stays where it is through a burst).
            let prim = self.prim.as_ref().expect("a burst runs a primitive");
            let c = cx.cycle;
            // Through `a` and no step after it unless something reaches a link, when the FSM
            // would only stall there for the psum from below (its arrival wakes the PE, and
            // so does anything else that reaches a link meanwhile, at `a + 1`).
            let through = |n: u64| {
                if self.fsm_waits_below && n == a - c {
                    Wake::IgnoringLinksThenIdle(n)
                } else {
                    Wake::IgnoringLinksFor(n)
                }
            };
            if self.fsm_next == Some(a + 1)
                && match self.ifmap_auto {
                    Some(IfmapAuto::Ahead(_)) => true,
                    // The window's values the port can store before the drain's last psum,
                    // the link's (see `arm_window`): the rest wait for the move.
                    Some(IfmapAuto::Window) => self.fsm_waits_below,
                    None => false,
                }
            {
                // The ifmap link stores for the port through `a` (see `arm_ifmap`); a value it
                // leaves to the port is one the port would store after `a`.
                return through(a - c);
            }
            if self.fsm_next == Some(a + 1) {
                // No step is needed before the FSM's while the port has nothing to do: through
                // the edges a run ahead has worked it for, and while it has no free entry
                // (values arriving meanwhile wait for its first free edge).
                let quiet = self.port_quiet_until(prim, c, a);
                if quiet > c {
                    return through(quiet - c);
                }
            }
            // A value that arrived already and waits for the port needs a step; so does the
            // FSM after the burst, unless a filter load is left waiting for its next weight.
            let next = match (self.port_next, self.fsm_next) {
                (Some(p), Some(f)) => Some(p.min(f)),
                (p, f) => p.or(f),
            };
            return match next {
                Some(n) if n <= a + 1 => Wake::IdleFor(n - c),
                n => Wake::Ahead {
                    moving: a - c,
                    then: n.map(|n| n - c),
                },
            };
        }
        let waits_for_window = self.ifmap_auto == Some(IfmapAuto::Window)
            && self.dp.state == PeState::Compute
            && self.prim.is_some_and(|p| !self.dp.window_stored(&p));
        if !did.moved() || waits_for_window {
            // Waiting for a link; with the window left to the ifmap link, it asks for the
            // step at which the FSM issues.
            return Wake::Idle;
        }
        match self.quiet_edges() {
            0 => Wake::Next,
            n => Wake::IgnoringLinksFor(n),
        }
    }

    fn settle(&mut self, last: &StepCtx, mut edges: u64) {
        if let Some(a) = self.ahead_until {
            // The edges up to `a` are accounted for by the burst.
            if last.cycle <= a {
                return;
            }
            edges = edges.min(last.cycle - a);
            self.ahead_until = None;
            self.finish_ifmap(last);
        }
        let Some(prim) = self.prim else {
            self.dp.probe.strobes = 0;
            return;
        };
        while edges > 0 {
            let pipe_empty = self.dp.pipe.is_empty();
            match self.dp.state {
                PeState::Idle | PeState::Done => {
                    self.dp.probe.strobes = 0;
                    return;
                }
                // A stall: the same cause at every edge, but for the weights the link took
                // for the PE at some of them (see `load_ahead`).
                PeState::LoadFilters if pipe_empty => {
                    if self.ports.filter_in.auto_pending() {
                        let first = last.cycle + 1 - edges;
                        match self.collect_weights(last, Some(last.cycle), &prim) {
                            Ok((n, _)) if self.dp.state == PeState::LoadFilters => {
                                self.dp.counters.stall_filter += edges - n as u64;
                            }
                            Ok((n, Some(end))) => {
                                // The row's last weight (the link asks for a step there, so
                                // this is not expected): the edges after it go on in Compute.
                                let used = end + 1 - first;
                                self.dp.counters.stall_filter += used - n as u64;
                                self.dp.counters.active_cycles += used;
                                edges -= used;
                                continue;
                            }
                            Ok((_, None)) => {
                                self.deferred = Some(format!(
                                    "{}: the filter row ended at an edge the link did not say",
                                    self.name
                                ));
                            }
                            Err(e) => self.deferred = Some(e),
                        }
                        break;
                    }
                    self.dp.counters.stall_filter += edges;
                    break;
                }
                PeState::Compute if pipe_empty && !self.dp.window_stored(&prim) => {
                    self.dp.counters.stall_ifmap += edges;
                    break;
                }
                PeState::Drain if pipe_empty => {
                    if self.drain_waits_for_psum_in {
                        self.dp.counters.stall_psum_in += edges;
                    } else {
                        self.dp.counters.stall_psum_out += edges;
                    }
                    break;
                }
                PeState::Compute
                    if self
                        .mode
                        .burst_edges(&self.dp, &prim)
                        .is_some_and(|b| b <= edges) =>
                {
                    edges -= self.burst(&prim, None);
                    continue;
                }
                _ => {}
            }
            self.quiet_edge(&prim);
            edges -= 1;
        }
        if edges > 0 {
            // The stall branches above: the edges still count as active.
            self.dp.counters.active_cycles += edges;
            self.dp.probe.strobes = 0;
        }
    }

    fn holds_work(&self) -> bool {
        matches!(
            self.dp.state,
            PeState::LoadFilters | PeState::Compute | PeState::Drain
        ) || self.config_port.pending()
    }

    /// Control state, the three spads (signed 16-bit words, 16 to a line), the zero buffer, the
    /// input FIFO levels and the counters.
    fn state(&self) -> Option<String> {
        Some(self.state_text())
    }

    fn declare(&mut self, r: &mut SignalRegistry) -> Result<(), TraceError> {
        self.declare_signals(r)
    }

    fn trace(&self, t: &mut TraceFrame) {
        self.trace_signals(t)
    }
}
