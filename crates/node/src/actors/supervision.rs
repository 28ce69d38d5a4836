//! What happens when an actor stops unexpectedly (a panic in one of its handlers), by
//! kind of actor:
//!
//! - **Auction actors** are restarted by the Janitor's next sweep (`janitor`): each is
//!   one auction's timer and event fan-out, rebuilt from the applied state.
//! - **PeerLinks** are restarted by the Supervisor within one check interval (its
//!   periodic `watch_peers`), each restart counted and logged.
//! - **The node-wide singletons** (Supervisor, ResourcePool, Janitor, Exchange) stop the
//!   node: `singleton_stopped` resolves, and the node exits with `FATAL_EXIT_CODE` so
//!   that its service manager starts it again. Every other part of the node holds their
//!   addresses (handlers, the peer listener, timers), and the Supervisor holds the Raft
//!   handle and the leader's proposer: a replacement with a new address would leave
//!   them talking to nothing, while Raft went on leading with every write failing,
//!   cluster-wide, as followers forward to it. A process that exits gives up its
//!   leadership at once; another voter leads after one election timeout, and the
//!   restarted node rebuilds every actor from its durable log.
//!
//! `InjectPanic` (fault injection, only on a node whose `[faults]` are enabled) makes any
//! of these actors panic inside a handler, so the policy can be tested with real
//! processes.

use std::time::Duration;

use actix::prelude::*;

/// Fault injection: the actor that receives it panics inside the handler.
pub struct InjectPanic;

impl Message for InjectPanic {
    type Result = ();
}

/// How often the node checks that its singleton actors still run.
const SINGLETON_CHECK: Duration = Duration::from_millis(50);

/// A node-wide actor the node cannot run without, by name.
pub struct Singleton {
    pub name: &'static str,
    alive: Box<dyn Fn() -> bool>,
}

impl Singleton {
    pub fn new<A: Actor>(name: &'static str, address: Addr<A>) -> Singleton {
        Singleton {
            name,
            alive: Box::new(move || address.connected()),
        }
    }
}

/// Resolves with the name of the first singleton that stopped.
pub async fn singleton_stopped(singletons: Vec<Singleton>) -> &'static str {
    loop {
        tokio::time::sleep(SINGLETON_CHECK).await;
        if let Some(stopped) = singletons.iter().find(|singleton| !(singleton.alive)()) {
            return stopped.name;
        }
    }
}

/// The singletons and PeerLinks panic on request like the Auction actors do.
macro_rules! panics_on_request {
    ($($actor:ty => $name:literal),* $(,)?) => {
        $(
            impl Handler<InjectPanic> for $actor {
                type Result = ();

                fn handle(&mut self, _: InjectPanic, _ctx: &mut Self::Context) {
                    panic!("fault injected: the {} actor panics on request", $name);
                }
            }
        )*
    };
}

panics_on_request!(
    super::supervisor::Supervisor => "Supervisor",
    super::resource_pool::ResourcePool => "ResourcePool",
    super::janitor::Janitor => "Janitor",
    super::exchange::Exchange => "Exchange",
    super::peer_link::PeerLink => "PeerLink",
);
