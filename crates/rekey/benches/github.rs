//! Delivering one new value to many GitHub Actions secrets against the in-process fake with
//! 50 ms of latency per answer, through the GitHub provider and the shared HTTP layer (64 calls
//! in flight, as the engine's default concurrency). Two passes:
//!
//! - **budget lifted**: what the layer, the sealing and the fake can do (1,000 secrets);
//! - **GitHub's budget** (`GITHUB_BUDGET`: 78 content-creating requests a minute with bursts of
//!   2, 4,500 an hour with bursts of 500, 64 at once): the rate a real incident gets, compared with the budget (≤ 80 writes/min).
//!
//! ```text
//! cargo bench -p rekey --bench github
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey_engine::{Call, Provider, Value, Values};
use rekey_plan::{Plan, PlanRequest, Selection};
use rekey_providers::github::{GITHUB_BUDGET, GithubConfig, GithubProvider};
use rekey_providers::http::BudgetSpec;
use rekey_spec::{Mode, SourceFile};
use rekey_testkit::GithubFake;
use secrecy::SecretString;

const WRITER: &str = "ghp_BenchWriterToken000000000000000000000";

fn scale(full: usize, smoke: usize) -> usize {
    if std::env::var_os("REKEY_BENCH_SMOKE").is_some() {
        smoke
    } else {
        full
    }
}

/// `n` credentials, each delivered to one secret; ten secrets per repository.
fn plan(fake: &GithubFake, n: usize) -> Plan {
    let mut yaml = String::from("credentials:\n");
    for i in 0..n {
        let repo = format!("acme/svc{}", i / 10);
        fake.add_repo(&repo);
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: github_fine_grained_pat\n    owner: x\n    github_user: bot\n    delivered_to:\n      - github_actions_secret: {{ repo: {repo}, name: TOKEN_{i} }}"
        );
    }
    let inv =
        rekey_spec::parse_inventory(&[Arc::new(SourceFile::new("bench.yaml", yaml.as_str()))])
            .expect("valid");
    let runbooks = rekey_spec::load_runbooks(None).expect("bundled runbooks");
    rekey_plan::compile(&PlanRequest {
        inventory: &inv,
        runbooks: &runbooks,
        selection: &Selection::default(),
        mode: Mode::Drill,
        exposed: None,
    })
    .expect("plans")
}

async fn pass(name: &str, n: usize, budget: BudgetSpec) {
    let fake = GithubFake::start().await;
    fake.add_writer(WRITER, "acme-automation");
    fake.set_latency(Duration::from_millis(50));
    let plan = plan(&fake, n);
    let mut config = GithubConfig::new(&fake.api_url());
    config.token = Some(SecretString::from(WRITER));
    config.budget = budget;
    let p = Arc::new(GithubProvider::new(config).unwrap());
    let value = "github_pat_11BENCHNEWVALUE_000000000000000000000";
    let inputs: Values = [("token".to_owned(), Value::secret(value))].into();
    let steps: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action == "consumer.deliver")
        .collect();
    assert_eq!(steps.len(), n);
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for (i, s) in steps.into_iter().enumerate() {
        let p = Arc::clone(&p);
        let sem = Arc::clone(&sem);
        let inputs = inputs.clone();
        let step = s.clone();
        let cred = plan.credentials[s.credential as usize].clone();
        tasks.push(tokio::spawn(async move {
            let _slot = sem.acquire().await.unwrap();
            let key = format!("bench-{i}");
            let call = Call {
                run_id: "bench",
                step: &step,
                credential: &cred,
                inputs: &inputs,
                idempotency_key: &key,
                attempt: 1,
                tried_before: false,
                reports: rekey_engine::Reports::default(),
            };
            p.execute(&call).await.expect("delivered");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    for i in 0..n {
        assert_eq!(
            fake.secret(&format!("repo:acme/svc{}", i / 10), &format!("TOKEN_{i}"))
                .as_deref(),
            Some(value)
        );
    }
    let requests = fake.requests();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let (n_f, requests_f) = (n as f64, requests as f64);
    let per_s = n_f / took;
    let writes_per_min = per_s * 60.0;
    println!(
        "github {name}: {n} secrets in {took:.2}s = {per_s:.1} secrets/s ({writes_per_min:.0} PUTs/min; {requests} requests, {:.0}/h); budget {} writes/min, {}/h, {} in flight: {:.0} % of the write budget",
        requests_f / took * 3600.0,
        budget.writes_per_minute,
        budget.per_hour,
        budget.concurrent,
        writes_per_min / f64::from(budget.writes_per_minute) * 100.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        pass(
            "budget lifted",
            scale(1000, 20),
            BudgetSpec {
                per_hour: 100_000_000,
                hourly_burst: 100_000_000,
                concurrent: 64,
                writes_per_minute: 100_000_000,
                write_burst: 100_000_000,
            },
        )
        .await;
        // 78 writes a minute: about 2.5 minutes for 200.
        pass("at GitHub's budget", scale(200, 4), GITHUB_BUDGET).await;
    });
}
