//! `docker/`: no Docker engine runs here, so the files are checked for what they promise: the
//! compose file binds every port to loopback, mounts the model folder and the caches as volumes
//! and passes the AMD GPU devices; every Dockerfile runs as a non-root user with a healthcheck and
//! copies only files that exist.

use hemma_offload_e2e::repo_root;
use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker/compose.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("compose.yaml is YAML")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_binds_loopback_and_mounts_volumes() {
    let c = compose();
    let services = c["services"].as_mapping().expect("services");
    assert!(services.len() >= 4);
    for (name, s) in services {
        let name = name.as_str().unwrap();
        let ports = strings(s.get("ports"));
        assert!(!ports.is_empty(), "{name} publishes nothing");
        for p in &ports {
            assert!(
                p.starts_with("127.0.0.1:"),
                "{name}: port {p} is not bound to 127.0.0.1"
            );
        }
        assert!(
            strings(s.get("networks")).contains(&"hemma".to_owned()),
            "{name}: not on the hemma network"
        );
        let dockerfile = s["build"]["dockerfile"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no build"));
        assert!(
            repo_root().join(dockerfile).exists(),
            "{name}: {dockerfile} missing"
        );
        if name == "languagetool" {
            continue;
        }
        let volumes = strings(s.get("volumes"));
        assert!(
            volumes.iter().any(|v| v.ends_with(":/models:ro")),
            "{name}: model folder not a read-only volume: {volumes:?}"
        );
        assert!(
            volumes.iter().any(|v| v.ends_with(":/cache")),
            "{name}: no cache volume: {volumes:?}"
        );
        assert_eq!(
            s["environment"]["HEMMA_LANGUAGETOOL_URL"].as_str(),
            Some("http://languagetool:8081"),
            "{name}"
        );
        assert!(
            s["depends_on"]["languagetool"].is_mapping(),
            "{name}: does not wait for LanguageTool"
        );
        assert_eq!(
            strings(s.get("profiles")).len(),
            1,
            "{name}: one profile per accelerator"
        );
    }
    let amd = &c["services"]["hemma-amd"];
    assert_eq!(
        amd["environment"]["HEMMA_PROVIDER"].as_str(),
        Some("migraphx")
    );
    assert_eq!(strings(amd.get("devices")), vec!["/dev/kfd", "/dev/dri"]);
    let groups = strings(amd.get("group_add"));
    assert!(
        groups.contains(&"video".into()) && groups.contains(&"render".into()),
        "{groups:?}"
    );
    let nvidia = &c["services"]["hemma-nvidia"];
    assert_eq!(
        nvidia["environment"]["HEMMA_PROVIDER"].as_str(),
        Some("cuda")
    );
    assert_eq!(
        nvidia["deploy"]["resources"]["reservations"]["devices"][0]["driver"].as_str(),
        Some("nvidia")
    );
}

#[test]
fn dockerfiles_run_unprivileged_with_a_healthcheck_and_existing_sources() {
    let dir = repo_root().join("docker");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("Dockerfile") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(e.path()).unwrap();
        // Join continuation lines into instructions.
        let joined = text.replace("\\\n", " ");
        let instructions: Vec<&str> = joined
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let last_from = instructions
            .iter()
            .rposition(|l| l.starts_with("FROM "))
            .unwrap();
        let runtime = &instructions[last_from..];
        let user = runtime
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{name}: runs as root"));
        assert!(!["root", "0"].contains(&user.trim()), "{name}: USER {user}");
        assert!(
            runtime.iter().any(|l| l.starts_with("HEALTHCHECK ")),
            "{name}: no HEALTHCHECK"
        );
        for l in &instructions {
            if let Some(args) = l.strip_prefix("COPY ") {
                if args.starts_with("--from") {
                    continue;
                }
                let parts: Vec<&str> = args.split_whitespace().collect();
                for src in &parts[..parts.len() - 1] {
                    if *src != "." {
                        assert!(
                            repo_root().join(src).exists(),
                            "{name}: COPY {src}: no such path"
                        );
                    }
                }
            }
        }
        if name != "Dockerfile.languagetool" {
            assert!(
                runtime.iter().any(|l| l.starts_with("VOLUME ")
                    && l.contains("/models")
                    && l.contains("/cache")),
                "{name}: model and cache volumes"
            );
            assert!(
                runtime.iter().any(|l| l.contains("HEMMA_NLP_MODELS_DIR")),
                "{name}: NLP models not configured"
            );
        }
    }
    assert_eq!(
        checked, 4,
        "Dockerfiles for cpu, cuda, rocm and LanguageTool"
    );
}
