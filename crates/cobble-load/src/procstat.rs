//! CPU time and resident memory of processes, read from Linux's /proc (proc(5)).
//!
//! A server's CPU counts its whole process tree: the process itself, its reaped children
//! (`cutime`/`cstime`) and its live descendants, so that a PostgreSQL postmaster's figure
//! includes the backends serving the run.

use std::collections::HashMap;

/// Clock ticks per second of /proc's time fields (USER_HZ, 100 on every Linux ABI).
const TICKS_PER_SEC: u64 = 100;

/// Upper bound on the descendants walked, so a fork bomb cannot stall a sample.
const MAX_DESCENDANTS: usize = 4096;

/// One reading of a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CPU time (user + system) of the process, its reaped children and live descendants, in ms.
    pub cpu_ms: u64,
    /// Resident set size of the process itself (VmRSS), in KiB.
    pub rss_kib: u64,
    /// Processes counted: the process and its live descendants.
    pub processes: usize,
}

/// Fields 4 and 14-17 of /proc/PID/stat: (ppid, utime + stime, cutime + cstime) in ticks.
fn parse_stat(text: &str) -> Option<(u32, u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let ppid = u32::try_from(num(4)?).ok()?;
    Some((ppid, num(14)? + num(15)?, num(16)? + num(17)?))
}

fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// VmRSS from /proc/PID/status, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Reads the tree rooted at `pid`; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let (_, own, reaped) = stat(pid)?;
    let rss = rss_kib(pid).unwrap_or(0);
    // ppid -> children, over every process visible now.
    let mut children: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, t, ct)) = stat(p) {
                children.entry(ppid).or_default().push((p, t + ct));
            }
        }
    }
    let (mut ticks, mut processes) = (own + reaped, 1usize);
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for &(c, t) in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if processes >= MAX_DESCENDANTS {
                break;
            }
            ticks += t;
            processes += 1;
            todo.push(c);
        }
    }
    Some(Sample {
        cpu_ms: ticks * 1000 / TICKS_PER_SEC,
        rss_kib: rss,
        processes,
    })
}

/// CPU time (user + system) of this process so far, in ms.
pub fn self_cpu_ms() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t))
        .map(|(_, t, _)| t * 1000 / TICKS_PER_SEC)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_a_tricky_name() {
        let line = "4242 (po st) gres) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 1 0 \
                    100 1000 50";
        assert_eq!(parse_stat(line), Some((1, 325, 7)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(s.processes >= 1);
        assert!(sample(u32::MAX).is_none());
    }
}
