//! The plugin ends with the server that started it.
//!
//! A server that exits normally asks its plugins to stop (`GRPCController/Shutdown`, then a
//! kill); one that is killed outright (SIGKILL, OOM killer) cannot, and go-plugin's own
//! servers do nothing about it, so the plugin would run on under init for ever. Here the
//! plugin watches its parent process: Linux's `PR_SET_PDEATHSIG` signals the plugin when the
//! parent dies, and a poll of the parent id covers other systems and the moment before the
//! signal was asked for. The signal only prompts a check of the parent id, because Linux ties
//! it to the thread that started the plugin, and a Go server may start it from a thread
//! that ends while the server lives on.

use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How often the parent id is checked when no signal comes.
const POLL: Duration = Duration::from_secs(1);

/// Returns once the process that started this one is gone (this process was handed to
/// another parent: init or a subreaper).
pub async fn gone() {
    let parent = std::os::unix::process::parent_id();
    // The handler is in place before the kernel is asked for the signal, so that the
    // signal's default action (ending the process) never applies.
    let mut death_signal = signal(SignalKind::user_defined1()).ok();
    #[cfg(target_os = "linux")]
    if death_signal.is_some() {
        // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR1) };
    }
    while std::os::unix::process::parent_id() == parent {
        tokio::select! {
            _ = async {
                match death_signal.as_mut() {
                    Some(s) => { s.recv().await; }
                    None => std::future::pending().await,
                }
            } => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
