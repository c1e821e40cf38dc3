//! The README's configuration table against the real `abacus serve --help`:
//! every flag has a row with its environment variable and default, and every
//! row is a flag.

use crate::common::{abacus_output, help_flags, HelpFlag};

const README: &str = include_str!("../../README.md");

/// The rows of the table under `## Configuration` (`| flag | env | default | meaning |`),
/// cells without their backticks, `—` as no value.
fn config_table(readme: &str) -> Vec<HelpFlag> {
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != "## Configuration")
        .skip_while(|l| !l.starts_with('|'));
    let header = lines
        .next()
        .expect("README has no table under ## Configuration");
    assert_eq!(
        cells(header),
        ["flag", "env", "default"],
        "the configuration table's columns"
    );
    lines
        .skip(1) // |---|---|
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let [flag, env, default] = cells(row);
            let value = |c: String| (c != "—").then_some(c);
            HelpFlag {
                flag,
                env: value(env),
                default: value(default),
            }
        })
        .collect()
}

/// The first three cells of a table row (the fourth, the meaning, is free text).
fn cells(row: &str) -> [String; 3] {
    let mut cells = row.trim().trim_start_matches('|').split('|').map(|c| {
        let c = c.trim();
        c.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or(c)
            .to_string()
    });
    std::array::from_fn(|_| cells.next().unwrap_or_default())
}

/// How `table` disagrees with `help` (empty: it does not).
fn disagreements(help: &[HelpFlag], table: &[HelpFlag]) -> Vec<String> {
    let mut out = Vec::new();
    for flag in help {
        match table.iter().find(|row| row.flag == flag.flag) {
            None => out.push(format!("{} has no row: {flag:?}", flag.flag)),
            Some(row) if row != flag => out.push(format!(
                "{}: the README says {row:?}, --help {flag:?}",
                flag.flag
            )),
            Some(_) => {}
        }
    }
    for (i, row) in table.iter().enumerate() {
        if !help.iter().any(|f| f.flag == row.flag) {
            out.push(format!("{} is not a flag of abacus serve", row.flag));
        }
        if table[..i].iter().any(|r| r.flag == row.flag) {
            out.push(format!("{} has two rows", row.flag));
        }
    }
    out
}

#[test]
fn the_configuration_table_is_the_binarys_help() {
    let help: Vec<HelpFlag> = help_flags(&abacus_output(&["serve", "--help"]))
        .into_iter()
        .filter(|f| f.flag != "--help")
        .collect();
    assert!(help.len() > 40, "too few flags read from --help: {help:?}");
    let table = config_table(README);
    let problems = disagreements(&help, &table);
    assert!(
        problems.is_empty(),
        "README.md's configuration table disagrees with `abacus serve --help`:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_table_check_catches_missing_wrong_and_extra_rows() {
    let help = help_flags(
        "Server:\n      --port <PORT>\n          Port [env: A2A_PORT=] [default: 8002]\n      \
         --secret <SECRET>\n          A secret [env: SECRET]\n      --quiet\n          No output\n",
    );
    assert_eq!(
        help,
        [
            HelpFlag {
                flag: "--port".into(),
                env: Some("A2A_PORT".into()),
                default: Some("8002".into())
            },
            HelpFlag {
                flag: "--secret".into(),
                env: Some("SECRET".into()),
                default: None
            },
            HelpFlag {
                flag: "--quiet".into(),
                env: None,
                default: None
            },
        ]
    );
    let readme = "## Configuration\n\n| flag | env | default | meaning |\n|---|---|---|---|\n\
                  | `--port` | `A2A_PORT` | `8000` | port |\n\
                  | `--secret` | `SECRET` | — | a secret |\n\
                  | `--gone` | — | — | removed |\n\nAfter the table.\n";
    let table = config_table(readme);
    assert_eq!(table.len(), 3);
    let problems = disagreements(&help, &table);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("--port: the README says"));
    assert!(problems[1].starts_with("--quiet has no row"));
    assert!(problems[2].starts_with("--gone is not a flag"));
}

/// The README's error table is `ERROR_KINDS`, row for row: code, reason,
/// HTTP status and gRPC status.
#[test]
fn the_error_table_is_the_one_the_server_uses() {
    let rows: Vec<(i32, String, u16, String)> = README
        .lines()
        .skip_while(|l| !l.starts_with("| JSON-RPC code | reason | HTTP | gRPC |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let c: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            let reason = c[1].split('`').nth(1).unwrap_or(c[1]).to_string();
            (
                c[0].parse().unwrap(),
                reason,
                c[2].parse().unwrap(),
                c[3].trim_matches('`').to_string(),
            )
        })
        .collect();
    let kinds: Vec<(i32, String, u16, String)> = abacus::protocol::ERROR_KINDS
        .iter()
        .map(|k| {
            (
                k.code,
                k.reason.to_string(),
                k.http_status.as_u16(),
                k.grpc_status.to_string(),
            )
        })
        .collect();
    assert_eq!(rows, kinds);
}
