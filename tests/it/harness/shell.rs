//! Runs a generated AWS CLI script with `aws` replaced by a stand-in that
//! records its arguments, on a `PATH` that holds nothing else: a command
//! other than the shell's builtins and `aws` is "not found", and the
//! script (`set -e`) stops there.

use std::path::Path;
use std::process::Command;

/// What a script did.
#[derive(Debug)]
pub struct ScriptRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Each `aws` call's arguments, in order.
    pub aws_calls: Vec<Vec<String>>,
    /// The files in the directory it ran in, afterwards.
    pub files: Vec<String>,
}

const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// The stand-in `aws`: records its arguments; `iam get-role` succeeds only
/// when `ROLE_EXISTS` is set, except for the ARN query that ends a script.
const AWS: &str = r#"#!/bin/bash
for arg in "$@"; do printf '%s\x1f' "$arg" >> "$AWS_LOG"; done
printf '\x1e' >> "$AWS_LOG"
if [ "$2" = get-role ]; then
  if [ "${5:-}" = --query ]; then echo "arn:aws:iam::123456789012:role/$4"; exit 0; fi
  if [ -n "${ROLE_EXISTS:-}" ]; then echo '{"Role":{}}'; exit 0; fi
  echo "An error occurred (NoSuchEntity) when calling the GetRole operation" >&2; exit 254
fi
exit 0
"#;

/// Whether `bash -n` accepts `script`.
pub fn bash_parses(script: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("/bin/bash").arg("-n").arg(&path).output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Runs `script` with bash in an empty directory; `role_exists` makes
/// `aws iam get-role` find the role.
pub fn run_script(script: &str, role_exists: bool) -> ScriptRun {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let aws = bin.join("aws");
    std::fs::write(&aws, AWS).unwrap();
    make_executable(&aws);
    let log = dir.path().join("aws.log");
    let script_path = dir.path().join("script.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut command = Command::new("/bin/bash");
    command.arg(&script_path).current_dir(&work).env_clear().env("PATH", &bin).env("AWS_LOG", &log);
    if role_exists {
        command.env("ROLE_EXISTS", "1");
    }
    let out = command.output().unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let aws_calls = log
        .split(RECORD)
        .filter(|r| !r.is_empty())
        .map(|r| r.split(FIELD).filter(|f| !f.is_empty()).map(str::to_owned).collect())
        .collect();
    let files =
        std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    ScriptRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        aws_calls,
        files,
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
