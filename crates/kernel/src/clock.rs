//! Clock domains on one picosecond timebase.
//!
//! A domain is a frequency in hertz. Its edges are numbered from 0; edge `n` (the end of cycle
//! `n`) happens at `floor((n + 1) * 10^12 / f)` picoseconds. Computing every edge from its index,
//! in exact integer arithmetic, means there is no accumulated rounding: a 200 MHz core (5,000 ps)
//! and a 60 MHz link (16,666.67 ps) meet exactly every 50,000 ps, after 10 core and 3 link cycles,
//! for as long as the simulation runs. Time 0 holds the reset state, before any edge; that is what
//! a trace's `$dumpvars` at `#0` shows.

use std::fmt;

/// Simulated time in picoseconds.
pub type Picos = u64;

/// Picoseconds per second.
pub const PS_PER_SECOND: u128 = 1_000_000_000_000;

/// Index of a clock domain in a [`crate::Scheduler`] (the order domains were added).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u16);

/// A clock: a name and a frequency. `Copy`, so a link or FIFO can keep the clocks of both its ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub id: DomainId,
    pub name: &'static str,
    pub hz: u64,
    /// The period in picoseconds when it is a whole number (200 MHz: 5,000), for a fast path.
    exact_period: Option<u64>,
    /// `10^12 = period_floor * hz + period_rem`, for [`Clock::next_edge_time`].
    period_floor: u64,
    period_rem: u64,
}

impl Clock {
    /// A clock of `hz` hertz. `hz` must be between 1 Hz and 1 THz (one edge per picosecond at most).
    pub fn new(id: DomainId, name: &'static str, hz: u64) -> Result<Self, ClockError> {
        if hz == 0 || hz as u128 > PS_PER_SECOND {
            return Err(ClockError { name, hz });
        }
        let exact_period = PS_PER_SECOND
            .is_multiple_of(hz as u128)
            .then(|| (PS_PER_SECOND / hz as u128) as u64);
        Ok(Clock {
            id,
            name,
            hz,
            exact_period,
            period_floor: (PS_PER_SECOND / hz as u128) as u64,
            period_rem: (PS_PER_SECOND % hz as u128) as u64,
        })
    }

    /// Time of edge `n` (the end of cycle `n`, counting from 0).
    #[inline]
    pub fn edge_time(&self, n: u64) -> Picos {
        match self.exact_period {
            Some(p) => (n + 1).wrapping_mul(p),
            // In 64 bits while the product fits (18M edges), else in 128: the same integer.
            None => match n
                .checked_add(1)
                .and_then(|m| m.checked_mul(PS_PER_SECOND as u64))
            {
                Some(num) => num / self.hz,
                None => ((n as u128 + 1) * PS_PER_SECOND / self.hz as u128) as Picos,
            },
        }
    }

    /// The time of edge `n + 1`, given `t_n`, the time of edge `n` ([`Clock::edge_time`]): the
    /// same integer without a division. With `(n + 1) 10^12 = t_n f + rem` (`0 <= rem < f`) and
    /// `10^12 = q f + r`, `(n + 2) 10^12 = (t_n + q) f + rem + r` with `rem + r < 2f`.
    /// Times wrap past 2^64 ps (213 days), as `edge_time`'s do; within them the u128 products
    /// cannot overflow (`n + 1 <= 2^64`, `f <= 10^12`).
    #[inline]
    pub fn next_edge_time(&self, n: u64, t_n: Picos) -> Picos {
        match self.exact_period {
            Some(p) => t_n.wrapping_add(p),
            None => {
                let hz = self.hz as u128;
                let rem = ((n as u128 + 1) * PS_PER_SECOND).wrapping_sub(t_n as u128 * hz);
                debug_assert!(
                    rem < hz,
                    "clock `{}`: {t_n} is not edge {n}'s time",
                    self.name
                );
                let carry = u64::from(rem.wrapping_add(self.period_rem as u128) >= hz);
                t_n.wrapping_add(self.period_floor).wrapping_add(carry)
            }
        }
    }

    /// Index of the first edge strictly after time `t`.
    ///
    /// `floor((n+1) * 10^12 / f) > t` holds exactly when `(n+1) * 10^12 >= (t+1) * f`, so the
    /// answer is `ceil((t+1) * f / 10^12) - 1`.
    /// With a whole period `p`, edge `n` is at `(n+1) p`, which is after `t` exactly when
    /// `n >= t / p`. Otherwise the product in 64 bits when it fits (the first ~0.3 s of a
    /// 60 MHz clock), else in 128: the same integer, a cheaper division.
    #[inline]
    pub fn first_edge_after(&self, t: Picos) -> u64 {
        if let Some(p) = self.exact_period {
            return t / p;
        }
        match t.checked_add(1).and_then(|n| n.checked_mul(self.hz)) {
            Some(num) => num.div_ceil(PS_PER_SECOND as u64) - 1,
            None => {
                let num = (t as u128 + 1) * self.hz as u128;
                (num.div_ceil(PS_PER_SECOND) - 1) as u64
            }
        }
    }

    /// Number of edges at or before time `t`: the cycles this domain has completed at `t`.
    #[inline]
    pub fn cycles_completed_at(&self, t: Picos) -> u64 {
        self.first_edge_after(t)
    }

    /// The period, rounded to the nearest picosecond (for display; edges use [`Clock::edge_time`]).
    pub fn period_ps_rounded(&self) -> Picos {
        ((PS_PER_SECOND + self.hz as u128 / 2) / self.hz as u128) as Picos
    }
}

/// A clock frequency outside 1 Hz ..= 1 THz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockError {
    pub name: &'static str,
    pub hz: u64,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock `{}`: {} Hz is outside 1 Hz ..= 1 THz (the timebase is 1 ps)",
            self.name, self.hz
        )
    }
}

impl std::error::Error for ClockError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn clk(hz: u64) -> Clock {
        Clock::new(DomainId(0), "c", hz).unwrap()
    }

    #[test]
    fn core_and_link_interleave_exactly() {
        let core = clk(200_000_000);
        let link = clk(60_000_000);
        assert_eq!(core.edge_time(0), 5_000);
        assert_eq!(link.edge_time(0), 16_666);
        assert_eq!(link.edge_time(1), 33_333);
        assert_eq!(link.edge_time(2), 50_000);
        assert_eq!(core.edge_time(9), 50_000);
        // Over a simulated second the edges coincide every 50 ns, never drifting.
        for k in 1..=20_000_000u64 / 1000 {
            assert_eq!(core.edge_time(10 * k - 1), link.edge_time(3 * k - 1));
        }
        assert_eq!(core.edge_time(199_999_999), 1_000_000_000_000);
        assert_eq!(link.edge_time(59_999_999), 1_000_000_000_000);
    }

    #[test]
    fn first_edge_after_is_the_inverse_of_edge_time() {
        for hz in [
            1u64,
            7,
            60_000_000,
            200_000_000,
            333_333_333,
            1_000_000_000_000,
        ] {
            let c = clk(hz);
            for n in [0u64, 1, 2, 3, 9, 10, 11, 1000, 123_456] {
                let t = c.edge_time(n);
                assert_eq!(c.first_edge_after(t), n + 1, "hz={hz} n={n}");
                if t > 0 && (n == 0 || c.edge_time(n - 1) < t - 1) {
                    assert_eq!(c.first_edge_after(t - 1), n, "hz={hz} n={n}");
                }
            }
            assert_eq!(
                c.first_edge_after(0),
                if c.edge_time(0) > 0 { 0 } else { 1 }
            );
        }
    }

    /// The 64-bit paths give the 128-bit formula's edge, up to the largest time.
    #[test]
    fn first_edge_after_fast_paths_equal_the_exact_formula() {
        let exact =
            |hz: u64, t: u64| ((((t as u128) + 1) * hz as u128).div_ceil(PS_PER_SECOND) - 1) as u64;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for hz in [
            1u64,
            7,
            60_000_000,
            200_000_000,
            333_333_333,
            1_000_000_000_000,
        ] {
            let c = clk(hz);
            let mut ts = vec![
                0,
                1,
                4_999,
                5_000,
                5_001,
                16_666,
                16_667,
                u64::MAX - 1,
                u64::MAX,
            ];
            ts.extend((0..64).map(|k| (1u64 << k) - 1));
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ts.push(x >> (x % 48));
            }
            for t in ts {
                assert_eq!(c.first_edge_after(t), exact(hz, t), "hz={hz} t={t}");
                let n = t >> 24; // edges whose times fit 64 bits at 1 Hz too
                let want = ((n as u128 + 1) * PS_PER_SECOND / hz as u128) as u64;
                assert_eq!(c.edge_time(n), want, "hz={hz} n={n}");
                let next = (n as u128 + 2) * PS_PER_SECOND / hz as u128;
                if next <= u64::MAX as u128 {
                    assert_eq!(c.next_edge_time(n, want), next as u64, "hz={hz} n={n} + 1");
                }
            }
            // Stepped edge by edge from 0, as the scheduler does, over a few full periods of
            // the remainders.
            let mut t = c.edge_time(0);
            for n in 0..100_000u64 {
                t = c.next_edge_time(n, t);
                assert_eq!(t, c.edge_time(n + 1), "hz={hz} edge {}", n + 1);
            }
        }
    }

    #[test]
    fn bad_frequencies_are_refused() {
        assert!(Clock::new(DomainId(0), "x", 0).is_err());
        assert!(Clock::new(DomainId(0), "x", 2_000_000_000_000).is_err());
        assert_eq!(clk(60_000_000).period_ps_rounded(), 16_667);
    }
}
