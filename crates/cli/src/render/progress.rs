//! Progress rendering: a bar on a terminal, JSON lines elsewhere, or nothing.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use lanceflow::progress::{NoProgress, Progress, ProgressEvent};

/// Choose a renderer for stderr.
pub fn progress_for(quiet: bool) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if quiet {
        Box::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(BarProgress::default())
    } else {
        Box::new(JsonLinesProgress)
    }
}

/// One JSON object per event on stderr (for pipes, CI and Ray workers).
pub struct JsonLinesProgress;

impl Progress for JsonLinesProgress {
    fn report(&self, event: ProgressEvent) {
        if let Ok(line) = serde_json::to_string(&event) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }
}

/// A progress bar per stage on a terminal.
#[derive(Default)]
pub struct BarProgress {
    bars: Mutex<HashMap<String, (ProgressBar, u64)>>,
}

impl Progress for BarProgress {
    fn report(&self, event: ProgressEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            ProgressEvent::StageStarted { stage, total, unit } => {
                let bar = match total {
                    Some(n) => ProgressBar::new(n),
                    None => ProgressBar::new_spinner(),
                };
                let style = ProgressStyle::with_template(&format!(
                    "{{spinner}} {stage:<8} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{elapsed}})"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                bars.insert(stage, (bar, 0));
            }
            ProgressEvent::TaskFinished {
                stage, ok, rows, ..
            } => {
                if let Some((bar, total_rows)) = bars.get_mut(&stage) {
                    *total_rows += rows.unwrap_or(0);
                    bar.inc(1);
                    let failed = if ok { "" } else { " (a task failed)" };
                    bar.set_message(format!("{} rows{failed}", total_rows));
                }
            }
            ProgressEvent::TaskRetried {
                stage,
                task,
                attempt,
                reason,
            } => {
                if let Some((bar, _)) = bars.get(&stage) {
                    bar.println(format!(
                        "retrying task {task} (attempt {attempt}): {reason}"
                    ));
                }
            }
            ProgressEvent::Message { stage, text } => match bars.get(&stage) {
                Some((bar, _)) => bar.println(text),
                None => eprintln!("{text}"),
            },
            ProgressEvent::StageFinished { stage, .. } => {
                if let Some((bar, _)) = bars.remove(&stage) {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
