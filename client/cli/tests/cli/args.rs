//! The `hemma` binary: bad input and an unreachable server are explained, nothing is written.

use std::process::Command;

fn hemma() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hemma"))
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_malformed_input_line_is_named_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("essays.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"text\": \"fine\"}\n{\"id\": \"b\", \"body\": \"oops\"}\n",
    )
    .unwrap();
    let out_file = dir.path().join("emb.npy");
    let out = hemma()
        .args([
            "--server",
            &format!("http://127.0.0.1:{}", closed_port()),
            "embed",
            "--quiet",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("essays.jsonl:2: no field `text`"), "{err}");
    assert!(!out_file.exists());
}

#[test]
fn an_unreachable_server_is_explained() {
    let out = hemma()
        .args([
            "--server",
            &format!("http://127.0.0.1:{}", closed_port()),
            "health",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to http://127.0.0.1:"), "{err}");
    assert!(err.contains("SSH tunnel"), "{err}");
}
