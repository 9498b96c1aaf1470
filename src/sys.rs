//! Small facts about the host that production stages ask: is a program installed.
//!
//! Kept apart from [`crate::netns`] (the demo's and the tests' namespace lab) so that a stage
//! such as `source` never imports the test lab to look a program up.

use std::path::Path;

/// Whether a program is on `$PATH` (without running it); a name with a `/` is a path to check.
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_by_name_and_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("pw-sys-test-tool");
        std::fs::write(&tool, b"").unwrap();
        let path = tool.to_str().unwrap();
        for (program, want) in [
            ("sh", true),
            ("pw-no-such-program-on-path", false),
            (path, true),
            ("/nonexistent/dir/sh", false),
            // A directory is not a program.
            (dir.path().to_str().unwrap(), false),
        ] {
            assert_eq!(on_path(program), want, "{program}");
        }
    }
}
