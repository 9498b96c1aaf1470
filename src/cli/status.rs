//! `portwarden status [--json]`: what portwarden is doing, in one screen.
//!
//! In: the firewall (`check` and `list`, read only), the store, the context. Out: the table's
//! state with a hint when it needs `portwarden setup`, the size of each set, the store's live
//! bans, offences, finding outcomes, last run, each source's cursor, the state directory and
//! the config file in use. Exits 1 when the firewall is not ready (unreadable, missing table,
//! incomplete table) so that a monitoring check can use it; everything that could be read is
//! printed first.

use std::process::ExitCode;

use super::Context;
use crate::bans::view::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    match &s.lock_holder {
        Some(h) => out.push_str(&format!("running:    {h} (holds the state's lock)\n")),
        None => out.push_str("running:    no run or daemon holds the state's lock\n"),
    }
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
        "store:      schema v{}, {} live ban(s){}, {} offending source(s)\n",
        st.schema_version,
        st.live_bans,
        if st.dry_run_bans > 0 {
            format!(" + {} recorded in dry run", st.dry_run_bans)
        } else {
            String::new()
        },
        st.offending_sources
    ));
    if !st.findings.is_empty() {
        let parts: Vec<String> = st
            .findings
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("findings:   {}\n", parts.join(", ")));
    }
    if !st.finding_kinds.is_empty() {
        let parts: Vec<String> = st
            .finding_kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("by rule:    {}\n", parts.join(", ")));
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
    if let Some(f) = &s.fleet {
        out.push_str(&format!(
            "fleet:      `{}` as {} (publish {}, consume {}), last ID {}, outbox {} message(s)\n",
            f.stream,
            f.host_id,
            f.publish,
            f.consume,
            f.last_id.as_deref().unwrap_or("none"),
            f.outbox
        ));
        for role in ["publisher", "consumer"] {
            let since = f.link.get(&format!("{role}_connected_since"));
            let down = f.link.get(&format!("{role}_disconnected_since"));
            let line = match (since, down) {
                (Some(t), _) => format!("connected since {t}"),
                (None, Some(t)) => format!(
                    "DISCONNECTED since {t}: {}",
                    f.link
                        .get(&format!("{role}_last_error"))
                        .map_or("", String::as_str)
                ),
                (None, None) => "not running (no daemon; cron passes connect per pass)".into(),
            };
            out.push_str(&format!("  {role}: {line}\n"));
        }
        if let Some(lag) = f.link.get("lag_ms") {
            out.push_str(&format!("  lag:       {lag} ms (last message read)\n"));
        }
        for (k, v) in &f.link {
            if k.starts_with("refused_") || k == "rate_limited" {
                out.push_str(&format!("  {k}: {v}\n"));
            }
        }
        for (host, last, n) in &f.peers {
            out.push_str(&format!(
                "  peer:      {host}, last message {last:.0}, {n} message(s)\n"
            ));
        }
    }
    out
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut book = ctx.ban_book()?;
    let status = Status {
        config_path: ctx.config.path.clone(),
        state_dir: ctx.state_dir.clone(),
        lock_holder: crate::engine::RunLock::holder(&ctx.state_dir),
        dry_run: ctx.config.ban.dry_run,
        firewall: book.firewall_status(ctx.config.firewall.table_name()),
        store: book.store_status()?,
        sources: crate::source::status(&ctx.config.sources),
        fleet: ctx
            .config
            .fleet
            .as_ref()
            .map(|fc| crate::fleet::status(fc, book.store(), book.now()))
            .transpose()?,
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
    use crate::bans::view::{firewall_status, store_status};
    use crate::enforce::{BanElement, FakeFirewall, Firewall};
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
