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

/// The main man page, in roff: clap's sections, then examples and exit status written here
/// (clap's "extra" section would reflow the examples).
pub fn man() -> std::io::Result<Vec<u8>> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    page.render_subcommands_section(&mut out)?;
    out.extend_from_slice(b".SH EXAMPLES\n.nf\n");
    let examples = crate::cli::EXAMPLES.trim_start_matches("Examples:\n");
    for line in examples.lines() {
        out.extend_from_slice(escape_roff(line).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b".fi\n.SH \"EXIT STATUS\"\n");
    for (code, meaning) in [
        ("0", "--count reached, or stdout closed by its reader"),
        ("1", "a runtime error: unreachable server, a forced transport that is not offered, a failed --select"),
        ("2", "a usage error: bad option, bad URL"),
        ("124", "--timeout ran out"),
        ("130", "interrupted: after a clean shutdown (webhook subscriptions deleted, a running --exec command stopped) lrwatch ends by the signal it got, so the shell sees it: SIGINT 130, SIGTERM 143, SIGHUP 129"),
    ] {
        out.extend_from_slice(format!(".TP\n{code}\n{}\n", escape_roff(meaning)).as_bytes());
    }
    page.render_version_section(&mut out)?;
    Ok(out)
}

/// Escapes text for a roff line: backslashes, and a leading `.` or `'` (control characters).
fn escape_roff(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Where each generated file is checked in, relative to the repository root.
    /// The man pages of the subcommands, as (file name, roff).
    pub fn subcommand_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let cli = Cli::command();
        let mut pages = Vec::new();
        for sub in cli.get_subcommands() {
            let name = format!("lrwatch-{}", sub.get_name());
            let mut out = Vec::new();
            clap_mangen::Man::new(
                sub.clone()
                    .name(&*Box::leak(name.clone().into_boxed_str()))
                    .version(env!("CARGO_PKG_VERSION")),
            )
            .render(&mut out)?;
            pages.push((format!("{name}.1"), out));
        }
        Ok(pages)
    }

    pub fn checked_in() -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![
            (
                "completions/lrwatch.bash".to_string(),
                completions(Shell::Bash),
            ),
            ("completions/_lrwatch".to_string(), completions(Shell::Zsh)),
            (
                "completions/lrwatch.fish".to_string(),
                completions(Shell::Fish),
            ),
            (
                "completions/lrwatch.elv".to_string(),
                completions(Shell::Elvish),
            ),
            (
                "completions/_lrwatch.ps1".to_string(),
                completions(Shell::PowerShell),
            ),
            ("man/lrwatch.1".to_string(), man()?),
        ];
        for (name, page) in subcommand_pages()? {
            files.push((format!("man/{name}"), page));
        }
        Ok(files)
    }

    /// Fails when a checked-in file differs from what the clap definition generates; run
    /// with `LRWATCH_BLESS=1` to rewrite them.
    #[test]
    fn checked_in_completions_and_man_page_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("LRWATCH_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (path, generated) in checked_in().unwrap() {
            let file = root.join(&path);
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
