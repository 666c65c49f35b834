//! Layer files: a layer's shape in TOML, optionally with a pinned mapping.
//!
//! ```toml
//! [layer]
//! name = "mynet:conv2"
//! c = 64
//! h = 56
//! w = 56
//! m = 128
//! r = 3
//! s = 3
//! stride_v = 1
//! stride_h = 1
//! pad = 1            # optional, 0
//! n = 4              # optional, 1
//! groups = 1         # optional, 1
//!
//! [mapping]          # optional: pin a mapping instead of searching
//! m = 64
//! n = 4
//! e = 14
//! p = 16
//! q = 4
//! r = 1
//! t = 4
//! ```

use std::path::Path;

use rowsim_workload::ConvLayer;
use serde::Deserialize;

use crate::mapping::Mapping;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    layer: ConvLayer,
    mapping: Option<Mapping>,
}

/// Reads a layer file; errors name the file, the line and column, and the field.
pub fn load(path: &Path) -> Result<(ConvLayer, Option<Mapping>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let f: LayerFile = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                format!(
                    ":{}:{}",
                    before.matches('\n').count() + 1,
                    before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1
                )
            })
            .unwrap_or_default();
        format!("{}{at}: {}", path.display(), e.message().trim())
    })?;
    f.layer
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((f.layer, f.mapping))
}
