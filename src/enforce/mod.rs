//! Stage `enforce`: the nftables objects that drop banned sources.
//!
//! In: [`BanElement`]s (validated `IpNet`s with their own timeout). Out: elements of the
//! kernel sets `banned4` / `banned6` (addresses) and `banned4_nets` / `banned6_nets` (prefixes)
//! in table `inet portwarden` (or the operator's own table and set, such as the seed lab's
//! `ip filter blocked_ips`). The kernel expires the elements; the
//! store remembers them so that a reboot or `nft flush ruleset` can be repaired (reconcile).
//!
//! Every side effect sits behind the [`Firewall`] trait: the real implementation builds and
//! checks the table with `nft` (never through a shell, stderr always kept) and writes and lists
//! set elements over netlink ([`netlink`]); a fake keeps the same state in memory for the
//! decide/store unit tests.

use ipnet::IpNet;
use jiff::SignedDuration;

pub mod fake;
pub mod netlink;
pub mod nft;

pub use fake::FakeFirewall;
pub use nft::{FastpathRules, NftFirewall, SetupOutcome, TeardownOutcome};

/// One element to add: an address (/32, /128) or a prefix, with its own timeout
/// (`None`: no timeout, a permanent ban).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BanElement {
    pub target: IpNet,
    pub timeout: Option<SignedDuration>,
}

/// One element as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetElement {
    pub target: IpNet,
    /// Time left before the kernel removes it (`None`: no timeout).
    pub expires: Option<SignedDuration>,
}

/// What `check` found of the firewall objects portwarden needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// Table, sets and rules are there, as `setup` would make them.
    Ready,
    /// The table is absent (never set up, or flushed).
    Missing,
    /// The table is there but differs from what `setup` makes (older version, a set missing);
    /// the text says what.
    Incomplete(String),
}

/// Errors of the enforce stage, each with what an operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("`{0}` not found: install nftables (apt-get install nftables) or set firewall.nft")]
    NftMissing(String),
    #[error("changing nftables needs CAP_NET_ADMIN: run as root")]
    NotPermitted,
    #[error("table {0} does not exist: run `portwarden setup` first")]
    TableMissing(String),
    #[error(
        "table {0} does not exist; firewall.manage_table = false, so portwarden will not create it: create it, or set manage_table = true"
    )]
    BorrowedMissing(String),
    /// A name, prefix or address portwarden refuses to put into an nft script.
    #[error("{0}")]
    Invalid(String),
    #[error("nft failed: {0}")]
    Nft(String),
    /// The kernel refused a set element change or listing made over netlink.
    #[error("the kernel refused: {0}")]
    Kernel(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The firewall as the rest of portwarden sees it.
pub trait Firewall {
    /// Create or refresh the table, sets, LOG rule and drop rules in one transaction;
    /// idempotent. Bans already in the sets survive a refresh.
    fn setup(&mut self) -> Result<(), EnforceError>;
    /// Remove portwarden's table and nothing else.
    fn teardown(&mut self) -> Result<(), EnforceError>;
    fn check(&mut self) -> Result<TableState, EnforceError>;
    /// Add elements, all in one transaction; an element already present gets the new timeout.
    fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError>;
    /// Remove elements (absent ones are not an error), in one transaction.
    fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError>;
    /// Elements of both sets.
    fn list(&mut self) -> Result<Vec<SetElement>, EnforceError>;
    /// Whether the kernel expires elements itself. `false` for a borrowed set without the
    /// `timeout` flag (the seed lab's `ip filter blocked_ips`): elements are then added without
    /// a timeout and portwarden must unban expired bans itself (the store knows when).
    fn supports_timeout(&self) -> bool {
        true
    }
    /// Replace the kernel fast path's allowlist (`allow4`/`allow6`) and served ports
    /// (`served`) with these, in one transaction; nothing when the fast path is off.
    fn sync_fastpath(
        &mut self,
        _allow: &[IpNet],
        _served: &[(crate::record::Proto, u16)],
    ) -> Result<(), EnforceError> {
        Ok(())
    }
    /// Whether there is a set for this address family (a borrowed IPv4-only table such as the
    /// seed lab's `ip filter blocked_ips` has none for IPv6). Elements it cannot hold must not
    /// be sent: nft would refuse the whole batch.
    fn holds(&self, _target: &IpNet) -> bool {
        true
    }
}
