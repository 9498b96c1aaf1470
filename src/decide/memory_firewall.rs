//! Test double of the [`Firewall`] trait for the decide and store unit tests: the table and its
//! elements in a map, with counters of the calls. Time does not pass inside it (the tests read
//! the timeouts they sent). To be replaced by the shared `enforce::fake` when that is merged.

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::SignedDuration;

use crate::enforce::{BanElement, EnforceError, Firewall, SetElement, TableState};

#[derive(Debug, Default)]
pub struct MemoryFirewall {
    pub table: bool,
    pub elements: BTreeMap<IpNet, Option<SignedDuration>>,
    pub setups: u32,
    pub ban_calls: u32,
    pub unban_calls: u32,
    /// Every call fails as if not root.
    pub fail_with_not_permitted: bool,
}

impl MemoryFirewall {
    /// What `nft flush ruleset` does: everything gone, table included.
    pub fn flush_ruleset(&mut self) {
        self.table = false;
        self.elements.clear();
    }

    /// `None`: not in the set; `Some(None)`: in it without a timeout.
    pub fn timeout_of(&self, target: IpNet) -> Option<Option<SignedDuration>> {
        self.elements.get(&target).copied()
    }

    fn ready(&self) -> Result<(), EnforceError> {
        if self.fail_with_not_permitted {
            return Err(EnforceError::NotPermitted);
        }
        if !self.table {
            return Err(EnforceError::TableMissing("inet portwarden".into()));
        }
        Ok(())
    }
}

impl Firewall for MemoryFirewall {
    fn setup(&mut self) -> Result<(), EnforceError> {
        if self.fail_with_not_permitted {
            return Err(EnforceError::NotPermitted);
        }
        self.table = true;
        self.setups += 1;
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), EnforceError> {
        self.flush_ruleset();
        Ok(())
    }

    fn check(&mut self) -> Result<TableState, EnforceError> {
        if self.fail_with_not_permitted {
            return Err(EnforceError::NotPermitted);
        }
        Ok(if self.table {
            TableState::Ready
        } else {
            TableState::Missing
        })
    }

    fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError> {
        self.ready()?;
        self.ban_calls += 1;
        for e in elements {
            self.elements.insert(e.target, e.timeout);
        }
        Ok(())
    }

    fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError> {
        self.ready()?;
        self.unban_calls += 1;
        for t in targets {
            self.elements.remove(t);
        }
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        self.ready()?;
        Ok(self
            .elements
            .iter()
            .map(|(t, e)| SetElement {
                target: *t,
                expires: *e,
            })
            .collect())
    }
}
