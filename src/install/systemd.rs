//! The hardened systemd unit for `portwarden daemon` behind `portwarden systemd install|print`.
//!
//! In: the config and state directory this invocation used (passed through as in the cron
//! file). Out: `portwarden.service` (or its text on stdout). No `ExecStartPre=setup`: the
//! daemon puts its table and live bans back itself on start (the engine's reconcile), and a
//! failing pre-step would keep it from starting at all.
//!
//! The daemon needs two privileges and nothing else: `CAP_NET_ADMIN` to change the nftables
//! sets (`nft` talks netlink) and `CAP_SYSLOG` to read `/dev/kmsg`. The unit keeps root's uid
//! (so the state directory and the log files stay root's) but bounds its capabilities to those
//! two, makes the whole file system read-only but the state directory, and allows only
//! `AF_UNIX` (journald, `journalctl`) and `AF_NETLINK` (nft, the host's addresses) sockets,
//! plus `AF_INET` or `AF_INET6` when `[metrics] listen` asks for the metrics endpoint.
//! Left out on purpose, because each would break a source or the firewall:
//! `PrivateDevices=` and `ProtectKernelLogs=` hide `/dev/kmsg`; `PrivateNetwork=` would give
//! the daemon a ruleset of its own instead of the host's; `PrivateUsers=` drops the
//! capabilities in the host's namespaces.
//!
//! Paths are checked like cron's ([`super::cron::cron_safe`]): systemd splits `ExecStart=` on
//! whitespace and expands `%` specifiers and `$` variables.

use std::path::{Path, PathBuf};

use super::cron::{InstallError, PassThrough, cron_safe, own_path};
use crate::config::{Config, DEFAULT_STATE_DIR};

/// Where administrators' own units go.
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
pub const UNIT_NAME: &str = "portwarden.service";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonUnit {
    /// Absolute path of the portwarden binary.
    pub exe: PathBuf,
    /// Global options placed before `daemon`.
    pub global: PassThrough,
    /// The state directory the daemon writes (the only writable path).
    pub state_dir: PathBuf,
    /// `[metrics] listen`: the metrics endpoint needs an `AF_INET` or `AF_INET6` socket, which
    /// the unit otherwise forbids.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl DaemonUnit {
    pub fn new(config: &Config, state_dir: &Path) -> Result<DaemonUnit, InstallError> {
        Ok(DaemonUnit {
            exe: own_path()?,
            global: PassThrough::new(config, state_dir)?,
            state_dir: std::path::absolute(state_dir).map_err(|source| InstallError::Io {
                path: state_dir.to_path_buf(),
                source,
            })?,
            metrics_listen: config.metrics.listen,
        })
    }

    pub fn render(&self) -> Result<String, InstallError> {
        let mut base = vec![cron_safe("the portwarden binary", &self.exe)?.to_string()];
        base.extend(self.global.words()?);
        let base = base.join(" ");
        let state = cron_safe("the state directory", &self.state_dir)?;
        // systemd creates (and owns the mode of) /var/lib/portwarden itself; another directory
        // must exist already, or the namespace set-up for ReadWritePaths= fails.
        let state_lines = if self.state_dir == Path::new(DEFAULT_STATE_DIR) {
            format!("StateDirectory=portwarden\nStateDirectoryMode=0700\nReadWritePaths={state}\n")
        } else {
            format!("# {state} must exist before the service starts.\nReadWritePaths={state}\n")
        };
        // The metrics endpoint (`[metrics] listen`) is the one inet socket the daemon opens.
        let families = match self.metrics_listen {
            None => "AF_UNIX AF_NETLINK",
            Some(std::net::SocketAddr::V4(_)) => "AF_UNIX AF_NETLINK AF_INET",
            Some(std::net::SocketAddr::V6(_)) => "AF_UNIX AF_NETLINK AF_INET6",
        };
        Ok(format!(
            "# {UNIT_NAME}: written by `portwarden systemd install` (portwarden {version}).\n\
             {marker}: `portwarden systemd install` rewrites it.\n\
             #\n\
             # `portwarden daemon` follows the configured log sources and bans a port scanner\n\
             # within milliseconds. It needs CAP_NET_ADMIN (nft) and CAP_SYSLOG (/dev/kmsg) and\n\
             # nothing else. Not set on purpose: PrivateDevices= and ProtectKernelLogs= (both hide\n\
             # /dev/kmsg), PrivateNetwork= and PrivateUsers= (the daemon must change the host's\n\
             # own ruleset). A `file` source the daemon cannot read as root without\n\
             # CAP_DAC_OVERRIDE (Ubuntu's syslog-owned kern.log) needs SupplementaryGroups=adm.\n\
             \n\
             [Unit]\n\
             Description=portwarden: detect port scans and ban the scanners with nftables\n\
             Wants=network-pre.target\n\
             After=network-pre.target nftables.service\n\
             \n\
             [Service]\n\
             Type=simple\n\
             ExecStart={base} daemon\n\
             ExecReload=/bin/kill -HUP $MAINPID\n\
             Restart=on-failure\n\
             RestartSec=5s\n\
             \n\
             CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYSLOG\n\
             AmbientCapabilities=CAP_NET_ADMIN CAP_SYSLOG\n\
             NoNewPrivileges=yes\n\
             ProtectSystem=strict\n\
             {state_lines}\
             ProtectHome=yes\n\
             PrivateTmp=yes\n\
             ProtectKernelModules=yes\n\
             ProtectKernelTunables=yes\n\
             ProtectControlGroups=yes\n\
             ProtectClock=yes\n\
             ProtectHostname=yes\n\
             RestrictAddressFamilies={families}\n\
             RestrictNamespaces=yes\n\
             RestrictRealtime=yes\n\
             RestrictSUIDSGID=yes\n\
             LockPersonality=yes\n\
             MemoryDenyWriteExecute=yes\n\
             SystemCallArchitectures=native\n\
             SystemCallFilter=@system-service\n\
             UMask=0077\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            version = env!("CARGO_PKG_VERSION"),
            marker = super::cron::MARKER,
        ))
    }

    /// Paths the unit's `ProtectHome=yes` hides from the daemon.
    pub fn hidden_paths(&self) -> Vec<&Path> {
        let hidden = |p: &Path| {
            ["/home", "/root", "/run/user"]
                .iter()
                .any(|h| p.starts_with(h))
        };
        [
            Some(&self.exe),
            self.global.config.as_ref(),
            Some(&self.state_dir),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .filter(|p| hidden(p))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(state_dir: &str, config: Option<&str>) -> DaemonUnit {
        DaemonUnit {
            exe: "/usr/local/bin/portwarden".into(),
            global: PassThrough {
                config: config.map(PathBuf::from),
                state_dir: None,
            },
            state_dir: state_dir.into(),
            metrics_listen: None,
        }
    }

    fn value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    }

    #[test]
    fn default_unit_is_hardened_and_runs_the_daemon() {
        let text = unit(DEFAULT_STATE_DIR, None).render().unwrap();
        assert_eq!(
            value(&text, "ExecStart"),
            ["/usr/local/bin/portwarden daemon"]
        );
        assert_eq!(value(&text, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
        for (key, want) in [
            ("CapabilityBoundingSet", "CAP_NET_ADMIN CAP_SYSLOG"),
            ("AmbientCapabilities", "CAP_NET_ADMIN CAP_SYSLOG"),
            ("ProtectSystem", "strict"),
            ("ReadWritePaths", "/var/lib/portwarden"),
            ("StateDirectory", "portwarden"),
            ("PrivateTmp", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectHome", "yes"),
            ("ProtectKernelModules", "yes"),
            ("RestrictAddressFamilies", "AF_UNIX AF_NETLINK"),
            ("SystemCallFilter", "@system-service"),
            ("Restart", "on-failure"),
            ("WantedBy", "multi-user.target"),
        ] {
            assert_eq!(value(&text, key), [want], "{key}");
        }
        // These would hide /dev/kmsg or the host's ruleset.
        for key in [
            "PrivateDevices",
            "ProtectKernelLogs",
            "PrivateNetwork",
            "PrivateUsers",
        ] {
            assert!(value(&text, key).is_empty(), "{key} must not be set");
        }
        assert!(super::super::cron::is_ours(&text));
    }

    #[test]
    fn a_metrics_endpoint_allows_its_address_family_and_no_other() {
        let mut u = unit(DEFAULT_STATE_DIR, None);
        u.metrics_listen = Some("127.0.0.1:9809".parse().unwrap());
        let text = u.render().unwrap();
        assert_eq!(
            value(&text, "RestrictAddressFamilies"),
            ["AF_UNIX AF_NETLINK AF_INET"]
        );
        u.metrics_listen = Some("[::1]:9809".parse().unwrap());
        let text = u.render().unwrap();
        assert_eq!(
            value(&text, "RestrictAddressFamilies"),
            ["AF_UNIX AF_NETLINK AF_INET6"]
        );
    }

    #[test]
    fn other_state_dir_is_writable_without_state_directory() {
        let mut u = unit("/srv/portwarden", Some("/etc/pw/pw.toml"));
        u.global.state_dir = Some("/srv/portwarden".into());
        let text = u.render().unwrap();
        assert_eq!(
            value(&text, "ExecStart"),
            [
                "/usr/local/bin/portwarden --config /etc/pw/pw.toml --state-dir /srv/portwarden daemon"
            ]
        );
        assert_eq!(value(&text, "ReadWritePaths"), ["/srv/portwarden"]);
        assert!(value(&text, "StateDirectory").is_empty());
    }

    #[test]
    fn refuses_specifiers_and_whitespace_and_warns_about_home() {
        let mut u = unit(DEFAULT_STATE_DIR, None);
        u.exe = "/opt/50%/portwarden".into();
        assert!(u.render().unwrap_err().to_string().contains("`%`"));
        u.exe = "/opt/my bin/portwarden".into();
        assert!(u.render().unwrap_err().to_string().contains("whitespace"));
        u.exe = "/root/bin/portwarden".into();
        assert_eq!(u.hidden_paths(), [Path::new("/root/bin/portwarden")]);
        assert!(unit(DEFAULT_STATE_DIR, None).hidden_paths().is_empty());
    }
}
