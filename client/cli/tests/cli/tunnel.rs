//! The tunnel, for real: the runbook's own `ssh -N -L ...` command through a real OpenSSH server
//! on loopback (started here on a free port, with a throw-away key and config), `hemma extract`
//! driven through the forward; the tunnel is killed mid-run and restored, and the run resumes and
//! finishes with files identical to a run without interruption.
//!
//! Needs `sshd` (Debian `openssh-server`; `.ci/run` installs it). Where it cannot start, the test
//! says why and passes without running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hemma_e2e::fake_languagetool::{FakeLanguageTool, Settings};
use hemma_e2e::{TestServer, cache_entries, grammar_args, repo_root};
use hemma_server::config::ServeArgs;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} never listened on {port}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// An OpenSSH server on loopback, and an ssh client config whose host `hemma` points at it.
struct Sshd {
    child: Child,
    client_config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

fn start_sshd() -> Result<Sshd, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("sshd is not installed (Debian: apt-get install openssh-server)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    for key in ["host_key", "client_key"] {
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key)),
        )?;
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    let user = std::env::var("USER")
        .ok()
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .ok_or("cannot tell the current user")?;
    let root = user == "root";
    if root && !Path::new("/run/sshd").exists() {
        // sshd's compiled-in privilege-separation directory; the package's service creates it.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
    }
    let port = free_port();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
             AuthorizedKeysFile {auth}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowTcpForwarding yes\n\
             PermitRootLogin {permit}\nLogLevel ERROR\n",
            host = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            auth = d.join("authorized_keys").display(),
            permit = if root { "prohibit-password" } else { "no" },
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", sshd.display()))?;
    if let Err(e) = wait_port(port, &mut child, "sshd") {
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            use std::io::Read;
            let _ = s.read_to_string(&mut err);
        }
        return Err(format!("{e}: {err}"));
    }
    let client_config = d.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host hemma\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  LogLevel ERROR\n",
            key = d.join("client_key").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(Sshd {
        child,
        client_config,
        _dir: dir,
    })
}

/// The runbook's tunnel command, as written (the first `ssh -N -L` line).
fn runbook_tunnel() -> Vec<String> {
    let path = repo_root().join("docs/operations/hemma-server-operations.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("ssh -N -L "))
        .expect("the runbook shows the tunnel command");
    shlex::split(line).expect("the tunnel command is valid shell")
}

/// Starts the runbook's command with the test's ports and ssh config.
fn start_tunnel(sshd: &Sshd, local: u16, remote: u16) -> Child {
    let mut argv = runbook_tunnel();
    let forward = argv
        .iter_mut()
        .find(|a| a.starts_with("19000:"))
        .expect("a -L 19000:... forward");
    assert_eq!(forward, "19000:127.0.0.1:9000");
    *forward = format!("{local}:127.0.0.1:{remote}");
    let mut child = Command::new(&argv[0])
        .arg("-F")
        .arg(&sshd.client_config)
        .args(&argv[1..])
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh runs");
    wait_port(local, &mut child, "the tunnel").expect("the tunnel comes up");
    child
}

fn extract(server: &str, out: &Path, cache: &Path) -> Command {
    let mut c = Command::new(crate::hemma_bin());
    c.args([
        "--server",
        server,
        "extract",
        "--quiet",
        "--chunk-size",
        "2",
        "--concurrency",
        "1",
    ])
    .args(["--retries", "30", "--retry-wait", "0.2", "--input"])
    .arg(repo_root().join("tests/fixtures/essays/ellipse50.jsonl"))
    .arg("--out")
    .arg(out)
    .arg("--cache")
    .arg(cache);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_through_the_runbook_tunnel_survives_a_dropped_tunnel() {
    let argv = runbook_tunnel();
    for promise in ["ExitOnForwardFailure=yes", "ServerAliveInterval=30"] {
        assert!(
            argv.iter().any(|a| a == promise),
            "the runbook's tunnel lacks {promise}"
        );
    }
    let sshd = match start_sshd() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIPPED extract_through_the_runbook_tunnel: sshd cannot start here: {why}");
            return;
        }
    };
    let lt = FakeLanguageTool::start_with(Settings {
        latency: Duration::from_millis(20),
        ..Settings::default()
    })
    .await;
    let server = TestServer::start(ServeArgs {
        batch_max_rows: Some(1),
        ..grammar_args(&[lt.url()])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let direct = server.http("");
    let remote = server.addr.port();
    let local = free_port();

    let result = tokio::task::spawn_blocking(move || {
        // The reference: straight to the server, no tunnel.
        let o = extract(&direct, &d.join("whole"), &d.join("cache-a"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

        let mut tunnel = start_tunnel(&sshd, local, remote);
        let through = format!("http://127.0.0.1:{local}");
        let doctor = Command::new(crate::hemma_bin())
            .args(["--server", &through, "doctor", "--cache"])
            .arg(d.join("cache-b"))
            .output()
            .unwrap();
        assert!(
            doctor.status.success(),
            "doctor through the tunnel: {}",
            String::from_utf8_lossy(&doctor.stdout)
        );

        let mut run = extract(&through, &d.join("resumed"), &d.join("cache-b"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while cache_entries(&d.join("cache-b")).len() < 6 {
            assert!(Instant::now() < deadline, "the run never got going");
            assert!(
                run.try_wait().unwrap().is_none(),
                "the run ended before the tunnel dropped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        tunnel.kill().unwrap();
        tunnel.wait().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let kept = cache_entries(&d.join("cache-b")).len();
        assert!(kept < 50, "the run finished before the tunnel dropped");
        let mut tunnel = start_tunnel(&sshd, local, remote);
        let out = run.wait_with_output().unwrap();
        let _ = tunnel.kill();
        let _ = tunnel.wait();
        (out, d)
    })
    .await
    .unwrap();
    let (out, d) = result;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the run did not survive the dropped tunnel: {stderr}"
    );
    assert!(
        stderr.contains("retrying in"),
        "the run never noticed the dropped tunnel: {stderr}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("resumed/meta.json")).unwrap())
            .unwrap();
    assert!(meta["retries"].as_u64().unwrap() >= 1, "{meta}");
    for f in ["embeddings.npy", "handcrafted.npy", "ids.txt"] {
        assert_eq!(
            std::fs::read(d.join("whole").join(f)).unwrap(),
            std::fs::read(d.join("resumed").join(f)).unwrap(),
            "{f} differs from the uninterrupted run"
        );
    }
}
