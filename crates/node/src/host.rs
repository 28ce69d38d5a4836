//! What a node (or a benchmark) asks of the machine: idle CPUs that poll instead of
//! halting (`[host] cpu_idle_poll`).
//!
//! Linux keeps a CPU-latency request for as long as the file it was written to,
//! `/dev/cpu_dma_latency`, stays open (the kernel's PM QoS interface): a request of 0 µs
//! keeps every idle CPU in its polling state. On a virtual machine whose idle CPUs
//! otherwise halt, each wake-up of a sleeping thread on an idle CPU is a round trip
//! through the hypervisor, tens of microseconds; a bid waits for several of them.

//!
//! Work that gives way to bidding (a snapshot's encoding, the events listener's writing)
//! runs on threads of its own at a higher nice value (`lower_this_thread_priority`).

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The kernel's CPU-latency request file.
pub const CPU_LATENCY_FILE: &str = "/dev/cpu_dma_latency";

/// A CPU-latency request of 0 µs, held until dropped.
#[derive(Debug)]
pub struct IdlePoll {
    _request: File,
}

impl IdlePoll {
    /// Asks for idle CPUs to poll. Fails with the reason when the request file is missing
    /// or not writable (it is root's, mode 0600, unless the machine gives it to a group).
    pub fn request() -> std::io::Result<IdlePoll> {
        IdlePoll::request_at(Path::new(CPU_LATENCY_FILE))
    }

    fn request_at(path: &Path) -> std::io::Result<IdlePoll> {
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        // The request is a native-endian 32-bit count of microseconds.
        file.write_all(&0i32.to_ne_bytes())?;
        Ok(IdlePoll { _request: file })
    }
}

/// How this machine's idle CPUs wait, for benchmark reports: the cpuidle driver and
/// governor, and whether a CPU-latency request is held (`held`).
pub fn idle_policy(held: bool) -> String {
    let read = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| {
                std::fs::read_to_string(format!("/sys/devices/system/cpu/cpuidle/{name}")).ok()
            })
            .map_or_else(|| "unknown".to_string(), |text| text.trim().to_string())
    };
    let request = match held {
        true => "polling (a 0 µs CPU-latency request held)",
        false => "as the governor chooses (no CPU-latency request)",
    };
    format!(
        "idle CPUs {request}, cpuidle driver {}, governor {}",
        read(&["current_driver"]),
        read(&["current_governor", "current_governor_ro"])
    )
}

/// How much less than the node's other threads: a thread at nice 10 gets about a tenth
/// of the CPU time of one at nice 0 when both want to run.
pub const NICE_INCREMENT: libc::c_int = 10;

/// Raises the calling thread's nice value by `NICE_INCREMENT` (Linux keeps one per
/// thread). If the system refuses, the thread runs at the usual priority.
pub fn lower_this_thread_priority() {
    // SAFETY: errno is this thread's; nice only changes this thread's scheduling.
    unsafe {
        *libc::__errno_location() = 0;
        if libc::nice(NICE_INCREMENT) == -1 && *libc::__errno_location() != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot lower a thread's priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_zero_written_to_the_file_and_held_open() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cpu_dma_latency");
        std::fs::write(&path, b"").unwrap();
        let held = IdlePoll::request_at(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), 0i32.to_ne_bytes());
        drop(held);
    }

    #[test]
    fn a_missing_request_file_is_an_error_not_a_panic() {
        let directory = tempfile::tempdir().unwrap();
        let error = IdlePoll::request_at(&directory.path().join("absent")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
