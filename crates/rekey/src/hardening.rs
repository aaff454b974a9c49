//! What the process does to keep secrets in its memory from leaving it.

/// No core dump, and no `ptrace` or `/proc/PID/mem` by other processes of the same user:
/// minted values live in this process's memory for the length of a run, and a crash (a real
/// one, or a crash test's abort) must not write them to disk. Best effort: a platform that
/// refuses is no reason not to run.
pub(crate) fn protect_memory() {
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, none) {
        tracing::debug!(error = %e, "cannot turn core dumps off");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::debug!(error = %e, "cannot mark the process not dumpable");
    }
}
