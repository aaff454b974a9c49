//! The real `rekey` binary against the in-process Okta and Auth0 fakes
//! (`rekey_testkit::{OktaFake, Auth0Fake}`, whose token endpoints answer only for live
//! secrets): a drill and an incident of both, 20 % injected faults, and a crash at every step
//! boundary then resume — each ending with exactly one working secret per client, the one the
//! consumer holds.

use rekey_testkit::{Auth0Fake, OktaFake};

use crate::harness::Workspace;

const OKTA_TOKEN: &str = "00OktaE2eApiTokenNeverShown000000000000000";
const AUTH0_TOKEN: &str = "eyJAuth0E2eManagementTokenNeverShown.0.0";
const OLD_OKTA: &str = "0ld-0kta-Secret-E2E-Never-Shown-0000000000";
const OLD_AUTH0: &str = "0ld-Auth0-Secret-E2E-Never-Shown-000000000";
const APP: &str = "0oaE2Eweb00000000000";
const CLIENT_OKTA: &str = "0oaE2Eweb00000000000";
const CLIENT_AUTH0: &str = "Xk3f9QpZr7LmN2vB8sT1";
const AUDIENCE: &str = "https://api.acme.test/";

const ENV: [(&str, &str); 2] = [
    ("OKTA_E2E_TOKEN", OKTA_TOKEN),
    ("AUTH0_E2E_TOKEN", AUTH0_TOKEN),
];

struct Oauth {
    okta: OktaFake,
    auth0: Auth0Fake,
    ws: Workspace,
}

async fn setup() -> Oauth {
    let okta = OktaFake::start(OKTA_TOKEN).await;
    let old_id = okta.add_app(APP, CLIENT_OKTA, OLD_OKTA);
    let auth0 = Auth0Fake::start(AUTH0_TOKEN, AUDIENCE).await;
    auth0.add_client(CLIENT_AUTH0, OLD_AUTH0);
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(
        ws.path().join("clients.env"),
        format!("OKTA_SECRET={OLD_OKTA}\nAUTH0_SECRET={OLD_AUTH0}\n"),
    )
    .unwrap();
    let t = Oauth { okta, auth0, ws };
    t.write_inventory(&old_id);
    t
}

impl Oauth {
    fn write_inventory(&self, okta_secret_id: &str) {
        let file = self.ws.path().join("clients.env");
        std::fs::write(
            self.ws.path().join("inventory/acme.yaml"),
            format!(
                "credentials:
  - id: okta-web
    kind: oauth_client_secret
    owner: team-web
    provider: okta
    client_id: {CLIENT_OKTA}
    domain: {}
    app_id: {APP}
    secret_id: {okta_secret_id}
    api_token_env: OKTA_E2E_TOKEN
    delivered_to:
      - env_file: {{ path: {file}, key: OKTA_SECRET, field: client_secret }}
  - id: auth0-ml
    kind: oauth_client_secret
    owner: team-ml
    provider: auth0
    client_id: {CLIENT_AUTH0}
    domain: {}
    audience: {AUDIENCE}
    api_token_env: AUTH0_E2E_TOKEN
    delivered_to:
      - env_file: {{ path: {file}, key: AUTH0_SECRET, field: client_secret }}
",
                self.okta.domain(),
                self.auth0.domain(),
                file = file.display()
            ),
        )
        .unwrap();
    }

    fn consumer(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.ws.path().join("clients.env")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in the env file"))
            .to_owned()
    }

    /// One working secret per client, the one the consumer holds, and not `old`. Returns the
    /// Okta secret's id and both secrets.
    fn assert_rotated(&self, old_okta: &str, old_auth0: &str) -> (String, String, String) {
        let okta = self.consumer("OKTA_SECRET");
        let auth0 = self.consumer("AUTH0_SECRET");
        assert_ne!(okta, old_okta);
        assert_ne!(auth0, old_auth0);
        let secrets = self.okta.secrets(APP);
        assert_eq!(secrets.len(), 1, "one Okta secret left: {secrets:?}");
        assert!(secrets[0].1, "and it is active");
        assert!(
            self.okta.accepts(CLIENT_OKTA, &okta),
            "Okta takes the new one"
        );
        assert!(!self.okta.accepts(CLIENT_OKTA, old_okta), "not the old one");
        assert_eq!(
            self.auth0.secret(CLIENT_AUTH0).as_deref(),
            Some(auth0.as_str())
        );
        assert!(self.auth0.accepts(CLIENT_AUTH0, &auth0));
        assert!(!self.auth0.accepts(CLIENT_AUTH0, old_auth0));
        (secrets[0].0.clone(), okta, auth0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_drill_rotates_okta_and_auth0() {
    let t = setup().await;
    let mut seen = String::new();
    let r = t.ws.rekey_seen(
        &["run", "--yes", "--reason", "OAUTH-DRILL"],
        &ENV,
        &mut seen,
    );
    r.ok("drill");
    assert!(!r.stderr.contains("no provider"), "{}", r.stderr);
    let (_, okta, auth0) = t.assert_rotated(OLD_OKTA, OLD_AUTH0);
    assert_eq!(t.auth0.rotations(), 1);
    t.ws.assert_no_secrets(
        &seen,
        &[OLD_OKTA, OLD_AUTH0, &okta, &auth0, OKTA_TOKEN, AUTH0_TOKEN],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_incident_deactivates_the_exposed_okta_secret_first() {
    let t = setup().await;
    let mut seen = String::new();
    t.ws.rekey_seen(
        &[
            "run",
            "--yes",
            "--mode",
            "incident",
            "--reason",
            "OAUTH-INC",
        ],
        &ENV,
        &mut seen,
    )
    .ok("incident");
    let (_, okta, auth0) = t.assert_rotated(OLD_OKTA, OLD_AUTH0);
    let events = t.ws.audit_events(None, &mut seen);
    let off = crate::harness::position(
        &events,
        "step_succeeded",
        "okta-web/okta-deactivate-exposed",
    );
    let made = crate::harness::position(&events, "step_started", "okta-web/okta-create");
    assert!(
        off < made,
        "the exposed secret is off before a new one exists"
    );
    t.ws.assert_no_secrets(
        &seen,
        &[OLD_OKTA, OLD_AUTH0, &okta, &auth0, OKTA_TOKEN, AUTH0_TOKEN],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_faults_still_converge() {
    let t = setup().await;
    t.okta.set_faults(0.2, 7);
    t.auth0.set_faults(0.2, 9);
    let mut seen = String::new();
    t.ws.rekey_seen(
        &["run", "--yes", "--reason", "OAUTH-FAULTS"],
        &ENV,
        &mut seen,
    )
    .ok("drill with 20% faults");
    let (_, okta, auth0) = t.assert_rotated(OLD_OKTA, OLD_AUTH0);
    assert!(t.okta.faults_injected() + t.auth0.faults_injected() > 0);
    t.ws.assert_no_secrets(&seen, &[&okta, &auth0, OKTA_TOKEN, AUTH0_TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_crash_at_every_point_then_resume_converges() {
    let t = setup().await;
    let mut seen = String::new();
    let mut secrets: Vec<String> = vec![OLD_OKTA.into(), OLD_AUTH0.into()];
    let (mut old_okta, mut old_auth0) = (OLD_OKTA.to_owned(), OLD_AUTH0.to_owned());
    let mut point = 0u32;
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("CRASH-{point}");
        let mut crashing = ENV.to_vec();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let r = t.ws.rekey_seen(
            &["run", "--yes", "--concurrency", "1", "--reason", &reason],
            &crashing,
            &mut seen,
        );
        let done = r.code == Some(0);
        if !done {
            assert_eq!(
                r.code, None,
                "crash point {point}: expected an abort\n{}",
                r.stderr
            );
            let id = t.ws.run_ids(&ENV)[0].clone();
            t.ws.rekey_seen(&["resume", &id], &ENV, &mut seen)
                .ok(&format!("resume after crash point {point}"));
        }
        let (id, okta, auth0) = t.assert_rotated(&old_okta, &old_auth0);
        secrets.extend([okta.clone(), auth0.clone()]);
        (old_okta, old_auth0) = (okta, auth0);
        t.write_inventory(&id);
        if done {
            break;
        }
    }
    assert!(point > 10, "only {point} crash points were reached");
    let shown: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain([OKTA_TOKEN, AUTH0_TOKEN])
        .collect();
    t.ws.assert_no_secrets(&seen, &shown);
}
