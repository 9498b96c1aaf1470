//! The man pages and shell completions, generated from the command line's clap definition
//! (`clap_mangen`, `clap_complete`), so they cannot drift from `--help`.
//!
//! In: the clap [`Command`]. Out: files in a directory: `portwarden.8` and one page per visible
//! subcommand (`portwarden-scan.8`, ...), section 8 since the binary lives in `/usr/sbin`; and
//! `portwarden.bash`, `_portwarden` (zsh) and `portwarden.fish`. The checked-in copies
//! (`docs/man/`, `completions/`) are compared with fresh ones by `tests/generated_docs.rs`, and
//! the Debian package installs them.

use std::io;
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// Write the man pages of `cmd` and its visible subcommands into `dir`; returns the files.
/// The main page gets an EXIT STATUS section from `exit_codes` (instead of the `--help`
/// epilogue, which clap_mangen would print as "EXTRA").
pub fn write_man_pages(
    cmd: Command,
    dir: &Path,
    exit_codes: &[(u8, &str)],
) -> io::Result<Vec<PathBuf>> {
    fn walk(cmd: Command, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, out)?;
        }
        let man = clap_mangen::Man::new(cmd)
            .section("8")
            .manual("System Manager's Manual");
        out.push(man.generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        walk(sub, dir, &mut out)?;
    }
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Manager's Manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    let mut roff = clap_mangen::roff::Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in exit_codes {
        roff.control("TP", []);
        roff.text([clap_mangen::roff::roman(code.to_string())]);
        roff.text([clap_mangen::roff::roman(*meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([clap_mangen::roff::roman(
        "The user guide: /usr/share/doc/portwarden/guide.md; the commented configuration: portwarden config print-default.",
    )]);
    roff.to_writer(&mut page)?;
    man.render_version_section(&mut page)?;
    std::fs::write(&path, page)?;
    out.push(path);
    out.sort();
    Ok(out)
}

/// Write the bash, zsh and fish completions of `cmd` into `dir`; returns the files.
pub fn write_completions(mut cmd: Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        out.push(clap_complete::generate_to(shell, &mut cmd, &name, dir)?);
    }
    out.sort();
    Ok(out)
}

/// Write the files the Debian package installs besides the binary and the docs:
/// `portwarden.service` (the unit `portwarden systemd install` writes, for `/usr/sbin`; the
/// package installs it, never enables it) and `portwarden.cron` (the file `portwarden cron
/// install` writes, with its job commented out). Returns the files.
pub fn write_package_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    use crate::install::cron::{CronJob, PassThrough};
    use crate::install::systemd::DaemonUnit;
    let exe = PathBuf::from("/usr/sbin/portwarden");
    let unit = DaemonUnit {
        exe: exe.clone(),
        global: PassThrough::default(),
        state_dir: PathBuf::from(crate::config::DEFAULT_STATE_DIR),
        // The packaged unit is for the packaged (default) config: metrics off. An operator who
        // turns them on regenerates it with `portwarden systemd install`.
        metrics_listen: None,
    }
    .render()
    .map_err(io::Error::other)?;
    let cron = CronJob {
        exe,
        global: PassThrough::default(),
        log: PathBuf::from("/var/log/portwarden.log"),
    }
    .render()
    .map_err(io::Error::other)?;
    let mut commented = String::from(
        "# Installed by the Debian package with the job commented out: portwarden runs either\n\
         # from cron (uncomment the job below, or run `portwarden cron install`) or as a daemon\n\
         # (`systemctl enable --now portwarden`), not both.\n",
    );
    for line in cron.lines() {
        match line.strip_prefix("* * * * * root ") {
            // Commented out, and harmless once uncommented after the package is removed (its
            // conffiles stay until purge): the job checks that the binary is still there.
            Some(job) => commented.push_str(&format!(
                "# * * * * * root test -x /usr/sbin/portwarden && {job}"
            )),
            None => commented.push_str(line),
        }
        commented.push('\n');
    }
    std::fs::create_dir_all(dir)?;
    let files = [
        (dir.join("portwarden.service"), unit),
        (dir.join("portwarden.cron"), commented),
    ];
    let mut out = Vec::new();
    for (path, text) in files {
        std::fs::write(&path, text)?;
        out.push(path);
    }
    Ok(out)
}
