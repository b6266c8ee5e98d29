//! Completion scripts and the man page, generated from the clap definition, and the test that
//! keeps the checked-in copies (`completions/`, `man/`) current.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// A completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lrwatch", &mut out);
    out
}

/// The man page, in roff.
pub fn man() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Where each generated file is checked in, relative to the repository root.
    pub fn checked_in() -> std::io::Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![
            ("completions/lrwatch.bash", completions(Shell::Bash)),
            ("completions/_lrwatch", completions(Shell::Zsh)),
            ("completions/lrwatch.fish", completions(Shell::Fish)),
            ("completions/lrwatch.elv", completions(Shell::Elvish)),
            ("completions/_lrwatch.ps1", completions(Shell::PowerShell)),
            ("man/lrwatch.1", man()?),
        ])
    }

    /// Fails when a checked-in file differs from what the clap definition generates; run
    /// with `LRWATCH_BLESS=1` to rewrite them.
    #[test]
    fn checked_in_completions_and_man_page_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("LRWATCH_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (path, generated) in checked_in().unwrap() {
            let file = root.join(path);
            if bless {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &generated).unwrap();
            } else if std::fs::read(&file).ok().as_deref() != Some(&generated[..]) {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "stale: {stale:?}; regenerate with LRWATCH_BLESS=1 cargo test --bin lrwatch reference"
        );
    }
}
