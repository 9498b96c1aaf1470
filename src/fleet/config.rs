//! `[fleet]`: the Redis stream this host shares its bans through, as written (`RawFleet`) and
//! validated ([`FleetConfig`]).
//!
//! The password is never in the config: `password_file` names a file read when a connection is
//! made. The shared key (`key_file`) is read once, at load: a daemon whose key cannot be read
//! must say so at start, not at its first ban. Without `[fleet]` the whole fleet is off and no
//! connection is ever made.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The stream key when `stream` is not set.
pub const DEFAULT_STREAM: &str = "portwarden:bans";
/// The approximate length the stream is trimmed to (`XADD ... MAXLEN ~ N`) by default.
pub const DEFAULT_MAX_LEN: u64 = 100_000;
/// A shorter shared key is refused: HMAC-SHA256 wants at least 128 bits of secret.
pub const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    redis: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    stream: Option<String>,
    host_id: Option<String>,
    publish: Option<bool>,
    consume: Option<bool>,
    key_file: Option<PathBuf>,
    max_len: Option<u64>,
    ca_file: Option<PathBuf>,
}

/// The shared secret of the fleet. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey(Vec<u8>);

impl FleetKey {
    pub fn new(bytes: Vec<u8>) -> FleetKey {
        FleetKey(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FleetKey({} bytes)", self.0.len())
    }
}

/// The validated `[fleet]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `redis://host:port/db` (the URL as written; no password in it).
    pub redis: String,
    pub username: Option<String>,
    /// Read at each connection; its content, trimmed of the final newline, is the password.
    pub password_file: Option<PathBuf>,
    pub stream: String,
    /// This host's name in the fleet (default: the hostname).
    pub host_id: String,
    pub publish: bool,
    pub consume: bool,
    pub key: FleetKey,
    /// For `rediss://`: the PEM certificate(s) of the authority to trust (`None`: the system's
    /// roots).
    pub ca_file: Option<PathBuf>,
    /// `MAXLEN ~` of every XADD.
    pub max_len: u64,
}

/// What is wrong with `[fleet]`: (key, problem, fix), turned into a `ConfigError` by the caller.
pub(crate) type Invalid = (&'static str, String, String);

impl RawFleet {
    pub(crate) fn validate(self) -> Result<FleetConfig, Invalid> {
        let redis = self.redis.ok_or_else(|| {
            (
                "fleet.redis",
                "missing".to_string(),
                "write `redis = \"redis://HOST:6379/0\"`".to_string(),
            )
        })?;
        let tls = redis.starts_with("rediss://");
        if !tls && !redis.starts_with("redis://") {
            return Err((
                "fleet.redis",
                format!("`{redis}` is not a redis:// or rediss:// URL"),
                "write it like \"redis://10.0.0.5:6379/0\" (or \"rediss://...\" for TLS)"
                    .to_string(),
            ));
        }
        if let Some(ca) = &self.ca_file {
            if !tls {
                return Err((
                    "fleet.ca_file",
                    "set, but the URL is not rediss:// (no TLS)".to_string(),
                    "use a rediss:// URL, or leave ca_file out".to_string(),
                ));
            }
            if let Err(e) = std::fs::read(ca) {
                return Err((
                    "fleet.ca_file",
                    format!("cannot read {}: {e}", ca.display()),
                    "name the PEM file of the authority that signed the Redis server's certificate"
                        .to_string(),
                ));
            }
        }
        if redis_url_has_password(&redis) {
            return Err((
                "fleet.redis",
                "the URL holds a password".to_string(),
                "put the password in a file readable by root only and name it in `password_file`"
                    .to_string(),
            ));
        }
        let key_file = self.key_file.ok_or_else(|| {
            (
                "fleet.key_file",
                "missing".to_string(),
                "name a file holding the fleet's shared secret (for example 32 random bytes: `head -c 32 /dev/urandom | base64 > /etc/portwarden/fleet.key`)".to_string(),
            )
        })?;
        let key = read_secret(&key_file).map_err(|e| {
            (
                "fleet.key_file",
                format!("cannot read {}: {e}", key_file.display()),
                "make it readable by the user portwarden runs as".to_string(),
            )
        })?;
        if key.len() < MIN_KEY_BYTES {
            return Err((
                "fleet.key_file",
                format!("the key is {} bytes long", key.len()),
                format!("use at least {MIN_KEY_BYTES} random bytes"),
            ));
        }
        let stream = self.stream.unwrap_or_else(|| DEFAULT_STREAM.to_string());
        if stream.is_empty() {
            return Err((
                "fleet.stream",
                "empty".to_string(),
                format!("leave it out for `{DEFAULT_STREAM}`"),
            ));
        }
        let host_id = match self.host_id {
            Some(h) => h,
            None => hostname(),
        };
        if host_id.is_empty() || host_id.len() > 255 || host_id.chars().any(char::is_control) {
            return Err((
                "fleet.host_id",
                format!("`{host_id}` is not a usable host name"),
                "give 1 to 255 printable characters".to_string(),
            ));
        }
        let max_len = self.max_len.unwrap_or(DEFAULT_MAX_LEN);
        if max_len == 0 {
            return Err((
                "fleet.max_len",
                "0 is not allowed".to_string(),
                format!("leave it out for {DEFAULT_MAX_LEN}"),
            ));
        }
        Ok(FleetConfig {
            redis,
            username: self.username,
            password_file: self.password_file,
            stream,
            host_id,
            publish: self.publish.unwrap_or(true),
            consume: self.consume.unwrap_or(true),
            key: FleetKey(key),
            ca_file: self.ca_file,
            max_len,
        })
    }
}

/// A secret file's content, without its trailing newline.
pub fn read_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path)?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    Ok(bytes)
}

/// `redis://user:pass@host` has a password; `redis://user@host` and `redis://host` do not.
fn redis_url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The kernel's host name (`/proc/sys/kernel/hostname`), `localhost` if unreadable.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(redis: &str, key_file: &Path) -> RawFleet {
        RawFleet {
            redis: Some(redis.to_string()),
            key_file: Some(key_file.to_path_buf()),
            ..RawFleet::default()
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        let c = raw("redis://10.0.0.5:6379/0", &key).validate().unwrap();
        assert_eq!(c.stream, DEFAULT_STREAM);
        assert!(c.publish && c.consume);
        assert_eq!(
            c.key.bytes().len(),
            32,
            "the newline is not part of the key"
        );
        assert!(!c.host_id.is_empty());
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "Debug leaks the key"
        );

        for (url, key_in_error) in [
            ("redis://u:secret@10.0.0.5:6379/0", "fleet.redis"),
            ("rediss://u:secret@10.0.0.5:6379/0", "fleet.redis"),
            ("http://10.0.0.5", "fleet.redis"),
        ] {
            let e = raw(url, &key).validate().unwrap_err();
            assert_eq!(e.0, key_in_error, "{url}: {e:?}");
        }
        // TLS: the system's roots, or a CA file that must be readable and needs rediss://.
        assert!(raw("rediss://10.0.0.5:6379/0", &key).validate().is_ok());
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let with_ca = |url: &str, ca: &Path| RawFleet {
            ca_file: Some(ca.to_path_buf()),
            ..raw(url, &key)
        };
        let tls = with_ca("rediss://10.0.0.5:6379/0", &ca).validate().unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some(ca.as_path()));
        for (url, ca) in [
            ("redis://10.0.0.5:6379/0", ca.clone()),
            ("rediss://10.0.0.5:6379/0", dir.path().join("no-such.pem")),
        ] {
            let e = with_ca(url, &ca).validate().unwrap_err();
            assert_eq!(e.0, "fleet.ca_file", "{url}: {e:?}");
        }
        assert!(raw("redis://user@10.0.0.5:6379/0", &key).validate().is_ok());
        std::fs::write(&key, "short").unwrap();
        assert_eq!(
            raw("redis://h/0", &key).validate().unwrap_err().0,
            "fleet.key_file"
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            raw("redis://h/0", &missing).validate().unwrap_err().0,
            "fleet.key_file"
        );
    }

    #[test]
    fn the_section_in_a_config_file() {
        use crate::config::Config;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "0123456789abcdef").unwrap();
        let path = Path::new("portwarden.toml");
        assert_eq!(
            Config::from_toml("", path).unwrap().fleet,
            None,
            "no section, no fleet"
        );
        let text = format!(
            "[fleet]\nredis = \"redis://10.0.0.5:6379/0\"\nkey_file = \"{}\"\nhost_id = \"web-1\"\npublish = false\n",
            key.display()
        );
        let fleet = Config::from_toml(&text, path).unwrap().fleet.unwrap();
        assert_eq!(
            (fleet.host_id.as_str(), fleet.publish, fleet.consume),
            ("web-1", false, true)
        );
        let err = Config::from_toml(&format!("{text}password = \"x\"\n"), path).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        let err = Config::from_toml("[fleet]\nredis = \"redis://h/0\"\n", path).unwrap_err();
        assert!(err.to_string().contains("fleet.key_file"), "{err}");
    }
}
