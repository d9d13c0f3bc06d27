//! Dropping a `FakeHub` leaves nothing running. Alone in its test binary so that no other test's
//! fake can be mistaken for a leak.

mod common;

use common::*;

/// Names of this process's threads.
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_the_hub_joins_its_thread_and_closes_connections() {
    let before = thread_names().len();
    for _ in 0..3 {
        let hub = hub();
        let client = Client::new(&hub);
        // An open keep-alive connection must not keep the server alive.
        client.login(ALICE, ALICE_PASSWORD);
        assert!(thread_names().iter().any(|name| name == "fakehub"));
        drop(hub);
        assert!(gone_soon(|| !thread_names()
            .iter()
            .any(|name| name == "fakehub")));
    }
    assert!(gone_soon(|| thread_names().len() == before));
}

/// The kernel wakes a joiner as the thread exits (CLONE_CHILD_CLEARTID), a moment before the
/// thread leaves `/proc/self/task`: a joined thread may be listed for a few milliseconds.
#[cfg(target_os = "linux")]
fn gone_soon(check: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !check() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}
