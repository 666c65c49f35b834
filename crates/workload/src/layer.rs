//! CONV layer shapes and the built-in networks.
//!
//! Symbols (the papers' letters): N batch, C input channels, H x W input (before padding),
//! M filters, R x S filter, U stride (vertical `stride_v`, horizontal `stride_h`), E x F
//! output, G groups. A grouped layer (AlexNet CONV2/4/5) convolves each group of `C/G`
//! channels with its own `M/G` filters.

use std::fmt;

use serde::{Deserialize, Serialize};

fn one() -> u32 {
    1
}

fn half() -> f64 {
    0.5
}

/// One CONV layer. In a layer file, `n` and `groups` default to 1, `pad` to 0,
/// The largest value of any layer dimension (N, C, H, W, M, R, S, strides, groups, padding) and
/// of the padded input: 2^24, far beyond any real layer, small enough that no product of two
/// overflows 64 bits.
pub const MAX_DIM: u32 = 1 << 24;

/// The most values any one tensor of a layer may hold: 2^31 16-bit words, 4 GiB.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 31;

/// `ifmap_zero_fraction` to 0.5 and `first` to false.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvLayer {
    /// `alexnet:conv1`, `vgg16:conv4_2`, or a user's name.
    pub name: String,
    /// Batch N.
    #[serde(default = "one")]
    pub n: u32,
    /// Input channels C (all groups).
    pub c: u32,
    /// Input height H and width W, before padding.
    pub h: u32,
    pub w: u32,
    /// Filters M (all groups).
    pub m: u32,
    /// Filter height R and width S.
    pub r: u32,
    pub s: u32,
    /// Vertical and horizontal stride U.
    pub stride_v: u32,
    pub stride_h: u32,
    /// Zero padding on every side.
    #[serde(default)]
    pub pad: u32,
    /// Groups G.
    #[serde(default = "one")]
    pub groups: u32,
    /// Fraction of zeros in synthetic ifmaps of this layer (measured on AlexNet; 0.5 otherwise).
    #[serde(default = "half")]
    pub ifmap_zero_fraction: f64,
    /// Whether this is a network's first layer (its input is not run-length coded in DRAM, and
    /// its synthetic input is signed, like a mean-subtracted image).
    #[serde(default)]
    pub first: bool,
}

/// `s` with each control character (a newline, an escape that would recolour a terminal)
/// written as its Rust escape (`\n`, `\u{1b}`): a name from an input file as it may be printed.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A layer shape that makes no sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("layer `{}`: {field} {why}", printable(layer))]
pub struct ShapeError {
    pub layer: String,
    pub field: &'static str,
    pub why: String,
}

impl ConvLayer {
    /// Padded input height and width.
    /// Padded height (saturating: [`ConvLayer::validate`] refuses a layer where it would not
    /// fit, so a valid layer never saturates).
    pub fn hp(&self) -> u32 {
        self.h.saturating_add(self.pad.saturating_mul(2))
    }
    pub fn wp(&self) -> u32 {
        self.w.saturating_add(self.pad.saturating_mul(2))
    }
    /// Output height E (0 for a filter taller than the padded input, which `validate` refuses).
    pub fn e(&self) -> u32 {
        match self.hp().checked_sub(self.r) {
            Some(d) => d / self.stride_v.max(1) + 1,
            None => 0,
        }
    }
    /// Output width F.
    pub fn f(&self) -> u32 {
        match self.wp().checked_sub(self.s) {
            Some(d) => d / self.stride_h.max(1) + 1,
            None => 0,
        }
    }
    /// Channels per group.
    pub fn cg(&self) -> u32 {
        self.c / self.groups
    }
    /// Filters per group.
    pub fn mg(&self) -> u32 {
        self.m / self.groups
    }
    /// MACs of the whole layer (all groups, the whole batch).
    pub fn macs(&self) -> u64 {
        self.n as u64
            * self.m as u64
            * self.cg() as u64
            * self.e() as u64
            * self.f() as u64
            * self.r as u64
            * self.s as u64
    }

    /// Whether this is a fully connected layer: a CONV layer whose filter covers its whole
    /// (padded) input, one output value per filter and image (`R = H + 2*pad`, `S = W + 2*pad`,
    /// `E = F = 1`). The batch gives the weights their only reuse.
    pub fn is_fc(&self) -> bool {
        self.r == self.hp() && self.s == self.wp() && self.e() == 1 && self.f() == 1
    }

    /// Checks the shape is a convolution at all (not whether a machine supports it).
    pub fn validate(&self) -> Result<(), ShapeError> {
        let err = |field, why: String| {
            Err(ShapeError {
                layer: self.name.clone(),
                field,
                why,
            })
        };
        // The name is printed and becomes part of file names: never empty, no control
        // characters.
        if self.name.is_empty() {
            return err("name", "is empty: a layer needs a name".into());
        }
        if self.name.chars().any(char::is_control) {
            return err(
                "name",
                "has a control character (shown escaped): names are printed and become file names"
                    .into(),
            );
        }
        // Sizes first, before any arithmetic on them: every dimension from its least (1; 0 for
        // padding) to MAX_DIM.
        for (field, v, least) in [
            ("N", self.n, 1),
            ("C", self.c, 1),
            ("H", self.h, 1),
            ("W", self.w, 1),
            ("M", self.m, 1),
            ("R", self.r, 1),
            ("S", self.s, 1),
            ("stride_v", self.stride_v, 1),
            ("stride_h", self.stride_h, 1),
            ("groups", self.groups, 1),
            ("pad", self.pad, 0),
        ] {
            if v > MAX_DIM {
                return err(field, format!("{v} is above the limit {MAX_DIM}"));
            }
            if v < least {
                return err(field, "must be at least 1".into());
            }
        }
        for (field, padded) in [
            ("H + 2*pad", self.h as u64 + 2 * self.pad as u64),
            ("W + 2*pad", self.w as u64 + 2 * self.pad as u64),
        ] {
            if padded > MAX_DIM as u64 {
                return err(field, format!("{padded} is above the limit {MAX_DIM}"));
            }
        }
        if !self.c.is_multiple_of(self.groups) || !self.m.is_multiple_of(self.groups) {
            return err(
                "groups",
                format!(
                    "{} must divide C ({}) and M ({})",
                    self.groups, self.c, self.m
                ),
            );
        }
        if self.r > self.hp() || self.s > self.wp() {
            return err(
                "R/S",
                format!(
                    "{}x{} is larger than the padded input {}x{}",
                    self.r,
                    self.s,
                    self.hp(),
                    self.wp()
                ),
            );
        }
        // Every tensor of the layer must be one the host can hold: checked in u64, so a huge
        // batch or input is refused here, before anything is allocated.
        // (Saturating: four factors of up to 2^24 can pass 2^64; saturated is still refused.)
        let prod = |f: [u32; 4]| f.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64));
        let cg = self.c / self.groups;
        for (field, expr, elems) in [
            ("ifmap", "N*C*H*W", prod([self.n, self.c, self.h, self.w])),
            ("weights", "M*C/G*R*S", prod([self.m, cg, self.r, self.s])),
            (
                "ofmap",
                "N*M*E*F",
                prod([self.n, self.m, self.e(), self.f()]),
            ),
        ] {
            if elems > MAX_TENSOR_ELEMENTS {
                return err(
                    field,
                    format!("{expr} = {elems} values is above the limit {MAX_TENSOR_ELEMENTS}"),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.ifmap_zero_fraction) {
            return err(
                "ifmap_zero_fraction",
                format!("{} is outside 0..=1", self.ifmap_zero_fraction),
            );
        }
        Ok(())
    }

    /// The same layer with batch `n` (checked by [`ConvLayer::validate`]).
    pub fn with_batch(mut self, n: u32) -> Self {
        self.n = n;
        self
    }
}

impl fmt::Display for ConvLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: N={} C={} H={} W={} M={} R={} S={} U={}x{} pad={} G={} -> E={} F={}",
            printable(&self.name),
            self.n,
            self.c,
            self.h,
            self.w,
            self.m,
            self.r,
            self.s,
            self.stride_v,
            self.stride_h,
            self.pad,
            self.groups,
            self.e(),
            self.f()
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    net: &str,
    name: &str,
    c: u32,
    hw: u32,
    m: u32,
    rs: u32,
    u: u32,
    pad: u32,
    groups: u32,
    zeros: f64,
    first: bool,
) -> ConvLayer {
    ConvLayer {
        name: format!("{net}:{name}"),
        n: 1,
        c,
        h: hw,
        w: hw,
        m,
        r: rs,
        s: rs,
        stride_v: u,
        stride_h: u,
        pad,
        groups,
        ifmap_zero_fraction: zeros,
        first,
    }
}

/// AlexNet's CONV layers in the original grouped form, with the zero fractions measured on
/// Eyeriss. CONV1's 227 x 227 input already includes its padding.
pub fn alexnet() -> Vec<ConvLayer> {
    vec![
        conv("alexnet", "conv1", 3, 227, 96, 11, 4, 0, 1, 0.0001, true),
        conv("alexnet", "conv2", 96, 27, 256, 5, 1, 2, 2, 0.387, false),
        conv("alexnet", "conv3", 256, 13, 384, 3, 1, 1, 1, 0.725, false),
        conv("alexnet", "conv4", 384, 13, 384, 3, 1, 1, 2, 0.793, false),
        conv("alexnet", "conv5", 384, 13, 256, 3, 1, 1, 2, 0.776, false),
    ]
}

/// An FC layer as the Eyeriss papers map it: a CONV layer whose `R x S` filter covers its
/// `C x H x W` input (`E = F = 1`). Its ifmap zero fraction is not measured: 0.5, as for any
/// layer without a measurement.
pub(crate) fn fc(net: &str, name: &str, c: u32, hw: u32, m: u32) -> ConvLayer {
    conv(net, name, c, hw, m, hw, 1, 0, 1, 0.5, false)
}

/// AlexNet's FC layers: FC6 over CONV5's pooled 256 x 6 x 6 output, FC7 and FC8 over 4096
/// values.
pub fn alexnet_fc() -> Vec<ConvLayer> {
    vec![
        fc("alexnet", "fc6", 256, 6, 4096),
        fc("alexnet", "fc7", 4096, 1, 4096),
        fc("alexnet", "fc8", 4096, 1, 1000),
    ]
}

/// VGG-16's FC layers: FC6 over the pooled 512 x 7 x 7 output of CONV5_3, FC7 and FC8.
pub fn vgg16_fc() -> Vec<ConvLayer> {
    vec![
        fc("vgg16", "fc6", 512, 7, 4096),
        fc("vgg16", "fc7", 4096, 1, 4096),
        fc("vgg16", "fc8", 4096, 1, 1000),
    ]
}

/// VGG-16's 13 CONV layers: 224 x 224 input, 3 x 3 filters, padding 1, stride 1.
pub fn vgg16() -> Vec<ConvLayer> {
    let spec: [(&str, u32, u32, u32); 13] = [
        ("conv1_1", 3, 224, 64),
        ("conv1_2", 64, 224, 64),
        ("conv2_1", 64, 112, 128),
        ("conv2_2", 128, 112, 128),
        ("conv3_1", 128, 56, 256),
        ("conv3_2", 256, 56, 256),
        ("conv3_3", 256, 56, 256),
        ("conv4_1", 256, 28, 512),
        ("conv4_2", 512, 28, 512),
        ("conv4_3", 512, 28, 512),
        ("conv5_1", 512, 14, 512),
        ("conv5_2", 512, 14, 512),
        ("conv5_3", 512, 14, 512),
    ];
    spec.iter()
        .enumerate()
        .map(|(i, &(name, c, hw, m))| {
            conv(
                "vgg16",
                name,
                c,
                hw,
                m,
                3,
                1,
                1,
                1,
                if i == 0 { 0.0 } else { 0.5 },
                i == 0,
            )
        })
        .collect()
}

/// The names of the built-in networks.
pub const NETWORKS: [&str; 2] = ["alexnet", "vgg16"];

/// A built-in network by name: its CONV layers, then its FC layers.
pub fn network(name: &str) -> Result<Vec<ConvLayer>, String> {
    match name {
        "alexnet" => Ok(alexnet().into_iter().chain(alexnet_fc()).collect()),
        "vgg16" => Ok(vgg16().into_iter().chain(vgg16_fc()).collect()),
        _ => Err(format!(
            "unknown network `{name}`; built in: {}",
            NETWORKS.join(", ")
        )),
    }
}

/// A built-in layer, `network:layer` (`alexnet:conv3`, `vgg16:conv4_2`).
pub fn layer(spec: &str) -> Result<ConvLayer, String> {
    let (net, name) = spec
        .split_once(':')
        .ok_or_else(|| format!("layer `{spec}`: expected NETWORK:LAYER, e.g. alexnet:conv1"))?;
    let layers = network(net)?;
    let names: Vec<String> = layers
        .iter()
        .map(|l| l.name.split(':').nth(1).unwrap_or("").to_string())
        .collect();
    layers.into_iter().find(|l| l.name == spec).ok_or_else(|| {
        format!(
            "network `{net}` has no layer `{name}`; it has: {}",
            names.join(", ")
        )
    })
}
