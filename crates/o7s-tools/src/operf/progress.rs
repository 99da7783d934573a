//! One live status line on a terminal, redrawn in place at most a few times a second.
//! Silent when stdout is not a terminal or the output is JSON.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn.
pub const EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    on: bool,
    shown: bool,
    next: Instant,
}

impl Progress {
    /// Live progress when `want` and stdout is a terminal.
    pub fn new(want: bool) -> Progress {
        Progress {
            on: want && std::io::stdout().is_terminal(),
            shown: false,
            next: Instant::now() + EVERY,
        }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Is it time to redraw? (Cheap; call it often.)
    pub fn due(&self, now: Instant) -> bool {
        self.on && now >= self.next
    }

    /// Redraw the line with `text`.
    pub fn show(&mut self, now: Instant, text: &str) {
        if !self.on {
            return;
        }
        self.next = now + EVERY;
        self.shown = true;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{text}");
        let _ = out.flush();
    }

    /// Wipe the line so the summary starts on a clean one.
    pub fn clear(&mut self) {
        if self.shown {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
