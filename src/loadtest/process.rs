//! CPU time and memory of a process, from `/proc` (Linux).

use std::time::Duration;

/// Figures of a process at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFigures {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times on Linux.
const TICKS_PER_SECOND: u64 = 100;

/// Reads the process's figures; `None` when it is gone or not on Linux.
pub fn read(pid: u32) -> Option<ProcessFigures> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|line| line.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(ProcessFigures {
        cpu: Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND),
        rss: kib("VmRSS:")? * 1024,
        peak_rss: kib("VmHWM:")? * 1024,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let figures = super::read(std::process::id()).unwrap();
        assert!(figures.rss > 0 && figures.peak_rss >= figures.rss);
    }
}
