//! The progress bar of long runs: on stderr, only when stderr is a terminal, only once a run has
//! taken more than a second, and never with `--quiet`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rowsim_chip::{Progress, ProgressHook};

/// A bar for one layer's run, counting passes, showing core cycles and an ETA.
pub struct Bar {
    label: String,
    start: Instant,
    bar: Mutex<Option<ProgressBar>>,
    /// Where the bar goes when several layers run side by side (one line each).
    multi: Option<MultiProgress>,
}

impl Bar {
    /// A hook for `RunOptions::progress`, or `None` when no bar should show; with `multi`, the
    /// bar is one line of several (layers running side by side).
    pub fn hook(
        label: &str,
        quiet: bool,
        multi: Option<&MultiProgress>,
    ) -> (Option<ProgressHook>, Option<Arc<Bar>>) {
        if quiet || !std::io::stderr().is_terminal() {
            return (None, None);
        }
        let bar = Arc::new(Bar {
            label: label.to_string(),
            start: Instant::now(),
            bar: Mutex::new(None),
            multi: multi.cloned(),
        });
        let b = bar.clone();
        (
            Some(ProgressHook(Arc::new(move |p: &Progress| b.update(p)))),
            Some(bar),
        )
    }

    fn update(&self, p: &Progress) {
        if self.start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let bar = slot.get_or_insert_with(|| {
            let b = match &self.multi {
                Some(m) => m.add(ProgressBar::new(p.passes.max(1))),
                None => ProgressBar::with_draw_target(
                    Some(p.passes.max(1)),
                    ProgressDrawTarget::stderr_with_hz(4),
                ),
            };
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} passes, {msg} ({elapsed}, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(self.label.clone());
            b
        });
        bar.set_position(p.passes_done);
        bar.set_message(format!("{} core cycles", p.core_cycles));
    }

    /// Removes the bar before the run's report is printed.
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}
