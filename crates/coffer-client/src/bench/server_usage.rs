//! What the server under load uses, read from Linux's `/proc`: its
//! resident memory and its CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `VmRSS` and `VmHWM` of process `pid`, in KiB.
pub(super) fn server_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time of a process, in clock ticks: user and system, all threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    /// The time spent between `self` (earlier) and `later`.
    pub fn until(self, later: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: later.user.saturating_sub(self.user),
            system: later.system.saturating_sub(self.system),
        }
    }
}

/// CPU time of process `pid` so far, over all its threads (fields 14,
/// `utime`, and 15, `stime`, of `/proc/<pid>/stat`).
pub(super) fn server_cpu_ticks(pid: u32) -> Option<CpuTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after its last `)`, at field 3.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let user = fields.nth(14 - 3)?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times: asked of
/// `getconf CLK_TCK` (the crate forbids the `unsafe` a `sysconf` call
/// needs), else Linux's `USER_HZ` of 100, which every mainstream
/// architecture uses.
pub(super) fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// Samples the server's memory every 20 ms until stopped; returns the peak
/// `VmRSS` and the last `VmHWM`, in KiB.
pub(super) fn sample_memory(
    pid: u32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (mut peak, mut hwm) = (0, 0);
        loop {
            if let Some((rss, high)) = server_memory(pid) {
                peak = peak.max(rss);
                hwm = high;
            }
            if stop.load(Ordering::Relaxed) {
                return (peak, hwm);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn memory_of_this_process() {
        let (rss, hwm) = server_memory(std::process::id()).expect("Linux /proc");
        assert!(rss > 0 && hwm > 0);
    }

    #[test]
    fn cpu_time_of_this_process_grows() {
        let before = server_cpu_ticks(std::process::id()).expect("Linux /proc");
        // Half a second of work: at 100 ticks per second, dozens of ticks.
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(500) {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let after = server_cpu_ticks(std::process::id()).expect("Linux /proc");
        let spent = before.until(after);
        assert!(spent.user >= 10, "{before:?} -> {after:?}");
        assert!(clock_ticks_per_second() >= 100);
    }
}
