//! Housekeeping that gives way to bidding: encoding a snapshot runs on a thread of its
//! own at a lower scheduling priority (a higher nice value), as a storage engine's
//! compaction threads do. When the CPUs are busy with bids it gets a small share of
//! them and takes longer (the log it will replace grows meanwhile); when they are not,
//! it gets all it wants.

use super::error::StoreError;

/// Runs `work` on a new thread named `name`, at a lower priority, and waits for its
/// answer without blocking the runtime. The work must not hold a lock that the node's
/// other threads wait for: at its priority it may be kept off the CPU for a while.
pub(crate) async fn at_low_priority<T, F>(name: &str, work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            crate::host::lower_this_thread_priority();
            let _ = answer.send(work());
        })
        .map_err(|error| StoreError::Task(format!("cannot start thread {name}: {error}")))?;
    answered
        .await
        .map_err(|_| StoreError::Task(format!("thread {name} ended without an answer")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> libc::c_int {
        // SAFETY: reads this thread's nice value (0 = the caller's thread id on Linux).
        unsafe {
            let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, thread)
        }
    }

    #[tokio::test]
    async fn work_runs_at_a_lower_priority_and_answers() {
        let caller = own_nice();
        let (nice, name) = at_low_priority("gavel-test-low", || {
            let name = std::thread::current().name().map(str::to_string);
            Ok((own_nice(), name))
        })
        .await
        .expect("answer");
        assert_eq!(name.as_deref(), Some("gavel-test-low"));
        assert_eq!(nice, (caller + crate::host::NICE_INCREMENT).min(19));
        assert_eq!(own_nice(), caller, "the caller's priority is unchanged");
    }

    #[tokio::test]
    async fn failed_or_panicking_work_is_an_error() {
        let failed = at_low_priority("gavel-test-fail", || -> Result<(), StoreError> {
            Err(StoreError::Task("no".to_string()))
        })
        .await;
        assert!(matches!(failed, Err(StoreError::Task(reason)) if reason == "no"));
        let panicked = at_low_priority("gavel-test-panic", || -> Result<(), StoreError> {
            panic!("encoding went wrong")
        })
        .await;
        assert!(
            matches!(panicked, Err(StoreError::Task(reason)) if reason.contains("without an answer"))
        );
    }
}
