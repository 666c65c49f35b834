//! Where a field is in the TOML text: a map from dotted field paths to their spans, built with
//! `toml_edit` (which keeps spans), used to put a line and column on every error.

use std::ops::Range;

use toml_edit::{Document, Item, TableLike};

struct Entry {
    path: String,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

pub(crate) struct Fields {
    entries: Vec<Entry>,
}

fn walk(table: &dyn TableLike, prefix: &str, out: &mut Vec<Entry>) {
    for (k, item) in table.iter() {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        let key = table.get_key_value(k).and_then(|(key, _)| key.span());
        out.push(Entry {
            path: path.clone(),
            key,
            value: item.span(),
        });
        match item {
            Item::Table(t) => walk(t, &path, out),
            Item::Value(v) => {
                if let Some(t) = v.as_inline_table() {
                    walk(t, &path, out)
                }
            }
            _ => {}
        }
    }
}

impl Fields {
    /// `Err` when the text is not TOML at all (the TOML parser's own error says where).
    pub(crate) fn parse(text: &str) -> Result<Fields, ()> {
        let doc = Document::parse(text.to_string()).map_err(|_| ())?;
        let mut entries = Vec::new();
        walk(doc.as_table(), "", &mut entries);
        Ok(Fields { entries })
    }

    /// The span of a field's value (or, failing that, its key; or its closest enclosing table).
    pub(crate) fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                return e.value.clone().or(e.key.clone());
            }
            p = &p[..p.rfind('.')?];
        }
    }

    /// The field at byte `pos`: the deepest entry whose key or value covers it. A "missing
    /// field" message names the field inside that table.
    pub(crate) fn field_at(&self, pos: usize, message: &str) -> String {
        let covers = |r: &Option<Range<usize>>| r.as_ref().is_some_and(|r| r.contains(&pos));
        let mut best: Option<&Entry> = None;
        for e in &self.entries {
            if (covers(&e.key) || covers(&e.value))
                && best.is_none_or(|b| e.path.len() > b.path.len())
            {
                best = Some(e);
            }
        }
        let base = best.map(|e| e.path.clone()).unwrap_or_default();
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some(name) = rest.split('`').next() {
                return if base.is_empty() {
                    name.to_string()
                } else {
                    format!("{base}.{name}")
                };
            }
        }
        base
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
