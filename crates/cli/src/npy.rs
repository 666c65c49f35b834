//! `.npy` files as numpy reads them (`numpy.load(f, allow_pickle=False)`), or refused with the
//! reason numpy would give: every reader of the CLI opens them here.
//!
//! - Object arrays (`|O`, pickled Python objects) are refused: numpy loads them only with
//!   `allow_pickle=True`, and rowsim never runs a pickle.
//! - A header whose shape needs more data than the file holds is refused (numpy: "cannot
//!   reshape array"); bytes after the data are ignored, as numpy ignores them.
//! - Either byte order, and C or Fortran order (the first index fastest), read to the same
//!   row-major values.

use std::path::Path;

use anyhow::{anyhow, bail, Context};

/// A `.npy` file's bytes, checked: its header, and as much data as its shape needs.
pub struct Npy {
    bytes: Vec<u8>,
}

/// The header's `descr` text, read without npyz (which does not parse every dtype numpy writes),
/// for the error of a file npyz cannot open.
fn descr_text(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned();
    let at = head.find("'descr':")? + "'descr':".len();
    let rest = head[at..].trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = rest[1..].find(quote)?;
    Some(rest[1..1 + end].to_string())
}

/// Bytes before the data: magic and version (8), the header length (2 bytes in version 1, 4 in
/// 2 and 3), and the header.
fn data_offset(bytes: &[u8]) -> Option<usize> {
    match bytes.get(6)? {
        1 => Some(10 + u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?]) as usize),
        2 | 3 => {
            let b = bytes.get(8..12)?;
            Some(12 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        _ => None,
    }
}

impl Npy {
    pub fn read(path: &Path) -> anyhow::Result<Npy> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let npy = match npyz::NpyFile::new(&bytes[..]) {
            Ok(n) => n,
            Err(e) => {
                if let Some(d) = descr_text(&bytes).filter(|d| d.contains('O')) {
                    bail!(
                        "{}: dtype '{d}': an array of Python objects, which numpy loads only by unpickling (allow_pickle=True); rowsim reads numbers only",
                        path.display()
                    );
                }
                return Err(anyhow!(e))
                    .with_context(|| format!("{}: not a .npy file", path.display()));
            }
        };
        let count = npy
            .shape()
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| anyhow!("{}: shape {:?} overflows", path.display(), npy.shape()))?;
        let item = npy.dtype().num_bytes().ok_or_else(|| {
            anyhow!(
                "{}: dtype {} is not a number",
                path.display(),
                npy.dtype().descr()
            )
        })? as u64;
        let have = data_offset(&bytes)
            .map(|o| bytes.len().saturating_sub(o) as u64)
            .unwrap_or(0);
        let need = count.saturating_mul(item);
        if have < need {
            bail!(
                "{}: the header's shape {:?} of {} needs {need} bytes of data, and the file holds {have} (numpy: cannot reshape)",
                path.display(),
                npy.shape(),
                npy.dtype().descr()
            );
        }
        Ok(Npy { bytes })
    }

    /// The file, opened (it opened when read).
    pub fn file(&self) -> npyz::NpyFile<&[u8]> {
        npyz::NpyFile::new(&self.bytes[..]).expect("checked when read")
    }

    /// The first `n` values of a float16 file (`<f2`, or `>f2` when `big`), as f32 (exactly:
    /// every half is a float). `read` checked the file holds them.
    pub fn halves(&self, n: usize, big: bool) -> Vec<f32> {
        let at = data_offset(&self.bytes).unwrap_or(self.bytes.len());
        self.bytes[at..]
            .chunks_exact(2)
            .take(n)
            .map(|b| {
                let h = if big {
                    u16::from_be_bytes([b[0], b[1]])
                } else {
                    u16::from_le_bytes([b[0], b[1]])
                };
                half_to_f32(h)
            })
            .collect()
    }
}

/// An IEEE 754 half (1 sign, 5 exponent, 10 fraction bits) as the f32 of the same value.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// `data` in row-major order: as it is for a C-ordered file, rearranged for a Fortran-ordered
/// one (whose first index varies fastest).
pub fn row_major<T: Copy>(data: Vec<T>, shape: &[u64], order: npyz::Order) -> Vec<T> {
    if order == npyz::Order::C || shape.len() < 2 {
        return data;
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..data.len() {
        // Fortran offset of the row-major index `idx`.
        let mut off = 0;
        for k in (0..dims.len()).rev() {
            off = off * dims[k] + idx[k];
        }
        out.push(data[off]);
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fortran order to row-major: element `[i][j][k]` of a 2x3x4 array is at
    /// `i + 2 (j + 3 k)` in the file.
    /// Halves against values numpy prints for them (`np.float16(x).view(np.uint16)`).
    #[test]
    fn halves_are_exact() {
        for (h, v) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8),
            (0x7bff, 65504.0),
            (0x0000, 0.0),
        ] {
            assert_eq!(half_to_f32(h), v, "{h:#06x}");
        }
        assert_eq!(half_to_f32(0x7c00), f32::INFINITY);
        assert!(half_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn fortran_order_is_rearranged_to_row_major() {
        let (a, b, c) = (2, 3, 4);
        let fortran: Vec<u32> = (0..24).collect();
        let rm = row_major(fortran.clone(), &[a, b, c], npyz::Order::Fortran);
        for i in 0..a as usize {
            for j in 0..b as usize {
                for k in 0..c as usize {
                    assert_eq!(rm[(i * 3 + j) * 4 + k], fortran[i + 2 * (j + 3 * k)]);
                }
            }
        }
        assert_eq!(
            row_major(fortran.clone(), &[2, 3, 4], npyz::Order::C),
            fortran
        );
    }
}
