//! `gavel cluster down --data-dir DIR`: stops the local cluster that `gavel cluster up`
//! runs on DIR, from another terminal (or a script that started `up` in the background).
//!
//! `cluster up` writes its own process id to `DIR/cluster-up.pid` once its nodes are
//! started and removes the file when it exits. `down` checks that the pid still names a
//! `gavel … cluster up` process (a pid is reused once its process is gone: an old file
//! must never stop something else), sends it SIGTERM — the same orderly stop as Ctrl-C:
//! SIGTERM to every node, up to 10 s for them to exit, then SIGKILL — and waits for it to
//! end, reporting the wait. The nodes die with `cluster up` in any case (they are started
//! with a parent-death signal), so nothing is left running.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Failure;

/// The file, in the cluster's directory, holding the pid of its `cluster up` process.
pub const PID_FILE: &str = "cluster-up.pid";
/// How long `down` waits for `cluster up` to stop its nodes (their grace of 10 s, and
/// some) before it kills it.
const WAIT: Duration = Duration::from_secs(15);

/// Records this process as the `cluster up` of `directory`; refuses when another live one
/// is recorded there.
pub fn record_running(directory: &Path) -> Result<PidFile, Failure> {
    let path = directory.join(PID_FILE);
    if let Some(pid) = running_up(&path)? {
        return Err(Failure::failed(format!(
            "a cluster already runs in {} (gavel cluster up, pid {pid}); stop it with `gavel cluster down --data-dir {}`",
            directory.display(),
            directory.display()
        )));
    }
    std::fs::write(&path, format!("{}\n", std::process::id()))
        .map_err(|error| Failure::failed(format!("cannot write {}: {error}", path.display())))?;
    Ok(PidFile(path))
}

/// Removes the pid file when `cluster up` ends.
pub struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `gavel cluster down`: stops the cluster running on `directory`.
pub fn down(directory: &Path) -> Result<(), Failure> {
    let path = directory.join(PID_FILE);
    let Some(pid) = running_up(&path)? else {
        if path.exists() {
            let _ = std::fs::remove_file(&path);
        }
        eprintln!("gavel: no cluster runs in {}", directory.display());
        return Ok(());
    };
    eprintln!(
        "gavel: stopping the cluster in {} (gavel cluster up, pid {pid})",
        directory.display()
    );
    signal(pid, libc::SIGTERM);
    let started = Instant::now();
    let mut reported = 0;
    while alive(pid) {
        let waited = started.elapsed();
        if waited >= WAIT {
            eprintln!(
                "gavel: cluster up (pid {pid}) did not stop within {} s; killing it (its nodes die with it)",
                WAIT.as_secs()
            );
            signal(pid, libc::SIGKILL);
            break;
        }
        if waited.as_secs() > reported {
            reported = waited.as_secs();
            eprintln!("gavel: waiting for the nodes to stop… {reported} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone = wait_gone(pid, Duration::from_secs(5));
    if !gone {
        return Err(Failure::failed(format!(
            "cluster up (pid {pid}) is still running after SIGKILL"
        )));
    }
    let _ = std::fs::remove_file(&path);
    eprintln!("gavel: the cluster in {} is stopped", directory.display());
    Ok(())
}

/// The pid in `path` when it names a live `gavel … cluster up` process; None when the file
/// is missing, or names a process that is gone or is something else. A file that is not a
/// pid is an error (and is left for the operator to look at).
fn running_up(path: &Path) -> Result<Option<i32>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Failure::failed(format!(
                "cannot read {}: {error}",
                path.display()
            )))
        }
    };
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)
        .ok_or_else(|| {
            Failure::unusable(format!(
                "{} does not hold a process id: {:?}",
                path.display(),
                text.chars().take(40).collect::<String>()
            ))
        })?;
    Ok(is_cluster_up(pid).then_some(pid))
}

/// Whether process `pid` is a `gavel … cluster up` (its command line, from /proc).
fn is_cluster_up(pid: i32) -> bool {
    let Ok(command_line) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let parts: Vec<&[u8]> = command_line.split(|byte| *byte == 0).collect();
    let program = parts.first().map(|first| {
        Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(first))
    });
    let named_gavel = program
        .and_then(|program| program.file_name())
        .is_some_and(|name| name.to_string_lossy().starts_with("gavel"));
    let up = parts
        .windows(2)
        .any(|pair| pair[0] == b"cluster" && pair[1] == b"up");
    named_gavel && up
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

fn wait_gone(pid: i32, limit: Duration) -> bool {
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid checked just before to be a `gavel cluster up` process;
    // no memory is involved.
    unsafe { libc::kill(pid, signal) };
}
