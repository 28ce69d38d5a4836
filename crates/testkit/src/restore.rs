//! Running the `gavel` command line from tests: one command to its end (`gavel`), a
//! `gavel cluster up` kept running until dropped (`UpProcess`), and free port bases for a
//! local cluster definition.

use std::process::{Child, Command, Output};

/// Runs `gavel` with `arguments` to its end, without the admin token of the environment.
pub fn gavel(arguments: &[&str]) -> Output {
    Command::new(crate::gavel_binary())
        .args(arguments)
        .env_remove("GAVEL_ADMIN_TOKEN")
        .output()
        .expect("run gavel")
}

/// A cluster run by `gavel cluster up`; stopped (with its nodes) on drop.
pub struct UpProcess(pub Child);

impl Drop for UpProcess {
    fn drop(&mut self) {
        // SAFETY: a signal to the child this test started.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// Three port bases whose ports base+1..=base+count are all free, for a local cluster
/// definition, looked for among 50 bases 10 apart from `from` (below the ephemeral range
/// and away from `free_port`'s; each test file takes a range of its own).
pub fn free_port_bases(count: u16, from: u16) -> (u16, u16, u16) {
    let free = |base: u16| {
        (1..=count).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok())
    };
    let seed = (std::process::id() as u64 ^ super::now_ms()) % 50;
    let bases: Vec<u16> = (0..50u64)
        .map(|step| from + (((seed + step * 7) % 50) as u16) * 10)
        .filter(|base| free(*base))
        .take(3)
        .collect();
    assert_eq!(bases.len(), 3, "no free port bases from {from}");
    (bases[0], bases[1], bases[2])
}

/// Writes a local cluster definition of three voters on the port bases `(public, control,
/// peer)` (from `free_port_bases`) to `path`, for `gavel cluster restore|up --definition`.
pub fn write_definition(path: &std::path::Path, (public, control, peer): (u16, u16, u16)) {
    std::fs::write(
        path,
        format!(
            "voters = 3\nstandbys = 0\ndata_dir = \"unused\"\npublic_port_base = {public}\ncontrol_port_base = {control}\npeer_port_base = {peer}\n"
        ),
    )
    .expect("write the cluster definition");
}
