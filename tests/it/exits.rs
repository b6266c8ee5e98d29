//! Every exit is clean: `--timeout` bounds the whole run, `--exec` commands included; a
//! command still running when lrwatch stops early is stopped with its process group; SIGTERM
//! and SIGHUP get the clean shutdown Ctrl-C gets (webhook subscriptions deleted) and end
//! lrwatch by the same signal. Processes are found in /proc.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::callbacks::subscriptions;
use crate::harness::*;

/// A marker unique to this test process and call, put in the command as a shell comment so
/// the command's `sh` can be found in /proc.
fn marker(name: &str) -> String {
    format!("marker-{name}-{}", std::process::id())
}

/// /proc/PID/stat as (pid, state, ppid, pgrp), for every process.
fn processes() -> Vec<(u32, String, u32, u32)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(pgrp)) = (
            fields.get(1).and_then(|f| f.parse().ok()),
            fields.get(2).and_then(|f| f.parse().ok()),
        ) else {
            continue;
        };
        all.push((pid, fields[0].to_string(), ppid, pgrp));
    }
    all
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The processes of the command lrwatch (`parent`) runs: its `sh` (a child whose command line
/// holds `marker`) and the children of that `sh`. Killed with SIGKILL when dropped, so a
/// failing test leaves nothing behind.
struct Group(Vec<u32>);

impl Group {
    fn of(parent: u32, marker: &str) -> Group {
        let all = processes();
        let sh = all
            .iter()
            .find(|&&(pid, _, ppid, _)| ppid == parent && cmdline(pid).contains(marker))
            .map(|&(pid, ..)| pid)
            .unwrap_or_else(|| panic!("no command with {marker} running"));
        let mut pids = vec![sh];
        pids.extend(
            all.iter()
                .filter(|&&(_, _, ppid, _)| ppid == sh)
                .map(|&(pid, ..)| pid),
        );
        Group(pids)
    }

    /// Those still alive (zombies awaiting their reaper are not).
    fn alive(&self) -> Vec<String> {
        processes()
            .into_iter()
            .filter(|(pid, state, ..)| self.0.contains(pid) && state != "Z" && state != "X")
            .map(|(pid, ..)| format!("{pid}: {}", cmdline(pid)))
            .collect()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|&&pid| {
            processes()
                .iter()
                .any(|(p, state, ..)| *p == pid && state != "Z")
        }) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// lrwatch with `args` then `--exec 'sleep 1000 & echo run; wait # MARKER'` on a counter:
/// returns the run, once the command runs, its processes and when lrwatch started.
fn running_command(base: &str, name: &str, args: &[&str]) -> (Run, Group, Instant) {
    running_command_after(base, name, args, "")
}

/// [`running_command`], with `prelude` run first by the command's shell.
fn running_command_after(
    base: &str,
    name: &str,
    args: &[&str],
    prelude: &str,
) -> (Run, Group, Instant) {
    let url = format!("{base}/counter/{name}");
    let marker = marker(name);
    // `sleep` is a child of `sh` (started before "run" is printed), not `sh` itself.
    let command = format!("{prelude}sleep 1000 & echo run; wait # {marker}");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--exec", &command, &url]);
    let started = Instant::now();
    let mut run = lrwatch(&all);
    assert_eq!(run.line(), "run");
    let group = Group::of(run.pid(), &marker);
    assert_eq!(group.alive().len(), 2, "sh and sleep");
    (run, group, started)
}

fn assert_exits_124_leaving_nothing(args: &[&str], name: &str) {
    let base = reference_server();
    let (mut run, group, started) = running_command(&base, name, args);
    let status = run.wait();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(124), "{:?}", run.stderr_seen);
    // --timeout 2; `sleep` ends at SIGTERM, so no grace is waited for.
    assert!(took < Duration::from_millis(3500), "exit took {took:?}");
    assert_eq!(group.alive(), Vec::<String>::new(), "left behind");
}

#[test]
fn timeout_stops_a_command_that_count_waits_for() {
    assert_exits_124_leaving_nothing(&["-n", "1", "-t", "2"], "count-timeout");
}

#[test]
fn timeout_stops_the_running_command_with_its_children() {
    assert_exits_124_leaving_nothing(&["-t", "2"], "timeout");
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    let base = reference_server();
    // Ignored signals stay ignored in children: neither sh nor sleep ends at SIGTERM.
    let (mut run, group, started) =
        running_command_after(&base, "ignores-term", &["-t", "1"], "trap '' TERM; ");
    assert_eq!(run.wait().code(), Some(124), "{:?}", run.stderr_seen);
    let took = started.elapsed();
    // --timeout 1, then the 2 s grace, then SIGKILL.
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(4500),
        "exit took {took:?}"
    );
    assert_eq!(group.alive(), Vec::<String>::new(), "left behind");
}

#[test]
fn count_lets_the_last_command_finish() {
    let base = reference_server();
    let url = format!("{base}/counter/finish");
    let dir = std::env::temp_dir();
    for (i, extra) in [&[][..], &["-t", "30"][..]].iter().enumerate() {
        let file = dir.join(format!("lrwatch-finish-{}-{i}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let command = format!("sleep 1; echo done > '{}'", file.display());
        let mut args = vec!["-n", "1"];
        args.extend_from_slice(extra);
        args.extend(["--exec", &command, &url]);
        let mut run = lrwatch(&args);
        assert_eq!(run.wait().code(), Some(0), "{:?}", run.stderr_seen);
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            Some("done\n"),
            "with {extra:?}"
        );
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn a_fatal_error_stops_the_running_command() {
    // The first poll is small; the next is over --max-body, which ends following (exit 1).
    let server = scripted(|n, _| match n {
        0 => (200, h(&[("Content-Type", "text/plain")]), "small".into()),
        _ => (200, h(&[("Content-Type", "text/plain")]), "x".repeat(200)),
    });
    let (mut run, group, _) = running_command(
        &server.base,
        "error",
        &[
            "--transport",
            "poll",
            "--interval",
            "0.2",
            "--max-body",
            "100",
        ],
    );
    assert_eq!(run.wait().code(), Some(1), "{:?}", run.stderr_seen);
    assert_eq!(group.alive(), Vec::<String>::new(), "left behind");
}

/// SIGTERM and SIGHUP: subscriptions deleted, the command stopped, death by that signal.
#[test]
fn sigterm_and_sighup_shut_down_cleanly_and_end_by_that_signal() {
    for (name, number) in [("TERM", 15), ("HUP", 1)] {
        let base = reference_server();
        let (mut run, group, _) = running_command(
            &base,
            &format!("sig{name}"),
            &["-v", "--transport", "value-callback"],
        );
        run.stderr_until("subscribed: ");
        assert_eq!(subscriptions(&base).as_array().unwrap().len(), 1);
        Command::new("kill")
            .args([&format!("-{name}"), &run.pid().to_string()])
            .status()
            .unwrap();
        let status = run.wait();
        assert_eq!(status.signal(), Some(number), "SIG{name}: {status:?}");
        assert_eq!(
            subscriptions(&base),
            serde_json::json!([]),
            "SIG{name}: a subscription was left behind"
        );
        assert_eq!(
            group.alive(),
            Vec::<String>::new(),
            "SIG{name}: left behind"
        );
    }
}

/// lrwatch on a flood of events, its stdout a pipe that is never read (as `lrwatch URL |
/// sleep 30`), stderr collected; the pipe's reading end is returned, to hold it open.
fn flooding_a_pipe_nobody_reads(args: &[&str]) -> (std::process::Child, std::process::ChildStdout) {
    let base = endless(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        b"data: {\"n\":1}\n\n",
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrwatch"));
    without_proxy(&mut cmd)
        .args(args)
        .arg(format!("{base}/s"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn lrwatch");
    let unread = child.stdout.take().unwrap();
    (child, unread)
}

/// Whether a thread of process `pid` waits in a write to a pipe (its wchan is `pipe_write`, or `anon_pipe_write` on newer kernels).
fn writing_into_a_full_pipe(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.ends_with("pipe_write"))
    })
}

/// The exit status of `child` within BOUND, else it is killed and the test fails.
fn exits_within_bound(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lrwatch did not exit within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Before blocked writes to stdout were interrupted, a write into a full pipe held the run:
/// neither --timeout nor a signal ended it (it ran until killed).
#[test]
fn timeout_and_signals_end_the_run_while_stdout_is_not_read() {
    let (mut run, _unread) = flooding_a_pipe_nobody_reads(&["-t", "1"]);
    assert_eq!(exits_within_bound(&mut run).code(), Some(124));

    let (mut run, _unread) = flooding_a_pipe_nobody_reads(&[]);
    // The signal comes once a write into the full pipe waits (a thread of lrwatch in the
    // kernel's pipe_write).
    let deadline = Instant::now() + BOUND;
    while !writing_into_a_full_pipe(run.id()) {
        assert!(Instant::now() < deadline, "stdout never filled");
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(exits_within_bound(&mut run).signal(), Some(15));
}

/// A flood of events slower to print than they come (`--diff` of 50 KB documents): --timeout
/// still ends the run. It ran on until killed: the deadline was looked at only when the queue
/// ran dry, and a wait of nothing past it still took the update that, under a flood, was there.
#[test]
fn timeout_ends_a_flood_that_never_lets_the_queue_run_dry() {
    let items: Vec<String> = (0..1000)
        .map(|i| format!("{{\"k\":{i},\"v\":\"{}\"}}", "x".repeat(40)))
        .collect();
    let event = format!("data: {{\"items\":[{}]}}\n\n", items.join(","));
    let base = endless(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        Box::leak(event.into_bytes().into_boxed_slice()),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrwatch"));
    without_proxy(&mut cmd)
        .args(["--diff", "-t", "1", &format!("{base}/s")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut run = cmd.spawn().expect("spawn lrwatch");
    assert_eq!(exits_within_bound(&mut run).code(), Some(124));
}
