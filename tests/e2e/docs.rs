//! The docs are tested: every `hemma` / `hemma-offload` command line in a fenced block of the
//! README and `docs/` parses with the real CLI definitions, every `HEMMA_*` variable they (or the
//! Dockerfiles and compose file) mention exists, every TOML snippet and configuration-table flag
//! is a real setting, and every runbook has its front matter and sections.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use hemma_e2e::repo_root;

/// README.md and every markdown file under docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut out = vec![repo_root().join("README.md")];
    let mut stack = vec![repo_root().join("docs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("docs/ exists").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fenced blocks of a markdown text: (info string, first line number, body).
fn fenced_blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") => {
                current = Some((trimmed[3..].trim().to_owned(), i + 2, String::new()));
            }
            Some(_) if trimmed.starts_with("```") => out.extend(current.take()),
            Some((_, _, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The logical lines of a shell block: continuations joined, heredoc bodies skipped.
fn shell_lines(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut heredoc: Option<String> = None;
    for line in body.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(at) = line.find("<<'") {
            let end: String = line[at + 3..].chars().take_while(|c| *c != '\'').collect();
            heredoc = Some(end);
        }
        let line = line.strip_prefix("$ ").unwrap_or(line);
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                out.push(std::mem::take(&mut pending));
            }
        }
    }
    out
}

/// Which CLI a command line runs, from its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cli {
    Hemma,
    Server,
}

fn which_cli(word: &str) -> Option<Cli> {
    let name = word.rsplit('/').next().unwrap_or(word);
    match name {
        "hemma" => Some(Cli::Hemma),
        "hemma-offload" => Some(Cli::Server),
        _ => None,
    }
}

/// The command lines in `line` that run one of our binaries, as argv.
fn commands_in(line: &str) -> Vec<(Cli, Vec<String>)> {
    let Some(words) = shlex::split(line) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // A quoted argument may itself be a command (`tmux new 'hemma extract ...'`).
    for w in &words {
        if w.contains(' ') {
            out.extend(commands_in(w));
        }
    }
    let mut rest = words.as_slice();
    // Leading `VAR=value` assignments and wrappers.
    while let Some(first) = rest.first() {
        let assignment = first.contains('=') && !first.starts_with('-');
        if assignment || matches!(first.as_str(), "nohup" | "exec" | "time") {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let Some(cli) = rest.first().and_then(|w| which_cli(w)) else {
        return out;
    };
    let mut argv = Vec::new();
    let mut optional = false;
    for w in rest {
        if w.starts_with('#')
            || matches!(w.as_str(), "|" | "||" | "&&" | ";" | "&" | ">" | "2>&1")
            || w.starts_with('>')
        {
            break;
        }
        // `[--format parquet]` marks optional arguments: left out here.
        if w.starts_with('[') {
            optional = true;
        }
        if !optional {
            argv.push(w.clone());
        }
        if w.ends_with(']') {
            optional = false;
        }
    }
    out.push((cli, argv));
    out
}

#[test]
fn every_documented_command_line_parses() {
    let mut parsed = 0;
    let mut failures = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (info, first_line, body) in fenced_blocks(&text) {
            if !matches!(info.as_str(), "" | "sh" | "bash" | "shell" | "console") {
                continue;
            }
            for line in shell_lines(&body) {
                for (cli, argv) in commands_in(&line) {
                    let result = match cli {
                        Cli::Hemma => hemma_cli::cli::Cli::command().try_get_matches_from(&argv),
                        Cli::Server => {
                            hemma_server::cli::Cli::command().try_get_matches_from(&argv)
                        }
                    };
                    parsed += 1;
                    if let Err(e) = result {
                        failures.push(format!(
                            "{} (block at line {first_line}): `{}`: {}",
                            file.display(),
                            argv.join(" "),
                            e.render()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        parsed >= 12,
        "only {parsed} command lines found: is the parser still finding them?"
    );
}

#[test]
fn the_line_reader_finds_commands_and_a_wrong_flag_fails() {
    let lines = shell_lines(
        "nohup hemma extract --input a.csv \\\n  --out o/ --bogus > log 2>&1 &\nssh hemma 'uptime'\n",
    );
    let found: Vec<_> = lines.iter().flat_map(|l| commands_in(l)).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let (cli, argv) = &found[0];
    assert_eq!(*cli, Cli::Hemma);
    assert_eq!(argv.last().map(String::as_str), Some("--bogus"));
    assert!(
        hemma_cli::cli::Cli::command()
            .try_get_matches_from(argv)
            .is_err()
    );
    let quoted = commands_in(
        "tmux new -s x 'target/release/hemma-offload selftest --provider migraphx [--precision fp16]'",
    );
    assert_eq!(quoted.len(), 1);
    assert_eq!(
        quoted[0].1,
        vec![
            "target/release/hemma-offload",
            "selftest",
            "--provider",
            "migraphx"
        ]
    );
}

/// Every `--flag` and `HEMMA_*` variable both CLIs define.
fn defined() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut flags, mut envs) = (BTreeSet::new(), BTreeSet::new());
    fn walk(c: &clap::Command, flags: &mut BTreeSet<String>, envs: &mut BTreeSet<String>) {
        for a in c.get_arguments() {
            if let Some(l) = a.get_long() {
                flags.insert(format!("--{l}"));
            }
            if let Some(e) = a.get_env() {
                envs.insert(e.to_string_lossy().into_owned());
            }
        }
        for s in c.get_subcommands() {
            walk(s, flags, envs);
        }
    }
    walk(&hemma_cli::cli::Cli::command(), &mut flags, &mut envs);
    walk(&hemma_server::cli::Cli::command(), &mut flags, &mut envs);
    (flags, envs)
}

fn hemma_vars(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("HEMMA_") {
        let start = i + at;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(text.len() - start);
        if before_ok {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_mentioned_variable_and_setting_exists() {
    let (flags, envs) = defined();
    // Variables read by the repository's scripts, tests and compose file also exist.
    let mut code = String::new();
    for dir in ["scripts", "tests", "tests/support", "benches", ".ci"] {
        for e in std::fs::read_dir(repo_root().join(dir)).unwrap().flatten() {
            if e.path().is_file() {
                code.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    code.push_str(&read(&repo_root().join("docker/compose.yaml")));
    let used_by_code = hemma_vars(&code);
    let mut docs = String::new();
    for f in markdown_files() {
        docs.push_str(&read(&f));
    }
    for e in std::fs::read_dir(repo_root().join("docker"))
        .unwrap()
        .flatten()
    {
        docs.push_str(&read(&e.path()));
    }
    let mut unknown = Vec::new();
    for v in hemma_vars(&docs) {
        let known = if v.ends_with('_') {
            envs.iter().any(|e| e.starts_with(&v)) // `HEMMA_LANGUAGETOOL_…` in a table
        } else {
            envs.contains(&v) || used_by_code.contains(&v)
        };
        if !known {
            unknown.push(v);
        }
    }
    assert!(
        unknown.is_empty(),
        "documented variables nothing defines: {unknown:?}"
    );

    // The README's configuration table names real `serve` flags.
    let readme = read(&repo_root().join("README.md"));
    let mut rows = 0;
    for line in readme.lines().filter(|l| l.starts_with("| `--")) {
        let flag: String = line[3..].chars().take_while(|c| *c != '`').collect();
        assert!(
            flags.contains(&flag),
            "README table row for {flag}: no such flag"
        );
        rows += 1;
    }
    assert!(rows >= 20, "{rows} configuration rows");

    // TOML snippets are valid configuration files (unknown keys are errors).
    for file in markdown_files() {
        for (info, line, body) in fenced_blocks(&read(&file)) {
            if info == "toml" {
                let tmp = tempfile::NamedTempFile::new().unwrap();
                std::fs::write(tmp.path(), &body).unwrap();
                if let Err(e) = hemma_server::config::ServeArgs::from_toml_file(tmp.path()) {
                    panic!("{}:{line}: {e}", file.display());
                }
            }
        }
    }
}

#[test]
fn runbooks_have_front_matter_and_sections() {
    let dir = repo_root().join("docs/operations");
    let mut runbooks = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        runbooks += 1;
        let text = read(&path);
        let name = path.display();
        let rest = text
            .strip_prefix("---\n")
            .unwrap_or_else(|| panic!("{name}: no front matter"));
        let (front, body) = rest
            .split_once("\n---\n")
            .unwrap_or_else(|| panic!("{name}: front matter not closed"));
        let front: serde_yaml::Value =
            serde_yaml::from_str(front).unwrap_or_else(|e| panic!("{name}: {e}"));
        let field = |k: &str| {
            front
                .get(k)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| panic!("{name}: front matter lacks `{k}`"))
        };
        assert_eq!(field("type"), "runbook", "{name}");
        assert_eq!(field("service"), "hemma-offload", "{name}");
        assert!(
            ["low", "medium", "high", "critical"].contains(&field("severity").as_str()),
            "{name}: severity"
        );
        let reviewed = field("last_reviewed");
        let date: Vec<&str> = reviewed.split('-').collect();
        assert!(
            date.len() == 3 && date.iter().all(|p| p.parse::<u32>().is_ok()) && date[0].len() == 4,
            "{name}: last_reviewed `{reviewed}` is not YYYY-MM-DD"
        );
        let mut at = 0;
        for section in [
            "## Symptoms",
            "## Diagnosis",
            "## Resolution",
            "## Prevention",
        ] {
            let found = body[at..]
                .lines()
                .position(|l| l.trim() == section)
                .unwrap_or_else(|| panic!("{name}: no `{section}` section (in this order)"));
            at += body[at..]
                .lines()
                .take(found + 1)
                .map(|l| l.len() + 1)
                .sum::<usize>();
        }
    }
    assert!(runbooks >= 2, "{runbooks} runbooks in docs/operations");
}
