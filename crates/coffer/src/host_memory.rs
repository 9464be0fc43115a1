//! How much memory this server may use, for defaults sized to the machine: the host's memory,
//! or less where the server's cgroup (v1 or v2) limits it, as a container's usually does.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The most memory the server may use, and what sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCeiling {
    pub bytes: u64,
    pub set_by: Limiter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    /// `MemTotal` in `/proc/meminfo`.
    Host,
    /// The server's memory cgroup, or one of its ancestors.
    Cgroup,
}

impl fmt::Display for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limiter::Host => "the host's memory",
            Limiter::Cgroup => "the server's cgroup limit",
        })
    }
}

/// This process's ceiling; `None` where `/proc/meminfo` cannot be read (not Linux).
pub fn ceiling() -> Option<MemoryCeiling> {
    let host = mem_total(&fs::read_to_string("/proc/meminfo").ok()?)?;
    let cgroup = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .zip(fs::read_to_string("/proc/self/cgroup").ok())
        .and_then(|(mounts, cgroups)| {
            memory_cgroups(&mounts, &cgroups)
                .iter()
                .filter_map(MemoryCgroup::limit)
                .min()
        });
    Some(match cgroup {
        Some(bytes) if bytes < host => MemoryCeiling {
            bytes,
            set_by: Limiter::Cgroup,
        },
        _ => MemoryCeiling {
            bytes: host,
            set_by: Limiter::Host,
        },
    })
}

/// `MemTotal` from `/proc/meminfo`'s text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then(|| kib.saturating_mul(1024))
}

/// The directory of this process's memory cgroup, in one hierarchy's mount.
#[derive(Debug, PartialEq, Eq)]
enum MemoryCgroup {
    /// cgroup v1: `memory.stat`'s `hierarchical_memory_limit` already folds in the ancestors.
    V1(PathBuf),
    /// cgroup v2: the ancestors' `memory.max` up to the mount count too.
    V2 { dir: PathBuf, mount: PathBuf },
}

impl MemoryCgroup {
    fn limit(&self) -> Option<u64> {
        match self {
            MemoryCgroup::V1(dir) => fs::read_to_string(dir.join("memory.stat"))
                .ok()
                .and_then(|stat| {
                    stat.lines()
                        .find_map(|l| l.strip_prefix("hierarchical_memory_limit "))
                        .and_then(|v| v.trim().parse().ok())
                })
                .or_else(|| read_limit(&dir.join("memory.limit_in_bytes"))),
            MemoryCgroup::V2 { dir, mount } => dir
                .ancestors()
                .take_while(|d| d.starts_with(mount))
                .filter_map(|d| read_limit(&d.join("memory.max")))
                .min(),
        }
    }
}

/// A limit file's number; `max` (v2) or an unreadable file is no limit. v1's "unlimited" is a
/// huge number, which the host's memory then undercuts.
fn read_limit(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Where this process's memory cgroups are, from `/proc/self/mountinfo` and
/// `/proc/self/cgroup`. A cgroup path is relative to the cgroup namespace's root, as is a
/// mount's root field, so the directory is the mount point joined with what the path adds to
/// the mount's root (a container sees its own cgroup mounted as `/`).
fn memory_cgroups(mountinfo: &str, cgroups: &str) -> Vec<MemoryCgroup> {
    let mut found = Vec::new();
    for mount in mountinfo.lines() {
        // "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory"
        let Some((fields, tail)) = mount.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = fields.split(' ').collect();
        let tail: Vec<&str> = tail.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (fields.get(3), fields.get(4), tail.first())
        else {
            continue;
        };
        let v1_memory = *fstype == "cgroup"
            && tail
                .get(2)
                .is_some_and(|opts| opts.split(',').any(|o| o == "memory"));
        if !(v1_memory || *fstype == "cgroup2") {
            continue;
        }
        // "4:memory:/docker/abc" (v1) or "0::/user.slice" (v2).
        let path = cgroups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if v1_memory {
                controllers.split(',').any(|c| c == "memory")
            } else {
                id == "0" && controllers.is_empty()
            };
            wanted.then_some(path)
        });
        let Some(relative) = path.and_then(|p| below(p, root)) else {
            continue;
        };
        let mount = PathBuf::from(point);
        let dir = mount.join(relative);
        found.push(if v1_memory {
            MemoryCgroup::V1(dir)
        } else {
            MemoryCgroup::V2 { dir, mount }
        });
    }
    found
}

/// What `path` adds below `root` (both absolute cgroup paths), without its leading `/`;
/// `None` when the path is not under the mount's root.
fn below<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(root.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_kib() {
        let meminfo = "MemTotal:       24683520 kB\nMemFree:        22204012 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_683_520 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    #[test]
    fn finds_a_v1_memory_cgroup_and_a_v2_one() {
        let mountinfo = "\
25 30 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
27 25 0:25 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
30 25 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 25 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let cgroups = "1:cpu:/\n4:memory:/process_api/617c\n0::/\n";
        assert_eq!(
            memory_cgroups(mountinfo, cgroups),
            [
                MemoryCgroup::V1("/sys/fs/cgroup/memory/process_api/617c".into()),
                MemoryCgroup::V2 {
                    dir: "/sys/fs/cgroup/unified".into(),
                    mount: "/sys/fs/cgroup/unified".into()
                },
            ]
        );
    }

    #[test]
    fn a_container_sees_its_own_cgroup_as_the_mount_root() {
        // Docker on cgroup v2 with a private cgroup namespace, and without one.
        let mountinfo = "700 690 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";
        assert_eq!(
            memory_cgroups(mountinfo, "0::/\n"),
            [MemoryCgroup::V2 {
                dir: "/sys/fs/cgroup".into(),
                mount: "/sys/fs/cgroup".into()
            }]
        );
        let mountinfo = "700 690 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";
        assert_eq!(
            memory_cgroups(mountinfo, "0::/docker/abc/worker\n"),
            [MemoryCgroup::V2 {
                dir: "/sys/fs/cgroup/worker".into(),
                mount: "/sys/fs/cgroup".into()
            }]
        );
        // A path outside the mount's root is not this mount's to read.
        assert_eq!(memory_cgroups(mountinfo, "0::/docker/abcdef\n"), []);
    }

    #[test]
    fn v2_limits_are_the_smallest_up_to_the_mount() {
        let mount = tempfile::tempdir().expect("temp dir");
        let dir = mount.path().join("outer/inner");
        fs::create_dir_all(&dir).expect("cgroup dirs");
        fs::write(dir.join("memory.max"), "max\n").expect("inner limit");
        fs::write(mount.path().join("outer/memory.max"), "536870912\n").expect("outer limit");
        // Above the mount: not this hierarchy's, never read.
        let cgroup = MemoryCgroup::V2 {
            dir: dir.clone(),
            mount: mount.path().join("outer"),
        };
        assert_eq!(cgroup.limit(), Some(512 << 20));
        fs::write(dir.join("memory.max"), "268435456\n").expect("inner limit");
        assert_eq!(cgroup.limit(), Some(256 << 20));
        let unlimited = MemoryCgroup::V2 {
            dir: dir.clone(),
            mount: dir,
        };
        fs::write(mount.path().join("outer/inner/memory.max"), "max\n").expect("inner limit");
        assert_eq!(unlimited.limit(), None);
    }

    #[test]
    fn v1_limits_come_from_the_hierarchy() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(
            dir.path().join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .expect("own limit");
        let cgroup = MemoryCgroup::V1(dir.path().to_owned());
        assert_eq!(cgroup.limit(), Some(9_223_372_036_854_771_712));
        fs::write(
            dir.path().join("memory.stat"),
            "cache 0\nhierarchical_memory_limit 1073741824\ntotal_cache 0\n",
        )
        .expect("stat");
        assert_eq!(cgroup.limit(), Some(1 << 30));
    }

    #[test]
    fn this_host_has_a_ceiling() {
        let ceiling = ceiling().expect("Linux has /proc/meminfo");
        assert!(ceiling.bytes > 16 << 20, "{ceiling:?}");
    }
}
