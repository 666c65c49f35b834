//! The PE's multiply-accumulate, bit for bit.
//!
//! Operands are 16-bit two's complement words (ifmaps, weights, psums). The multiplier makes the
//! full 32-bit product (`i16 x i16` always fits: the extreme is `(-2^15)^2 = 2^30`). A per-layer
//! shift `k` (0..=16) keeps the 16-bit window of bits `[k+15 : k]`: with ifmaps in Q`a`.`b` and
//! weights in Q`c`.`d`, the product is in Q(`a+c`).(`b+d`) and `k = b + d - f` gives psums with
//! `f` fraction bits. The bits below the window are dropped by truncation (towards minus
//! infinity: what an arithmetic shift does, and what the chip does) or rounded to nearest,
//! ties to even. When the shifted product does not fit in 16 bits the window overflows.
//!
//! Overflow handling is per layer and applies to both the product window and the accumulator:
//! - [`Overflow::Wrap`] (default): keep the low 16 bits, two's complement. Wrapping addition is
//!   associative, so every accumulation order gives the same bits and a plain reference
//!   convolution checks any mapping.
//! - [`Overflow::Saturate`]: clamp to `[-2^15, 2^15 - 1]`. Order now matters; the reference
//!   must replay the hardware's accumulation order.
//!
//! Either way every overflow of the true (unbounded) value is counted in [`MacCounters`].
//! Nothing here uses the plain `+`, `*` or `>>` on values that could overflow: the product is
//! formed in `i32`, where it cannot, and everything else says what it does.

/// How the bits below the product window are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rounding {
    /// Drop them (round towards minus infinity), as the chip does.
    #[default]
    Truncate,
    /// Round to nearest, ties to even.
    NearestEven,
}

/// What happens when a value does not fit in 16 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    #[default]
    Wrap,
    Saturate,
}

/// The per-layer MAC configuration (part of what the scan chain carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MacConfig {
    /// The product window starts at this bit: 0..=16.
    pub shift: u32,
    pub rounding: Rounding,
    pub overflow: Overflow,
}

/// The largest product shift: the window `[31:16]`.
pub const MAX_SHIFT: u32 = 16;

/// A MAC configuration that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("product shift {shift} is outside 0..={MAX_SHIFT} (the 16-bit window must lie in the 32-bit product)")]
pub struct ShiftError {
    pub shift: u32,
}

impl MacConfig {
    pub fn new(shift: u32, rounding: Rounding, overflow: Overflow) -> Result<Self, ShiftError> {
        if shift > MAX_SHIFT {
            return Err(ShiftError { shift });
        }
        Ok(MacConfig {
            shift,
            rounding,
            overflow,
        })
    }
}

/// Overflows seen: products whose window did not hold them, sums that left 16 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MacCounters {
    pub product_overflows: u64,
    pub sum_overflows: u64,
}

/// The full product of two words.
#[inline(always)]
pub fn full_product(a: i16, b: i16) -> i32 {
    // |a * b| <= 2^30: cannot overflow i32.
    (a as i32).wrapping_mul(b as i32)
}

/// The product shifted right by `shift` with the configured rounding, not yet narrowed.
#[inline(always)]
pub fn shifted(product: i32, shift: u32, rounding: Rounding) -> i64 {
    let p = product as i64;
    match rounding {
        Rounding::Truncate => p >> shift,
        Rounding::NearestEven => {
            if shift == 0 {
                return p;
            }
            let q = p >> shift; // floor
            let rem = p - (q << shift); // 0 <= rem < 2^shift
            let half = 1i64 << (shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }
    }
}

#[inline(always)]
fn narrow(v: i64, overflow: Overflow, count: &mut u64) -> i16 {
    if v < i16::MIN as i64 || v > i16::MAX as i64 {
        *count += 1;
        match overflow {
            Overflow::Wrap => v as i16, // keeps the low 16 bits
            Overflow::Saturate => {
                if v < 0 {
                    i16::MIN
                } else {
                    i16::MAX
                }
            }
        }
    } else {
        v as i16
    }
}

/// The 16-bit window of `a * b`.
#[inline(always)]
pub fn product(a: i16, b: i16, cfg: MacConfig, counters: &mut MacCounters) -> i16 {
    let v = shifted(full_product(a, b), cfg.shift, cfg.rounding);
    narrow(v, cfg.overflow, &mut counters.product_overflows)
}

/// `acc + x` in 16 bits, wrapping or saturating.
#[inline(always)]
pub fn add(acc: i16, x: i16, cfg: MacConfig, counters: &mut MacCounters) -> i16 {
    let (sum, overflowed) = acc.overflowing_add(x);
    if !overflowed {
        return sum;
    }
    counters.sum_overflows += 1;
    match cfg.overflow {
        Overflow::Wrap => sum, // overflowing_add wraps
        Overflow::Saturate => acc.saturating_add(x),
    }
}

/// One multiply-accumulate: `acc + window(a * b)`.
#[inline(always)]
pub fn mac(acc: i16, a: i16, b: i16, cfg: MacConfig, counters: &mut MacCounters) -> i16 {
    let p = product(a, b, cfg, counters);
    add(acc, p, cfg, counters)
}

/// The MACs of one ifmap value `x` with a row of weights into a row of accumulators, in
/// order: `acc[i] = mac(acc[i], w[i], x)` for each `i` (the shorter of the two rows), counting
/// overflows as [`mac`] does. Returns the last product (what the multiplier holds after the
/// row), if any. The chip's configuration (truncating, wrapping) runs as one branch-free loop,
/// compiled for AVX2 where the CPU has it (twice the lanes of the baseline x86-64's vectors:
/// the same arithmetic, so the same bits and counts); the others MAC by MAC.
#[inline]
pub fn mac_row(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    cfg: MacConfig,
    counters: &mut MacCounters,
) -> Option<i16> {
    mac_row_on::<true>(acc, w, x, cfg, counters)
}

/// [`mac_row`] on the baseline target's vectors only, whatever the CPU has: for the tests that
/// hold the two to the same bits.
#[doc(hidden)]
pub fn mac_row_baseline(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    cfg: MacConfig,
    counters: &mut MacCounters,
) -> Option<i16> {
    mac_row_on::<false>(acc, w, x, cfg, counters)
}

#[inline(always)]
fn mac_row_on<const WIDE: bool>(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    cfg: MacConfig,
    counters: &mut MacCounters,
) -> Option<i16> {
    let n = acc.len().min(w.len());
    let (acc, w) = (&mut acc[..n], &w[..n]);
    let last = w.last()?;
    if cfg.rounding == Rounding::Truncate && cfg.overflow == Overflow::Wrap {
        // Counted in 32 bits (which vectorizes), over chunks short enough that the counts
        // cannot wrap (in one piece, almost always).
        if n <= u32::MAX as usize {
            truncate_wrap_row::<WIDE>(acc, w, x, cfg.shift, counters);
        } else {
            for (acc, w) in acc.chunks_mut(1 << 31).zip(w.chunks(1 << 31)) {
                truncate_wrap_row::<WIDE>(acc, w, x, cfg.shift, counters);
            }
        }
        Some((full_product(*last, x) >> cfg.shift) as i16)
    } else {
        let mut p = 0;
        for (a, &wt) in acc.iter_mut().zip(w) {
            p = product(wt, x, cfg, counters);
            *a = add(*a, p, cfg, counters);
        }
        Some(p)
    }
}

/// [`mac_row`] for the truncating, wrapping configuration, over a row of fewer than 2^32 MACs:
/// on AVX2 where the CPU has it and `WIDE` asks for it, else on the baseline's vectors.
#[inline(always)]
fn truncate_wrap_row<const WIDE: bool>(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    shift: u32,
    counters: &mut MacCounters,
) {
    #[cfg(target_arch = "x86_64")]
    if WIDE && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { truncate_wrap_row_avx2(acc, w, x, shift, counters) };
    }
    truncate_wrap_row_any(acc, w, x, shift, counters)
}

/// [`truncate_wrap_row_any`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn truncate_wrap_row_avx2(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    shift: u32,
    counters: &mut MacCounters,
) {
    truncate_wrap_row_any(acc, w, x, shift, counters)
}

/// The loop of [`truncate_wrap_row`].
#[inline(always)]
fn truncate_wrap_row_any(
    acc: &mut [i16],
    w: &[i16],
    x: i16,
    shift: u32,
    counters: &mut MacCounters,
) {
    // `|w * x| <= 2^30` and `shift <= 16`: the shifted product is an i32; the window keeps its
    // low 16 bits, and it overflowed when those do not give it back. A wrapped sum overflowed
    // when its sign differs from both operands'.
    let (mut products, mut sums) = (0u32, 0u32);
    for (a, &wt) in acc.iter_mut().zip(w) {
        let v = full_product(wt, x) >> shift;
        let p = v as i16;
        products += u32::from(i32::from(p) != v);
        let s = a.wrapping_add(p);
        sums += u32::from((*a ^ s) & (p ^ s) < 0);
        *a = s;
    }
    counters.product_overflows += u64::from(products);
    counters.sum_overflows += u64::from(sums);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(shift: u32, rounding: Rounding, overflow: Overflow) -> MacConfig {
        MacConfig::new(shift, rounding, overflow).unwrap()
    }

    #[test]
    fn hand_worked_windows() {
        let mut c = MacCounters::default();
        // 1.5 (Q8.8: 0x0180) x 2.25 (Q8.8: 0x0240) = 3.375: product 0x0003_6000 in Q16.16,
        // shift 8 gives Q8.8 0x0360.
        let t = cfg(8, Rounding::Truncate, Overflow::Wrap);
        assert_eq!(product(0x0180, 0x0240, t, &mut c), 0x0360);
        // -3 x 5 = -15, shift 2: -3.75 -> truncation gives -4, nearest gives -4 (rem 1/4).
        assert_eq!(
            product(-3, 5, cfg(2, Rounding::Truncate, Overflow::Wrap), &mut c),
            -4
        );
        assert_eq!(
            product(-3, 5, cfg(2, Rounding::NearestEven, Overflow::Wrap), &mut c),
            -4
        );
        // 3 x 1 = 3, shift 1: 1.5 -> ties to even 2; 5 x 1, shift 1: 2.5 -> 2; 7: 3.5 -> 4.
        let n = cfg(1, Rounding::NearestEven, Overflow::Wrap);
        assert_eq!(product(3, 1, n, &mut c), 2);
        assert_eq!(product(5, 1, n, &mut c), 2);
        assert_eq!(product(7, 1, n, &mut c), 4);
        assert_eq!(product(-5, 1, n, &mut c), -2);
        assert_eq!(c, MacCounters::default());
        // 0x4000 x 0x4000 = 2^28; shift 0 keeps bits [15:0] = 0 (wrapped), shift 16 keeps 2^12.
        assert_eq!(
            product(
                0x4000,
                0x4000,
                cfg(0, Rounding::Truncate, Overflow::Wrap),
                &mut c
            ),
            0
        );
        assert_eq!(c.product_overflows, 1);
        assert_eq!(
            product(
                0x4000,
                0x4000,
                cfg(16, Rounding::Truncate, Overflow::Wrap),
                &mut c
            ),
            0x1000
        );
        assert_eq!(
            product(
                0x4000,
                0x4000,
                cfg(0, Rounding::Truncate, Overflow::Saturate),
                &mut c
            ),
            i16::MAX
        );
        assert_eq!(c.product_overflows, 2);
        // (-2^15)^2 = 2^30 at shift 16 is 2^14: fits.
        assert_eq!(
            product(
                i16::MIN,
                i16::MIN,
                cfg(16, Rounding::Truncate, Overflow::Wrap),
                &mut c
            ),
            0x4000
        );
    }

    #[test]
    fn accumulator_wraps_or_saturates_and_counts() {
        let mut c = MacCounters::default();
        let w = cfg(0, Rounding::Truncate, Overflow::Wrap);
        let s = cfg(0, Rounding::Truncate, Overflow::Saturate);
        assert_eq!(add(i16::MAX, 1, w, &mut c), i16::MIN);
        assert_eq!(add(i16::MAX, 1, s, &mut c), i16::MAX);
        assert_eq!(add(i16::MIN, -1, s, &mut c), i16::MIN);
        assert_eq!(c.sum_overflows, 3);
        assert_eq!(mac(100, 3, 4, w, &mut c), 112);
        assert_eq!(c.sum_overflows, 3);
    }

    #[test]
    fn shifts_past_the_product_are_refused() {
        assert!(MacConfig::new(16, Rounding::Truncate, Overflow::Wrap).is_ok());
        let e = MacConfig::new(17, Rounding::Truncate, Overflow::Wrap).unwrap_err();
        assert!(e.to_string().contains("17 is outside 0..=16"));
    }
}
