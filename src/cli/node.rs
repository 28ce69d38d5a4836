//! `gavel node`: commands on a stopped node's own files, run on its host. `node reset`
//! clears a node whose Raft log is damaged (it refused to start with exit status 65) so
//! that it rejoins its cluster as a standby; see `replication::reset`.

use std::path::PathBuf;

use clap::Subcommand;

use super::Failure;
use gavel::replication::reset::{self, ResetPlan, REJOIN_FILE};

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Move a stopped node's Raft storage and archive aside so it rejoins as a standby.
    /// Without --yes it only says what it would do.
    Reset {
        /// The node's data directory (`node.data_dir` of its configuration).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Do it (without this flag nothing is changed).
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(command: NodeCommand) -> Result<(), Failure> {
    match command {
        NodeCommand::Reset { data_dir, yes } => {
            let plan =
                reset::plan_reset(&data_dir).map_err(|error| Failure::failed(error.to_string()))?;
            print!("{}", describe(&plan, yes));
            if !yes {
                return Ok(());
            }
            reset::reset(&plan).map_err(|error| Failure::failed(error.to_string()))?;
            println!(
                "done: start the node on its configuration; it rejoins as a standby once the leader has caught it up"
            );
            Ok(())
        }
    }
}

/// What a reset does (or would do, without `--yes`).
fn describe(plan: &ResetPlan, yes: bool) -> String {
    let verb = if yes { "moving" } else { "would move" };
    let mut text = String::new();
    for path in &plan.moved {
        text.push_str(&format!(
            "{verb} {} to {}/\n",
            path.display(),
            plan.aside.display()
        ));
    }
    let verb = if yes { "writing" } else { "would write" };
    text.push_str(&format!(
        "{verb} {} (the node rejoins as a standby)\n",
        plan.data_dir.join(REJOIN_FILE).display()
    ));
    if !yes {
        text.push_str("nothing was changed; run again with --yes to reset this node\n");
    }
    text
}
