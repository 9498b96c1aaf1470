//! Read-only views of the ban book for `list` and `status`: the kernel set and the store side
//! by side, the table's state, the store's counts. Nothing here writes or repairs anything:
//! showing a difference between the kernel and the store is the point.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::Serialize;

use super::BanBook;
use crate::enforce::{EnforceError, Firewall, SetElement, TableState};
use crate::store::{BanOrigin, ReadStore, RunRecord, StoreError};

impl BanBook {
    /// The kernel's elements and the store's live bans, merged (see [`listing`]).
    pub fn listing(&mut self, table: String) -> Result<Listing, StoreError> {
        let now = self.now();
        let kernel = self.firewall.list();
        listing(table, kernel, &self.store, now)
    }

    /// The firewall's side of `status` (see [`firewall_status`]).
    pub fn firewall_status(&mut self, table: String) -> FirewallStatus {
        firewall_status(table, self.firewall.as_mut())
    }

    /// The store's side of `status` (see [`store_status`]).
    pub fn store_status(&self) -> Result<StoreStatus, StoreError> {
        store_status(
            &self.store,
            self.store.path().map(PathBuf::from),
            self.now(),
        )
    }
}

/// One target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListRow {
    pub target: IpNet,
    /// `None`: the kernel set could not be read.
    pub in_kernel: Option<bool>,
    pub in_store: bool,
    /// Neither the kernel element nor the store ban has an end.
    pub permanent: bool,
    /// The store's end of the ban.
    pub until: Option<Timestamp>,
    /// Seconds left: the kernel's count when it has the element, else the store's.
    pub remaining_secs: Option<i64>,
    pub reason: Option<String>,
    pub origin: Option<BanOrigin>,
    /// Decided in dry-run mode: recorded, never sent to the kernel.
    pub dry_run: bool,
}

/// The whole listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// `family table`, e.g. `inet portwarden`.
    pub table: String,
    pub firewall_error: Option<String>,
    pub bans: Vec<ListRow>,
}

/// Merge what the kernel and the store say.
pub fn listing(
    table: String,
    kernel: Result<Vec<SetElement>, EnforceError>,
    store: &impl ReadStore,
    now: Timestamp,
) -> Result<Listing, StoreError> {
    let (kernel, firewall_error) = match kernel {
        Ok(elements) => (Some(elements), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut rows: BTreeMap<IpNet, ListRow> = BTreeMap::new();
    // The live bans, and those recorded in dry-run mode (marked: they never reach the kernel).
    let unexpired = store
        .active_bans()?
        .into_iter()
        .filter(|b| b.until.is_none_or(|u| u > now));
    for ban in unexpired {
        // Several live bans of one target cannot happen through portwarden (a new one lifts
        // the old); if they do, the longest wins, and a real ban over a dry-run one.
        let row = ListRow {
            target: ban.target,
            in_kernel: kernel.as_ref().map(|_| false),
            in_store: true,
            permanent: ban.until.is_none(),
            until: ban.until,
            remaining_secs: ban.remaining(now).map(|d| d.as_secs()),
            reason: Some(ban.reason),
            origin: Some(ban.origin),
            dry_run: ban.dry_run,
        };
        match rows.get(&ban.target) {
            Some(old) if !old.dry_run && row.dry_run => {}
            Some(old)
                if old.dry_run == row.dry_run && (old.permanent || old.until >= row.until) => {}
            _ => {
                rows.insert(ban.target, row);
            }
        }
    }
    for e in kernel.iter().flatten() {
        let row = rows.entry(e.target).or_insert_with(|| ListRow {
            target: e.target,
            in_kernel: Some(true),
            in_store: false,
            permanent: e.expires.is_none(),
            until: None,
            remaining_secs: None,
            reason: None,
            origin: None,
            dry_run: false,
        });
        row.in_kernel = Some(true);
        row.remaining_secs = e.expires.map(|d| d.as_secs());
        row.permanent = e.expires.is_none() && row.until.is_none();
    }
    Ok(Listing {
        table,
        firewall_error,
        bans: rows.into_values().collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirewallStatus {
    /// `family table`.
    pub table: String,
    /// `ready`, `missing`, `incomplete: ...`; `None` when it could not be checked.
    pub state: Option<String>,
    pub ready: bool,
    pub error: Option<String>,
    pub elements_v4: Option<usize>,
    pub elements_v6: Option<usize>,
    /// What to do about it.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CursorStatus {
    pub source: String,
    pub cursor: String,
    pub updated: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    pub path: Option<PathBuf>,
    pub schema_version: u32,
    pub live_bans: usize,
    /// Unexpired bans recorded in dry-run mode (never in the kernel).
    pub dry_run_bans: usize,
    pub offending_sources: u64,
    /// Findings recorded, by outcome (`banned`, `allowlisted`, `rate_limited`...).
    pub findings: BTreeMap<String, u64>,
    /// Findings recorded, by rule (`fast_scan`, `kernel_fastpath`: a ban the kernel made...).
    pub finding_kinds: BTreeMap<String, u64>,
    pub last_run: Option<RunRecord>,
    pub cursors: Vec<CursorStatus>,
    pub detector_state_bytes: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub config_path: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// `pid mode` of the run or daemon holding the state's lock right now, if any.
    pub lock_holder: Option<String>,
    pub dry_run: bool,
    pub firewall: FirewallStatus,
    pub store: StoreStatus,
    /// Each configured source and, when it cannot be read now, why (the same rule and words
    /// as a pass: see `source::check`).
    pub sources: Vec<crate::source::SourceStatus>,
    /// The fleet link (`None`: no `[fleet]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetStatus>,
}

pub fn firewall_status(table: String, fw: &mut dyn Firewall) -> FirewallStatus {
    let mut s = FirewallStatus {
        table,
        state: None,
        ready: false,
        error: None,
        elements_v4: None,
        elements_v6: None,
        hint: None,
    };
    match fw.check() {
        Err(e) => s.error = Some(e.to_string()),
        Ok(TableState::Missing) => {
            s.state = Some("missing".into());
            s.hint = Some(
                "run `portwarden setup` (`run --once` and the daemon also recreate it)".into(),
            );
        }
        Ok(TableState::Incomplete(what)) => {
            s.state = Some(format!("incomplete: {what}"));
            s.hint = Some("run `portwarden setup` to refresh it".into());
        }
        Ok(TableState::Ready) => {
            s.state = Some("ready".into());
            s.ready = true;
            match fw.list() {
                Ok(elements) => {
                    let v4 = elements
                        .iter()
                        .filter(|e| e.target.addr().is_ipv4())
                        .count();
                    s.elements_v4 = Some(v4);
                    s.elements_v6 = Some(elements.len() - v4);
                }
                Err(e) => {
                    s.ready = false;
                    s.error = Some(e.to_string());
                }
            }
        }
    }
    s
}

pub fn store_status(
    store: &impl ReadStore,
    path: Option<PathBuf>,
    now: Timestamp,
) -> Result<StoreStatus, StoreError> {
    Ok(StoreStatus {
        path,
        schema_version: store.schema_version()?,
        live_bans: store.live_bans(now)?.len(),
        dry_run_bans: store
            .active_bans()?
            .iter()
            .filter(|b| b.dry_run && b.until.is_none_or(|u| u > now))
            .count(),
        offending_sources: store.offence_count()?,
        findings: store.finding_outcomes()?.into_iter().collect(),
        finding_kinds: store.finding_kinds()?.into_iter().collect(),
        last_run: store.last_run()?,
        cursors: store
            .cursors()?
            .into_iter()
            .map(|(source, cursor, updated)| CursorStatus {
                source,
                cursor,
                updated,
            })
            .collect(),
        detector_state_bytes: store.detector_state()?.map(|s| s.len()),
    })
}
