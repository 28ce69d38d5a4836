//! The control actions the operator audit trail records (`State::operator_audit`):
//! each command an operator gives, and the cluster changes the node records with
//! `Command::RecordOperatorAction`. Serialized as its name, a string, in JSON and in the
//! binary snapshot encoding alike; a name no variant has (a refused record's) is kept as
//! it was given.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum OperatorAction {
    RegisterBidder,
    CreateAuction,
    Qualify,
    Suspend,
    Resume,
    Terminate,
    ChangeIncrement,
    /// Leadership handed to another node.
    Switchover,
    /// A standby added to the cluster.
    NodeAdd,
    /// A standby removed from the cluster.
    NodeRemove,
    /// A migration's cutover to another node.
    Migrate,
    /// A bidder's deposit recorded from a bank receipt.
    RecordDeposit,
    /// The winner of a lapsed sale declared in default.
    DefaultWinner,
    /// A bidder's public key for signed bids registered.
    RegisterBidderKey,
    /// A name none of the above has: what a refused `RecordOperatorAction` asked for.
    Other(String),
}

impl OperatorAction {
    /// Every action with a name of its own.
    pub const NAMED: [OperatorAction; 14] = [
        OperatorAction::RegisterBidder,
        OperatorAction::CreateAuction,
        OperatorAction::Qualify,
        OperatorAction::Suspend,
        OperatorAction::Resume,
        OperatorAction::Terminate,
        OperatorAction::ChangeIncrement,
        OperatorAction::Switchover,
        OperatorAction::NodeAdd,
        OperatorAction::NodeRemove,
        OperatorAction::Migrate,
        OperatorAction::RecordDeposit,
        OperatorAction::DefaultWinner,
        OperatorAction::RegisterBidderKey,
    ];

    /// The action's name in the audit trail (docs/API.md).
    pub fn as_str(&self) -> &str {
        match self {
            OperatorAction::RegisterBidder => "register_bidder",
            OperatorAction::CreateAuction => "create_auction",
            OperatorAction::Qualify => "qualify",
            OperatorAction::Suspend => "suspend",
            OperatorAction::Resume => "resume",
            OperatorAction::Terminate => "terminate",
            OperatorAction::ChangeIncrement => "change_increment",
            OperatorAction::Switchover => "switchover",
            OperatorAction::NodeAdd => "node add",
            OperatorAction::NodeRemove => "node remove",
            OperatorAction::Migrate => "migrate",
            OperatorAction::RecordDeposit => "record_deposit",
            OperatorAction::DefaultWinner => "default",
            OperatorAction::RegisterBidderKey => "register_bidder_key",
            OperatorAction::Other(name) => name,
        }
    }

    /// The named action called `name`, if there is one.
    pub fn named(name: &str) -> Option<OperatorAction> {
        OperatorAction::NAMED
            .into_iter()
            .find(|action| action.as_str() == name)
    }
}

impl From<String> for OperatorAction {
    fn from(name: String) -> Self {
        OperatorAction::named(&name).unwrap_or(OperatorAction::Other(name))
    }
}

impl From<OperatorAction> for String {
    fn from(action: OperatorAction) -> Self {
        match action {
            OperatorAction::Other(name) => name,
            named => named.as_str().to_string(),
        }
    }
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for OperatorAction {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for OperatorAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for OperatorAction {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_its_name_in_json_and_in_bincode() {
        for action in OperatorAction::NAMED
            .into_iter()
            .chain([OperatorAction::Other("no spaces allowed".to_string())])
        {
            let name = action.as_str().to_string();
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                serde_json::to_string(&name).unwrap()
            );
            let bytes = bincode::serialize(&action).unwrap();
            assert_eq!(bytes, bincode::serialize(&name).unwrap());
            assert_eq!(
                bincode::deserialize::<OperatorAction>(&bytes).unwrap(),
                action
            );
            assert_eq!(OperatorAction::from(name), action);
        }
    }
}
