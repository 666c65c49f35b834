//! Where a layer's report goes. One layer at a time, straight to the terminal as it is made;
//! with layers running side by side (`rowsim run --net ... --jobs N`), each layer's report is
//! held until every layer before it has printed its own, so that stdout and stderr read the same
//! whatever the number of jobs (only the lines announcing a start, and the progress bars, show
//! as they happen).

use indicatif::MultiProgress;

/// The terminal, shared by the layers running side by side: their progress bars, one line
/// each, and the lines printed above them.
#[derive(Default)]
pub struct Console {
    multi: Option<MultiProgress>,
}

impl Console {
    /// With `bars`, progress bars may show (one line per running layer).
    pub fn new(bars: bool) -> Self {
        Console {
            multi: bars.then(MultiProgress::new),
        }
    }

    /// The bars' owner, if bars may show.
    pub fn multi(&self) -> Option<&MultiProgress> {
        self.multi.as_ref()
    }

    /// Runs `f` (which prints) with the bars out of the way.
    fn printing(&self, f: impl FnOnce()) {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }

    /// A line on stderr now.
    pub fn now(&self, line: &str) {
        self.printing(|| eprintln!("{line}"));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A layer's report: printed as it is written, or held and printed whole by [`Log::flush`].
#[derive(Default)]
pub struct Log {
    held: Option<Vec<(Stream, String)>>,
}

impl Log {
    /// A report printed as it is written.
    pub fn direct() -> Self {
        Log { held: None }
    }

    /// A report held until [`Log::flush`].
    pub fn held() -> Self {
        Log {
            held: Some(Vec::new()),
        }
    }

    /// Whether the report is held (layers side by side).
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    fn put(&mut self, to: Stream, text: String) {
        match &mut self.held {
            Some(v) => v.push((to, text)),
            None if to == Stream::Out => print!("{text}"),
            None => eprint!("{text}"),
        }
    }

    /// A line announcing what starts: on stderr now when the report is held (so that what
    /// runs shows as it starts), else in its place.
    pub fn start(&mut self, console: &Console, line: &str) {
        if self.is_held() {
            console.now(line);
        } else {
            self.err(line);
        }
    }

    /// Text for stdout (the report itself).
    pub fn out(&mut self, text: impl Into<String>) {
        self.put(Stream::Out, text.into());
    }

    /// A line for stderr (progress, the host's figures, errors).
    pub fn err(&mut self, line: impl AsRef<str>) {
        self.put(Stream::Err, format!("{}\n", line.as_ref()));
    }

    /// Prints what was held, in the order it was written.
    pub fn flush(self, console: &Console) {
        let Some(held) = self.held else {
            return;
        };
        console.printing(|| {
            for (to, text) in held {
                match to {
                    Stream::Out => print!("{text}"),
                    Stream::Err => eprint!("{text}"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_report_keeps_its_order_and_streams() {
        let mut log = Log::held();
        log.err("running a");
        log.out("summary\n");
        log.err("host: b");
        let held = log.held.as_ref().unwrap();
        assert_eq!(
            held,
            &vec![
                (Stream::Err, "running a\n".to_string()),
                (Stream::Out, "summary\n".to_string()),
                (Stream::Err, "host: b\n".to_string()),
            ]
        );
    }
}
