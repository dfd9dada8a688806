//! The packaging files keep what was decided for them: the systemd unit's
//! hardening and its secrets as credentials, health and metrics on
//! loopback.

use std::path::Path;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The unit's settings, comments left out.
fn unit() -> Vec<String> {
    read("deploy/orglink.service")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_systemd_unit_drops_every_privilege_and_takes_secrets_as_credentials() {
    let unit = unit();
    for setting in [
        "CapabilityBoundingSet=",
        "ProtectKernelLogs=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "SystemCallFilter=@system-service",
        "RestrictRealtime=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "Environment=ORGLINK_HTTP_ADMIN_LISTEN=127.0.0.1:9090",
        "LoadCredential=ORGLINK_DISCORD_TOKEN:/etc/orglink/credentials/discord_token",
    ] {
        assert!(unit.iter().any(|l| l == setting), "the unit lacks {setting}");
    }
    // No secret in the service's environment: not set there, nor read
    // from a file into it.
    assert!(!unit.iter().any(|l| l.starts_with("EnvironmentFile=")), "{unit:?}");
    assert!(!unit.iter().any(|l| l.contains("TOKEN=") || l.contains("API_KEY=")), "{unit:?}");
}

/// systemd's own rating, where `systemd-analyze` is installed (Debian's
/// `systemd` package): 1.1 when this was written, 5.6 before.
#[test]
fn systemd_rates_the_unit_ok() {
    let Ok(run) = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/orglink.service"))
        .output()
    else {
        eprintln!("systemd-analyze is not installed: the rating is not checked");
        return;
    };
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "exposure above 2.0:\n{text}");
}

#[test]
fn the_container_keeps_health_and_metrics_on_loopback() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("ORGLINK_HTTP_ADMIN_LISTEN=127.0.0.1:9090"), "{dockerfile}");
}
