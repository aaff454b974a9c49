//! Hand-built reports for the renderers' tests: a realistic three-credential drill, and a
//! generated report of many credentials for size checks.

use jiff::Timestamp;

use crate::model::{
    CredentialReport, Evidence, FailureReport, RunReport, RunSummary, StepReport, Summary,
    TimeToSafe,
};
use crate::scorecard::{KindStats, Pole, Scorecard, TimeToSafeEstimate};

pub(crate) const RUN: &str = "run-20250301-7f3a";
pub(crate) const HEAD: &str = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2";
/// Everything a hostile store row could hold: a cell break, markup, a second line, a terminal
/// escape (clear screen) and a bidi override.
pub(crate) const EVIL: &str = "password authentication failed for user \"billing_app\" | \
     pg_hba.conf <script>alert('x')</script>\nhint: check `pg_hba.conf` \u{1b}[2J& retry\u{202e}";

struct S {
    id: &'static str,
    phase: &'static str,
    call: &'static str,
    effect: &'static str,
    state: &'static str,
    time: Option<(i64, i64)>,
    human_ms: i64,
    retries: i64,
    consumer: Option<&'static str>,
    error: Option<&'static str>,
}

fn s(id: &'static str, phase: &'static str, call: &'static str, state: &'static str) -> S {
    S {
        id,
        phase,
        call,
        effect: "write",
        state,
        time: None,
        human_ms: 0,
        retries: 0,
        consumer: None,
        error: None,
    }
}

impl S {
    fn at(mut self, start: i64, end: i64) -> Self {
        self.time = Some((start, end));
        self
    }

    fn step(self) -> StepReport {
        let name = self.id.split_once('/').map_or(self.id, |(_, n)| n);
        let name = name.split_once('[').map_or(name, |(n, _)| n);
        StepReport {
            id: self.id.to_owned(),
            step: name.to_owned(),
            phase: self.phase.to_owned(),
            action: format!("x.{name}"),
            provider: self.call.split(':').next().unwrap_or("").to_owned(),
            call: self.call.to_owned(),
            effect: self.effect.to_owned(),
            state: self.state.to_owned(),
            irreversible: self.phase == "cleanup",
            start_ms: self.time.map(|t| t.0),
            end_ms: self.time.map(|t| t.1),
            work_ms: self.time.map(|(a, b)| b - a - self.human_ms),
            human_ms: self.human_ms,
            retries: self.retries,
            attempts: self.retries + i64::from(self.time.is_some()),
            consumer: self.consumer.map(str::to_owned),
            error: self.error.map(str::to_owned),
        }
    }
}

fn credential(
    id: &str,
    kind: &str,
    owner: Option<&str>,
    outcome: &str,
    steps: Vec<StepReport>,
) -> CredentialReport {
    let start_ms = steps.iter().filter_map(|s| s.start_ms).min();
    let end_ms = steps.iter().filter_map(|s| s.end_ms).max();
    CredentialReport {
        id: id.to_owned(),
        kind: kind.to_owned(),
        owner: owner.map(str::to_owned),
        strategy: "rotate first".to_owned(),
        outcome: outcome.to_owned(),
        start_ms,
        end_ms,
        duration_ms: start_ms.zip(end_ms).map(|(a, b)| b - a),
        human_ms: steps.iter().map(|s| s.human_ms).sum(),
        steps,
        delivered_to: Vec::new(),
        fingerprint: None,
        failure: None,
    }
}

/// A drill of three credentials: one rotated with a manual step, one rolled back after its
/// verify failed with [`EVIL`] as the error, one never started; with a scorecard.
pub(crate) fn report() -> RunReport {
    let aws = "aws-prod-deploy";
    let mut rotated = credential(
        aws,
        "aws_iam_access_key",
        Some("platform-team"),
        "rotated",
        vec![
            S {
                effect: "read",
                ..s(
                    "aws-prod-deploy/list-keys",
                    "prepare",
                    "iam:ListAccessKeys",
                    "succeeded",
                )
            }
            .at(0, 420)
            .step(),
            S {
                effect: "create",
                retries: 1,
                ..s(
                    "aws-prod-deploy/create-key",
                    "mint",
                    "iam:CreateAccessKey",
                    "succeeded",
                )
            }
            .at(420, 1_650)
            .step(),
            S {
                consumer: Some("secretsmanager:prod/deploy"),
                ..s(
                    "aws-prod-deploy/deliver[secretsmanager:prod/deploy]",
                    "deliver",
                    "secretsmanager:PutSecretValue",
                    "succeeded",
                )
            }
            .at(1_650, 2_900)
            .step(),
            S {
                effect: "human",
                human_ms: 240_000,
                consumer: Some("ci:acme/deploy"),
                ..s(
                    "aws-prod-deploy/update-ci[ci:acme/deploy]",
                    "deliver",
                    "manual: set the CI variable",
                    "succeeded",
                )
            }
            .at(2_900, 247_900)
            .step(),
            S {
                effect: "verify",
                ..s(
                    "aws-prod-deploy/verify",
                    "verify",
                    "sts:GetCallerIdentity",
                    "succeeded",
                )
            }
            .at(247_900, 252_300)
            .step(),
            S {
                effect: "disable",
                ..s(
                    "aws-prod-deploy/disable-old",
                    "revoke",
                    "iam:UpdateAccessKey",
                    "succeeded",
                )
            }
            .at(252_300, 253_100)
            .step(),
            S {
                effect: "delete",
                ..s(
                    "aws-prod-deploy/delete-old",
                    "cleanup",
                    "iam:DeleteAccessKey",
                    "succeeded",
                )
            }
            .at(253_100, 253_950)
            .step(),
        ],
    );
    rotated.delivered_to = vec![
        "secretsmanager:prod/deploy".to_owned(),
        "ci:acme/deploy".to_owned(),
    ];
    rotated.fingerprint = Some(
        "hmac-sha256:k7f3a9c1:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            .to_owned(),
    );

    let mut rolled_back = credential(
        "pg-billing-app",
        "postgres_role_password",
        Some("billing"),
        "rolled_back",
        vec![
            S {
                effect: "read",
                ..s(
                    "pg-billing-app/pick-role",
                    "prepare",
                    "SELECT pg_roles",
                    "succeeded",
                )
            }
            .at(100, 300)
            .step(),
            S {
                effect: "create",
                ..s(
                    "pg-billing-app/set-password",
                    "mint",
                    "ALTER ROLE … PASSWORD",
                    "undone",
                )
            }
            .at(300, 900)
            .step(),
            S {
                consumer: Some("secretsmanager:billing/db"),
                ..s(
                    "pg-billing-app/deliver[secretsmanager:billing/db]",
                    "deliver",
                    "secretsmanager:PutSecretValue",
                    "undone",
                )
            }
            .at(900, 2_000)
            .step(),
            S {
                effect: "verify",
                retries: 3,
                error: Some(EVIL),
                ..s(
                    "pg-billing-app/verify",
                    "verify",
                    "postgres: connect",
                    "failed",
                )
            }
            .at(2_000, 32_000)
            .step(),
            s(
                "pg-billing-app/mark-active",
                "cleanup",
                "COMMENT ON ROLE",
                "pending",
            )
            .step(),
        ],
    );
    rolled_back.failure = Some(FailureReport {
        step: "pg-billing-app/verify".to_owned(),
        error: EVIL.to_owned(),
        next: "nothing changed for good: fix the cause, then rotate it again \
               (`rekey drill --credential pg-billing-app`)"
            .to_owned(),
    });

    let never = credential(
        "gh-release-pat",
        "github_pat",
        None,
        "not_started",
        vec![
            S {
                effect: "verify",
                ..s(
                    "gh-release-pat/check-old",
                    "prepare",
                    "GET /user",
                    "pending",
                )
            }
            .step(),
            S {
                effect: "human",
                ..s(
                    "gh-release-pat/mint-pat",
                    "mint",
                    "manual: create a fine-grained PAT",
                    "pending",
                )
            }
            .step(),
        ],
    );

    RunReport {
        format: crate::model::REPORT_FORMAT,
        generated_at: "2025-03-01T14:30:00Z".parse::<Timestamp>().unwrap(),
        run: RunSummary {
            id: RUN.to_owned(),
            mode: "drill".to_owned(),
            status: "needs_operator".to_owned(),
            simulated: true,
            reason: Some("quarterly drill (Q1) | SOC 2 CC6.1".to_owned()),
            actor: "alice@example.com".to_owned(),
            created_at: "2025-03-01T14:20:03Z".to_owned(),
            message: Some("1 credential rolled back".to_owned()),
        },
        started_at: Some("2025-03-01T14:20:04Z".parse::<Timestamp>().unwrap()),
        summary: Summary {
            credentials: 3,
            rotated: 1,
            failed: 1,
            needed_human: 2,
            skipped: 1,
            total_ms: 254_100,
            human_ms: 240_000,
            longest: Some((aws.to_owned(), 253_950)),
        },
        time_to_safe: TimeToSafe {
            disabled_after_s: None,
            replaced_after_s: Some(252.3),
            cleaned_after_s: None,
        },
        credentials: vec![rotated, rolled_back, never],
        evidence: Evidence {
            run_id: RUN.to_owned(),
            first_seq: Some(1041),
            last_seq: Some(1107),
            events: 61,
            chain_head: Some(HEAD.to_owned()),
            verify_command: Some(format!("rekey audit verify --head {HEAD}")),
        },
        scorecard: Some(scorecard()),
    }
}

fn scorecard() -> Scorecard {
    let okta = Pole {
        credential: "okta-sso-client".to_owned(),
        kind: "okta_client_secret".to_owned(),
        done_after_s: 1_322.0,
        why: "a manual step: the SSO app's owner pastes the secret (median wait 20m)".to_owned(),
    };
    Scorecard {
        format: crate::scorecard::SCORECARD_FORMAT,
        today: jiff::civil::date(2025, 3, 1),
        credentials: 40,
        rotated_recently: 29,
        rotated_share: 0.725,
        overdue: vec!["gh-release-pat".to_owned(), "okta-sso-client".to_owned()],
        never_drilled: vec!["gh-release-pat".to_owned()],
        last_drill_failed: vec![(
            "pg-billing-app".to_owned(),
            RUN.to_owned(),
            "rolled_back".to_owned(),
        )],
        kinds: vec![
            KindStats {
                kind: "aws_iam_access_key".to_owned(),
                credentials: 12,
                rotations: 30,
                median_ms: Some(61_000),
                needed_human: 4,
                median_human_ms: Some(180_000),
            },
            KindStats {
                kind: "github_pat".to_owned(),
                credentials: 20,
                rotations: 0,
                median_ms: None,
                needed_human: 0,
                median_human_ms: None,
            },
            KindStats {
                kind: "postgres_role_password".to_owned(),
                credentials: 8,
                rotations: 14,
                median_ms: Some(2_400),
                needed_human: 0,
                median_human_ms: None,
            },
        ],
        time_to_safe: Some(TimeToSafeEstimate {
            disabled_after_s: Some(95.0),
            replaced_after_s: Some(1_260.5),
            cleaned_after_s: Some(1_322.0),
            summary: "all exposed credentials disabled after 1m 35s; the long pole is \
                      okta-sso-client (a manual step)"
                .to_owned(),
            long_pole: Some(okta.clone()),
            dominant: vec![
                okta,
                Pole {
                    credential: "aws-prod-deploy".to_owned(),
                    kind: "aws_iam_access_key".to_owned(),
                    done_after_s: 254.0,
                    why: "a manual CI variable update".to_owned(),
                },
            ],
            measured_actions: 14,
            default_actions: 3,
        }),
        time_to_safe_note: None,
    }
}

/// `n` credentials of six steps each, staggered over about an hour; every 50th rolled back,
/// every 20th with a manual step; no scorecard lists (the per-credential part is the bulk).
pub(crate) fn large(n: usize) -> RunReport {
    let phases = [
        ("prepare", "iam:ListAccessKeys"),
        ("mint", "iam:CreateAccessKey"),
        ("deliver", "secretsmanager:PutSecretValue"),
        ("verify", "sts:GetCallerIdentity"),
        ("revoke", "iam:UpdateAccessKey"),
        ("cleanup", "iam:DeleteAccessKey"),
    ];
    let mut r = report();
    r.scorecard = None;
    r.credentials = (0..n)
        .map(|i| {
            let id = format!("svc-{i:05}-api-key");
            let failed = i % 50 == 49;
            let human = i % 20 == 7;
            let mut t = i64::try_from(i).unwrap() * 350;
            let steps = phases
                .iter()
                .enumerate()
                .map(|(k, (phase, call))| {
                    let human_ms = if human && k == 2 { 95_000 } else { 0 };
                    let len = 400 + i64::try_from((i * 7 + k * 13) % 900).unwrap() + human_ms;
                    let state = match (failed, k) {
                        (false, _) | (true, 0) => "succeeded",
                        (true, 1 | 2) => "undone",
                        (true, 3) => "failed",
                        (true, _) => "pending",
                    };
                    let time = (state != "pending").then(|| {
                        let at = (t, t + len);
                        t += len;
                        at
                    });
                    StepReport {
                        id: format!("{id}/{phase}-step"),
                        step: format!("{phase}-step"),
                        phase: (*phase).to_owned(),
                        action: format!("aws.{phase}"),
                        provider: "aws".to_owned(),
                        call: (*call).to_owned(),
                        effect: "write".to_owned(),
                        state: state.to_owned(),
                        irreversible: false,
                        start_ms: time.map(|t| t.0),
                        end_ms: time.map(|t| t.1),
                        work_ms: time.map(|(a, b)| b - a - human_ms),
                        human_ms,
                        retries: 0,
                        attempts: 1,
                        consumer: None,
                        error: (state == "failed").then(|| "AccessDenied: sts".to_owned()),
                    }
                })
                .collect();
            let mut c = credential(
                &id,
                "aws_iam_access_key",
                Some("team-a"),
                if failed { "rolled_back" } else { "rotated" },
                steps,
            );
            if !failed {
                c.delivered_to = vec![format!("secretsmanager:{id}")];
                c.fingerprint = Some(format!("hmac-sha256:k7f3a9c1:{:064x}", i * 7919));
            }
            c
        })
        .collect();
    r.summary.credentials = n;
    r.summary.total_ms = r
        .credentials
        .iter()
        .filter_map(|c| c.end_ms)
        .max()
        .unwrap_or(0);
    r
}
