//! `portwarden status [--json]`: what portwarden is doing, in one screen.
//!
//! In: the firewall (`check` and `list`, read only), the store, the context. Out: the table's
//! state with a hint when it needs `portwarden setup`, the size of each set, the store's live
//! bans, offences, finding outcomes, last run, each source's cursor, the state directory and
//! the config file in use. Exits 1 when the firewall is not ready (unreadable, missing table,
//! incomplete table) so that a monitoring check can use it; everything that could be read is
//! printed first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;

use super::Context;
use super::ban::{firewall, open_store};
use crate::enforce::{Firewall, TableState};
use crate::store::{ReadStore, RunRecord, StoreError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    pub offending_sources: u64,
    /// Findings recorded, by outcome (`banned`, `allowlisted`, `rate_limited`...).
    pub findings: BTreeMap<String, u64>,
    pub last_run: Option<RunRecord>,
    pub cursors: Vec<CursorStatus>,
    pub detector_state_bytes: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub config_path: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub dry_run: bool,
    pub firewall: FirewallStatus,
    pub store: StoreStatus,
    /// Each configured source and, when it cannot be read now, why (the same rule and words
    /// as a pass: see [`crate::source::check`]).
    pub sources: Vec<SourceStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub error: Option<String>,
}

/// The configured sources as a pass would find them now.
pub fn source_status(sources: &[crate::config::SourceConfig]) -> Vec<SourceStatus> {
    sources
        .iter()
        .map(|cfg| SourceStatus {
            source: crate::source::id_of(cfg),
            error: crate::source::check(cfg).err().map(|e| e.to_string()),
        })
        .collect()
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
        offending_sources: store.offence_count()?,
        findings: store.finding_outcomes()?.into_iter().collect(),
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

pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    let config = s
        .config_path
        .as_ref()
        .map_or("(built-in defaults)".to_string(), |p| {
            p.display().to_string()
        });
    out.push_str(&format!("config:     {config}\n"));
    out.push_str(&format!("state dir:  {}\n", s.state_dir.display()));
    if s.dry_run {
        out.push_str("mode:       DRY RUN (bans are recorded, the firewall is never changed)\n");
    }
    let f = &s.firewall;
    out.push_str(&format!(
        "table:      {} {}\n",
        f.table,
        f.state.as_deref().unwrap_or("unknown")
    ));
    if let (Some(v4), Some(v6)) = (f.elements_v4, f.elements_v6) {
        out.push_str(&format!("sets:       {v4} IPv4, {v6} IPv6 element(s)\n"));
    }
    if let Some(e) = &f.error {
        out.push_str(&format!("firewall:   error: {e}\n"));
    }
    if let Some(h) = &f.hint {
        out.push_str(&format!("            {h}\n"));
    }
    let st = &s.store;
    out.push_str(&format!(
        "store:      schema v{}, {} live ban(s), {} offending source(s)\n",
        st.schema_version, st.live_bans, st.offending_sources
    ));
    if !st.findings.is_empty() {
        let parts: Vec<String> = st
            .findings
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("findings:   {}\n", parts.join(", ")));
    }
    match &st.last_run {
        Some(r) => out.push_str(&format!(
            "last run:   {} at {:.0}: {} record(s), {} finding(s), {} ban(s)\n",
            r.mode, r.finished, r.records, r.findings, r.bans
        )),
        None => out.push_str("last run:   never\n"),
    }
    if let Some(r) = st.last_run.as_ref().filter(|r| !r.note.is_empty()) {
        out.push_str(&format!("            {}\n", r.note));
    }
    for src in &s.sources {
        match &src.error {
            None => out.push_str(&format!("source:     {} readable\n", src.source)),
            Some(e) => out.push_str(&format!("source:     {} ERROR: {e}\n", src.source)),
        }
    }
    for c in &st.cursors {
        out.push_str(&format!(
            "cursor:     {} = {} (saved {:.0})\n",
            c.source, c.cursor, c.updated
        ));
    }
    out
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let now = Timestamp::now();
    let mut fw = firewall(ctx);
    let table = format!(
        "{} {}",
        ctx.config.firewall.family, ctx.config.firewall.table
    );
    let status = Status {
        config_path: ctx.config.path.clone(),
        state_dir: ctx.state_dir.clone(),
        dry_run: ctx.config.ban.dry_run,
        firewall: firewall_status(table, fw.as_mut()),
        store: store_status(&store, store.path().map(PathBuf::from), now)?,
        sources: source_status(&ctx.config.sources),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render_text(&status));
    }
    if let Some(e) = &status.firewall.error {
        eprintln!("portwarden: firewall: {e}");
    }
    for src in &status.sources {
        if let Some(e) = &src.error {
            eprintln!("portwarden: source {}: {e}", src.source);
        }
    }
    Ok(
        if status.firewall.ready && status.sources.iter().all(|s| s.error.is_none()) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::{BanElement, FakeFirewall};
    use crate::store::Store;
    use crate::store::tests::{net, ts};

    #[test]
    fn firewall_states_and_hints() {
        let mut fw = FakeFirewall::unset();
        let s = firewall_status("inet portwarden".into(), &mut fw);
        assert_eq!(s.state.as_deref(), Some("missing"));
        assert!(!s.ready && s.hint.unwrap().contains("portwarden setup"));
        fw.setup().unwrap();
        fw.ban(&[
            BanElement {
                target: net("192.0.2.7"),
                timeout: None,
            },
            BanElement {
                target: net("2001:db8::/64"),
                timeout: None,
            },
            BanElement {
                target: net("198.51.100.0/24"),
                timeout: None,
            },
        ])
        .unwrap();
        let s = firewall_status("inet portwarden".into(), &mut fw);
        assert!(s.ready);
        assert_eq!((s.elements_v4, s.elements_v6), (Some(2), Some(1)));
        let mut denied = FakeFirewall::not_permitted();
        let s = firewall_status("inet portwarden".into(), &mut denied);
        assert!(s.error.unwrap().contains("root"));
    }

    #[test]
    fn store_side_of_an_empty_store() {
        let store = Store::open_in_memory().unwrap();
        let s = store_status(&store, None, ts("2026-11-24T23:00:00Z")).unwrap();
        assert_eq!(s.live_bans, 0);
        assert!(s.last_run.is_none() && s.cursors.is_empty());
        assert_eq!(s.schema_version, crate::store::schema::CURRENT_VERSION);
    }
}
