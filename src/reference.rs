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
    out.extend_from_slice(b".SH ENVIRONMENT\n");
    for (name, meaning) in ENVIRONMENT {
        out.extend_from_slice(
            format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                escape_roff(name),
                escape_roff(meaning)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b".SH \"SEE ALSO\"\n");
    let mut see_also: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|sub| format!("\\fBlrwatch\\-{}\\fR(1)", escape_roff(sub.get_name())))
        .collect();
    see_also.extend(["\\fBcurl\\fR(1)", "\\fBjq\\fR(1)", "\\fBwatch\\fR(1)"].map(String::from));
    out.extend_from_slice(format!("{}\n.PP\n", see_also.join(", ")).as_bytes());
    out.extend_from_slice(
        escape_roff("The LiveResource protocol: https://github.com/fanout/liveresource").as_bytes(),
    );
    out.push(b'\n');
    page.render_version_section(&mut out)?;
    Ok(out)
}

/// The man page's ENVIRONMENT section: every variable lrwatch reads or sets (a test checks
/// that each `LRWATCH_*` name in the source is here).
const ENVIRONMENT: &[(&str, &str)] = &[
    ("NO_COLOR", "When set and not empty, no color (as --color never) unless --color always is given. TERM=dumb does the same."),
    ("ALL_PROXY, all_proxy, HTTPS_PROXY, https_proxy, HTTP_PROXY, http_proxy", "A proxy for every connection: the first of these, in this order, that holds a proxy URL is used, whatever the scheme of the URL followed (http, https, ws, wss), as the HTTP client (ureq) decides. HTTP requests and WebSockets (ws:// URLs, multiplex-ws, multiplex-socket, and those of lrwatch check) all go through it, whatever its kind: http:// (the default) with CONNECT, with Proxy-Authorization when the proxy URL has user:password@; https:// the same inside TLS to the proxy, verified as servers are (--cacert, --insecure); socks5:// (socks://), socks5h://, socks4://, socks4a:// with SOCKS, with the URL's user:password@ for socks5. socks5h and socks4a let the proxy resolve host names; socks5 and socks4 resolve them here. -v says, per origin followed, which proxy is used and where a WebSocket connects through it."),
    ("NO_PROXY, no_proxy", "Hosts that bypass the proxy, for requests and WebSockets alike: a comma-separated list of names and addresses (exact, as in the URL: an IPv6 address in brackets), .suffix and *.suffix (subdomains), prefix* and *."),
    ("LRWATCH_KEEPALIVE", "Seconds (at least 0.05; default 15): the WebSocket ping period; a socket silent for 2.5 times this is presumed dead, a stream for 3 times this. For tests and unusual networks."),
    ("LRWATCH_FALL_BACK_FOR", "Seconds (at least 0.05; default 60): how long auto stays away from a mechanism it fell back from (three failures in a row, a wrong content type, a refused subscription) before it climbs back."),
    ("LRWATCH_TEST_TERM", "1: stdout counts as a terminal (header lines, pretty-printing, color), so that tests can check terminal output without a pseudo-terminal."),
    ("LRWATCH_EVENT", "Set for each --exec command: the event (value, removed, changes, child-added, child-changed, child-removed)."),
    ("LRWATCH_URI", "Set for each --exec command: the URL as given on the command line."),
    ("LRWATCH_ETAG", "Set for each --exec command: the value's ETag, empty when it has none. NUL bytes become U+FFFD; cut to 4 KiB."),
    ("LRWATCH_TRANSPORT", "Set for each --exec command: the mechanism that delivered the event."),
    ("LRWATCH_ID", "Set for each --exec command: the item's id for child-* events, else empty. NUL bytes become U+FFFD; cut to 4 KiB."),
    ("LRWATCH_NAME", "Set for each --exec command: the NAME of a NAME=URL argument (or --urls line), else empty."),
    ("LRWATCH_SSE_EVENT", "Set for each --exec command: an event stream's event name (message when it named none), else empty. NUL bytes become U+FFFD; cut to 4 KiB."),
    ("LRWATCH_SSE_ID", "Set for each --exec command: an event stream's last event id, else empty. NUL bytes become U+FFFD; cut to 4 KiB."),
];

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

    /// Every `LRWATCH_*` variable the source names (read by `config.rs`, set by `exec.rs`),
    /// `NO_COLOR` and every proxy variable ureq reads are in the man page's ENVIRONMENT, and
    /// the page has a SEE ALSO. `LRWATCH_BLESS` is read by the test below only, not by lrwatch.
    #[test]
    fn man_page_names_every_environment_variable() {
        fn sources(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut texts = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut texts,
        );
        let mut named: Vec<String> = texts
            .iter()
            .flat_map(|text| text.split("\"LRWATCH_").skip(1))
            .filter_map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                (!name.is_empty() && rest[name.len()..].starts_with('"'))
                    .then(|| format!("LRWATCH_{name}"))
            })
            .filter(|name| name != "LRWATCH_BLESS")
            .collect();
        named.sort();
        named.dedup();
        assert!(named.len() >= 7, "{named:?}");
        named.extend(
            [
                "NO_COLOR",
                "ALL_PROXY",
                "all_proxy",
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
                "NO_PROXY",
                "no_proxy",
            ]
            .map(String::from),
        );
        let page = String::from_utf8(man().unwrap())
            .unwrap()
            .replace("\\-", "-")
            .replace("\\fB", " ")
            .replace("\\fR", " ");
        let section = page
            .split(".SH ENVIRONMENT\n")
            .nth(1)
            .and_then(|rest| rest.split(".SH ").next())
            .expect("an ENVIRONMENT section");
        for name in &named {
            assert!(
                section
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == name),
                "{name} is not in the man page's ENVIRONMENT"
            );
        }
        assert!(page.contains(".SH \"SEE ALSO\"\n"));
        assert!(page.contains("lrwatch-serve"));
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
