//! `docker/`: no Docker engine runs here, so the files are checked for what they promise: the
//! compose file binds every port to loopback, mounts the model folder and the caches as volumes
//! and passes the AMD GPU devices; every Dockerfile runs as a non-root user with a healthcheck and
//! copies only files that exist.

use hemma_e2e::repo_root;
use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker/compose.yaml")).unwrap();
    let mut c: Value = serde_yaml::from_str(&text).expect("compose.yaml is YAML");
    // The LanguageTool services share one definition through a YAML merge key, as compose reads it.
    c.apply_merge().expect("merge keys resolve");
    c
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
    let languagetools: Vec<&str> = services
        .keys()
        .filter_map(Value::as_str)
        .filter(|n| n.starts_with("languagetool-"))
        .collect();
    assert!(
        languagetools.len() >= 2,
        "several LanguageTool instances: {languagetools:?}"
    );
    let urls: Vec<String> = languagetools
        .iter()
        .map(|n| format!("http://{n}:8081"))
        .collect();
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
        if name.starts_with("languagetool-") {
            assert_eq!(s["mem_limit"].as_str(), Some("3g"), "{name}");
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
            Some(urls.join(",").as_str()),
            "{name}: every LanguageTool instance, and only those"
        );
        for lt in &languagetools {
            assert!(
                s["depends_on"][*lt].is_mapping(),
                "{name}: does not wait for {lt}"
            );
        }
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

/// The workspace's packages and, for each, its binaries (from `cargo metadata`).
fn workspace_packages() -> Vec<(String, Vec<String>)> {
    let out = crate::cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    let meta: serde_json::Value = serde_json::from_str(&out).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let bins = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), bins)
        })
        .collect()
}

#[test]
fn every_package_and_binary_the_build_files_name_exists() {
    let packages = workspace_packages();
    let bins: Vec<&String> = packages.iter().flat_map(|(_, b)| b).collect();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo_root().join("docker"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Dockerfile")
        })
        .collect();
    files.push(repo_root().join("scripts/demo.sh"));
    let mut named = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap().replace("\\\n", " ");
        for line in text.lines().filter(|l| l.contains("cargo ")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            for pair in words.windows(2) {
                let (flag, value) = (pair[0], pair[1]);
                if flag == "-p" || flag == "--package" {
                    named += 1;
                    assert!(
                        packages.iter().any(|(p, _)| p == value),
                        "{}: `-p {value}` is not a workspace package",
                        path.display()
                    );
                }
                if flag == "--bin" {
                    named += 1;
                    assert!(
                        bins.iter().any(|b| *b == value),
                        "{}: `--bin {value}` is not a workspace binary",
                        path.display()
                    );
                }
            }
        }
        for copied in ["/usr/local/bin/hemma-offload", "/usr/local/bin/hemma "] {
            if text.contains(copied) {
                let bin = copied.trim().rsplit('/').next().unwrap();
                assert!(bins.iter().any(|b| *b == bin), "no workspace binary {bin}");
            }
        }
    }
    assert!(
        named >= 4,
        "the Dockerfiles and demo name the server and CLI packages"
    );
}
