//! Godot's RPC modes and the two rules built on them: who may call (the receiver's check) and
//! whether a call also runs locally (the sender's check).

use crate::peer::PeerId;

/// Godot 3's `MultiplayerAPI.RPCMode`: who may call a method or set a property over the
/// network. The integers are Godot's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RpcMode {
    /// Never callable remotely. Godot: 0; the default for anything not registered.
    #[default]
    Disabled,
    /// Anyone may call (`remote`). Godot: 1.
    Remote,
    /// Runs only on the node's network master (`master`). Godot: 2.
    Master,
    /// Runs only on puppets, and only when the master calls (`puppet`, alias `slave`). Godot: 3.
    Puppet,
    /// `remote`, and the caller runs it too (`remotesync`, alias `sync`). Godot: 4.
    RemoteSync,
    /// `master`, and the caller runs it too (`mastersync`). Godot: 5.
    MasterSync,
    /// `puppet`, and the caller runs it too (`puppetsync`). Godot: 6.
    PuppetSync,
}

impl RpcMode {
    /// All seven, in Godot's order.
    pub const ALL: [RpcMode; 7] = [
        RpcMode::Disabled,
        RpcMode::Remote,
        RpcMode::Master,
        RpcMode::Puppet,
        RpcMode::RemoteSync,
        RpcMode::MasterSync,
        RpcMode::PuppetSync,
    ];

    /// Godot's integer for this mode.
    pub fn to_godot(self) -> i32 {
        match self {
            RpcMode::Disabled => 0,
            RpcMode::Remote => 1,
            RpcMode::Master => 2,
            RpcMode::Puppet => 3,
            RpcMode::RemoteSync => 4,
            RpcMode::MasterSync => 5,
            RpcMode::PuppetSync => 6,
        }
    }

    /// The mode for Godot's integer.
    pub fn from_godot(mode: i32) -> Option<RpcMode> {
        RpcMode::ALL.get(usize::try_from(mode).ok()?).copied()
    }

    /// The receiver's check (Godot's `_can_call_mode`): may `sender` run this on a node whose
    /// network master is `master`, on the peer `me`? Master modes run only on the master (the
    /// sender is not checked); puppet modes only on a puppet, and only when the master calls.
    ///
    /// ```
    /// use enet_multiplayer::api::RpcMode;
    /// assert!(RpcMode::Remote.allows(7, 1, 1));
    /// assert!(RpcMode::Master.allows(7, 1, 1)); // I (1) am the master
    /// assert!(!RpcMode::Puppet.allows(7, 1, 1)); // a puppet method never runs on the master
    /// assert!(RpcMode::Puppet.allows(1, 1, 7)); // on peer 7, from the master
    /// assert!(!RpcMode::Puppet.allows(9, 1, 7)); // on peer 7, from another puppet
    /// assert!(!RpcMode::Disabled.allows(1, 1, 7));
    /// ```
    pub fn allows(self, sender: PeerId, master: PeerId, me: PeerId) -> bool {
        let i_am_master = me == master;
        match self {
            RpcMode::Disabled => false,
            RpcMode::Remote | RpcMode::RemoteSync => true,
            RpcMode::Master | RpcMode::MasterSync => i_am_master,
            RpcMode::Puppet | RpcMode::PuppetSync => !i_am_master && sender == master,
        }
    }

    /// The sender's check (Godot's `_should_call_local`), for a call that includes this peer:
    /// `(run locally, skip sending)`. The sync modes always run locally; `master` runs locally
    /// (and is not sent) on the master; `puppet` runs locally on a puppet; a master's
    /// `mastersync` is not sent either.
    pub(crate) fn local_call(self, i_am_master: bool) -> (bool, bool) {
        match self {
            RpcMode::Disabled | RpcMode::Remote => (false, false),
            RpcMode::MasterSync => (true, i_am_master),
            RpcMode::RemoteSync | RpcMode::PuppetSync => (true, false),
            RpcMode::Master => (i_am_master, i_am_master),
            RpcMode::Puppet => (!i_am_master, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        for m in RpcMode::ALL {
            assert_eq!(RpcMode::from_godot(m.to_godot()), Some(m));
        }
        assert_eq!(RpcMode::from_godot(7), None);
        assert_eq!(RpcMode::from_godot(-1), None);
    }

    /// Godot's `_can_call_mode`, every mode against every (sender, master, me) shape.
    #[test]
    fn receiver_table() {
        // (mode, on the master from a puppet, on a puppet from the master, on a puppet from another puppet)
        let table = [
            (RpcMode::Disabled, false, false, false),
            (RpcMode::Remote, true, true, true),
            (RpcMode::Master, true, false, false),
            (RpcMode::Puppet, false, true, false),
            (RpcMode::RemoteSync, true, true, true),
            (RpcMode::MasterSync, true, false, false),
            (RpcMode::PuppetSync, false, true, false),
        ];
        for (mode, on_master, from_master, from_puppet) in table {
            assert_eq!(mode.allows(7, 1, 1), on_master, "{mode:?} on master");
            assert_eq!(mode.allows(1, 1, 7), from_master, "{mode:?} from master");
            assert_eq!(mode.allows(9, 1, 7), from_puppet, "{mode:?} from puppet");
        }
    }

    #[test]
    fn sender_table() {
        let table = [
            // (mode, master: (local, skip), puppet: (local, skip))
            (RpcMode::Disabled, (false, false), (false, false)),
            (RpcMode::Remote, (false, false), (false, false)),
            (RpcMode::Master, (true, true), (false, false)),
            (RpcMode::Puppet, (false, false), (true, false)),
            (RpcMode::RemoteSync, (true, false), (true, false)),
            (RpcMode::MasterSync, (true, true), (true, false)),
            (RpcMode::PuppetSync, (true, false), (true, false)),
        ];
        for (mode, master, puppet) in table {
            assert_eq!(mode.local_call(true), master, "{mode:?} on master");
            assert_eq!(mode.local_call(false), puppet, "{mode:?} on puppet");
        }
    }
}
