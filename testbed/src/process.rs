//! Child processes of the control plane and the watchdog that stops them when the owner exits.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result, io_err};

/// A shell that reads process ids, one a line, until its stdin closes, then stops those
/// processes (TERM, then KILL after five seconds) and removes the data directory if asked to.
const WATCHDOG: &str = r#"
pids=
while read -r pid; do pids="$pids $pid"; done
[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt 50 ]; do
  alive=
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1; i=$((i + 1))
done
[ -n "$alive" ] && kill -KILL $pids 2>/dev/null
[ "$2" = remove ] && rm -rf "$1"
exit 0
"#;

pub(crate) struct Watchdog {
    stdin: ChildStdin,
}

impl Watchdog {
    pub(crate) fn spawn(dir: &Path, remove_dir: bool) -> Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("xero-testbed-watchdog")
            .arg(dir)
            .arg(if remove_dir { "remove" } else { "keep" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C to the owner's group must not kill the watchdog
            // before it has cleaned up.
            .process_group(0)
            .spawn()
            .map_err(io_err("start the testbed watchdog"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Start("the watchdog has no stdin".into()))?;
        Ok(Watchdog { stdin })
    }

    pub(crate) fn register(&mut self, child: &Child) -> Result<()> {
        writeln!(self.stdin, "{}", child.id())
            .map_err(io_err("register a process with the watchdog"))
    }

    pub(crate) fn into_stdin(self) -> ChildStdin {
        self.stdin
    }
}

/// Starts `program` with `args`, its output going to `log`.
pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<Child> {
    let out = File::create(log).map_err(io_err(format!("create {}", log.display())))?;
    let err = out.try_clone().map_err(io_err("duplicate a log file"))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(io_err(format!("start {}", program.display())))
}

/// An error naming the first child that has exited, with the end of its log.
pub(crate) fn check_alive(children: &mut [Child], dir: &Path) -> Result<()> {
    for child in children.iter_mut() {
        if let Ok(Some(status)) = child.try_wait() {
            let logs = ["etcd.log", "kube-apiserver.log"]
                .iter()
                .map(|name| format!("--- {name}\n{}", tail(&dir.join(name), 20)))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::Start(format!(
                "a control-plane process exited early ({status})\n{logs}"
            )));
        }
    }
    Ok(())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops the children in reverse start order (API server before etcd) and reaps them.
pub(crate) fn stop_all(children: &mut Vec<Child>) {
    while let Some(mut child) = children.pop() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Writes a new RSA private key (PEM) for signing service-account tokens.
pub(crate) fn generate_rsa_key(path: &Path) -> Result<()> {
    let status = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(path)
        .arg("2048")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(io_err("run openssl genrsa"))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Start(format!("openssl genrsa failed with {status}")))
    }
}
