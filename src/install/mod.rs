//! Unattended operation: the cron file (`run --once` every minute) and the hardened systemd
//! unit (`daemon`) that `portwarden cron` and `portwarden systemd` install, rendered from the
//! configuration a command was invoked with. The CLI only writes, removes or prints them.

pub mod cron;
pub mod systemd;
