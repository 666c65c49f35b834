//! The MAC against two independent references over random operands and shifts: the `fixed`
//! crate (wide_mul, and its fixed-to-fixed conversions, which drop bits towards minus infinity
//! and wrap, saturate or report overflow), and plain i64/f64 arithmetic.

use fixed::types::extra::{U0, U1, U12, U16, U4, U8};
use fixed::{FixedI16, FixedI32};
use proptest::prelude::*;
use rowsim_datapath::mac::{
    add, mac, mac_row, mac_row_baseline, product, MacConfig, MacCounters, Overflow, Rounding,
};

fn cfg(shift: u32, rounding: Rounding, overflow: Overflow) -> MacConfig {
    MacConfig::new(shift, rounding, overflow).unwrap()
}

/// The window of `a * b` at `shift`, by `fixed`: Q8.8 x Q8.8 -> Q16.16 (wide_mul), converted to
/// a 16-bit type with `16 - shift` fraction bits.
macro_rules! by_fixed {
    ($a:expr, $b:expr, $frac:ty) => {{
        let p: FixedI32<U16> =
            FixedI16::<U8>::from_bits($a).wide_mul(FixedI16::<U8>::from_bits($b));
        (
            p.wrapping_to_num::<FixedI16<$frac>>().to_bits(),
            p.saturating_to_num::<FixedI16<$frac>>().to_bits(),
            p.checked_to_num::<FixedI16<$frac>>().is_none(),
        )
    }};
}

fn fixed_window(a: i16, b: i16, shift: u32) -> (i16, i16, bool) {
    match shift {
        0 => by_fixed!(a, b, U16),
        4 => by_fixed!(a, b, U12),
        8 => by_fixed!(a, b, U8),
        12 => by_fixed!(a, b, U4),
        15 => by_fixed!(a, b, U1),
        16 => by_fixed!(a, b, U0),
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn truncating_window_matches_fixed(a: i16, b: i16, k in prop::sample::select(vec![0u32, 4, 8, 12, 15, 16])) {
        let (wrap, sat, overflowed) = fixed_window(a, b, k);
        let mut c = MacCounters::default();
        prop_assert_eq!(product(a, b, cfg(k, Rounding::Truncate, Overflow::Wrap), &mut c), wrap);
        prop_assert_eq!(product(a, b, cfg(k, Rounding::Truncate, Overflow::Saturate), &mut c), sat);
        prop_assert_eq!(c.product_overflows, 2 * overflowed as u64);
    }

    #[test]
    fn windows_match_an_exact_reference(a: i16, b: i16, k in 0u32..=16) {
        // a * b / 2^k is exact in f64 (|a * b| <= 2^30).
        let exact = (a as f64) * (b as f64) / f64::powi(2.0, k as i32);
        for (rounding, r) in [(Rounding::Truncate, exact.floor()), (Rounding::NearestEven, exact.round_ties_even())] {
            let r = r as i64;
            let fits = (i16::MIN as i64..=i16::MAX as i64).contains(&r);
            let mut c = MacCounters::default();
            let wrapped = product(a, b, cfg(k, rounding, Overflow::Wrap), &mut c);
            prop_assert_eq!(wrapped as i64, ((r + 32768).rem_euclid(65536)) - 32768);
            let sat = product(a, b, cfg(k, rounding, Overflow::Saturate), &mut c);
            prop_assert_eq!(sat as i64, r.clamp(i16::MIN as i64, i16::MAX as i64));
            prop_assert_eq!(c.product_overflows, if fits { 0 } else { 2 });
        }
    }

    #[test]
    fn accumulation_matches_i64(ops in prop::collection::vec((any::<i16>(), any::<i16>()), 1..64), k in 0u32..=16, rne: bool) {
        let rounding = if rne { Rounding::NearestEven } else { Rounding::Truncate };
        let (w, s) = (cfg(k, rounding, Overflow::Wrap), cfg(k, rounding, Overflow::Saturate));
        let mut cw = MacCounters::default();
        let mut cs = MacCounters::default();
        let (mut accw, mut accs) = (0i16, 0i16);
        let (mut true_sum, mut sat_ref, mut sum_over) = (0i64, 0i64, 0u64);
        for &(a, b) in &ops {
            accw = mac(accw, a, b, w, &mut cw);
            accs = mac(accs, a, b, s, &mut cs);
            // The reference: each product windowed (wrapped), then summed in i64.
            let mut scratch = MacCounters::default();
            let pw = product(a, b, w, &mut scratch) as i64;
            let ps = product(a, b, s, &mut scratch) as i64;
            true_sum += pw;
            let next = sat_ref + ps;
            sum_over += (next < i16::MIN as i64 || next > i16::MAX as i64) as u64;
            sat_ref = next.clamp(i16::MIN as i64, i16::MAX as i64);
        }
        // Wrapping accumulation is the true sum mod 2^16, whatever the order.
        prop_assert_eq!(accw as i64, (true_sum + 32768).rem_euclid(65536) - 32768);
        let mut rev = 0i16;
        let mut cr = MacCounters::default();
        for &(a, b) in ops.iter().rev() {
            rev = mac(rev, a, b, w, &mut cr);
        }
        prop_assert_eq!(rev, accw);
        // Saturating accumulation clamps at every step, in order.
        prop_assert_eq!(accs as i64, sat_ref);
        prop_assert_eq!(cs.sum_overflows, sum_over);
    }

    #[test]
    fn add_counts_exactly_the_true_overflows(a: i16, b: i16) {
        let t = a as i64 + b as i64;
        let mut c = MacCounters::default();
        let s = add(a, b, cfg(0, Rounding::Truncate, Overflow::Saturate), &mut c);
        prop_assert_eq!(s as i64, t.clamp(-32768, 32767));
        prop_assert_eq!(c.sum_overflows, (t != s as i64) as u64);
    }

    #[test]
    fn a_row_of_macs_is_each_mac_in_turn(
        rows in prop::collection::vec((any::<i16>(), any::<i16>()), 0..24),
        x: i16,
        k in 0u32..=16,
        nearest: bool,
        saturate: bool,
    ) {
        // Every configuration, the chip's (truncating, wrapping) on its own path.
        let c = cfg(
            k,
            if nearest { Rounding::NearestEven } else { Rounding::Truncate },
            if saturate { Overflow::Saturate } else { Overflow::Wrap },
        );
        let (mut acc, w): (Vec<i16>, Vec<i16>) = rows.iter().copied().unzip();
        let mut each = acc.clone();
        let (mut by_row, mut by_mac) = (MacCounters::default(), MacCounters::default());
        let mut base = acc.clone();
        let mut by_base = MacCounters::default();
        let last = mac_row(&mut acc, &w, x, c, &mut by_row);
        // The baseline's vectors, whatever the CPU has, give the same.
        let last_base = mac_row_baseline(&mut base, &w, x, c, &mut by_base);
        prop_assert_eq!(&base, &acc);
        prop_assert_eq!(last_base, last);
        prop_assert_eq!(by_base, by_row);
        let mut last_each = None;
        for (a, &wt) in each.iter_mut().zip(&w) {
            let p = product(wt, x, c, &mut by_mac);
            *a = add(*a, p, c, &mut by_mac);
            last_each = Some(p);
        }
        prop_assert_eq!(acc, each);
        prop_assert_eq!(last, last_each);
        prop_assert_eq!(by_row, by_mac);
    }
}
