//! The dependency index over 10,000 generated SBOMs (≈ 2M components).
//!
//! ```text
//! cargo bench -p rekey --bench index
//! ```
//!
//! Prints, once: the index build (parse on all cores + store in `SQLite`) in MB/s (target
//! ≥ 50 MB/s), and a full rescan of every file for one package, for comparison. Criterion then
//! times `who-uses` as the index answers it (one lookup; target ≤ 50 ms).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rekey_store::Store;

// As the `rekey` binary does.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMPONENTS: usize = 200;
const NAMES: usize = 25_000;

/// `REKEY_BENCH_SMOKE=1` (what `scripts/test` sets, with `cargo test --benches`): one short
/// pass over small inputs, so a bench that no longer runs fails the test run.
fn scale(full: usize, smoke: usize) -> usize {
    if std::env::var_os("REKEY_BENCH_SMOKE").is_some() {
        smoke
    } else {
        full
    }
}

/// splitmix64: deterministic, no dependency.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `CycloneDX` 1.5 SBOM of `COMPONENTS` npm packages, some scoped, some nested.
fn sbom(i: usize, rng: &mut u64) -> String {
    let mut comps = Vec::with_capacity(COMPONENTS);
    for _ in 0..COMPONENTS {
        let n = usize::try_from(next(rng) % NAMES as u64).expect("small");
        let (major, minor, patch) = (next(rng) % 5, next(rng) % 20, next(rng) % 10);
        let (name, purl_name) = if n.is_multiple_of(7) {
            (
                format!("@scope{}/pkg{n}", n % 50),
                format!("%40scope{}/pkg{n}", n % 50),
            )
        } else {
            (format!("pkg{n}"), format!("pkg{n}"))
        };
        comps.push(format!(
            r#"{{"type":"library","bom-ref":"{name}@{major}.{minor}.{patch}","name":"{name}","version":"{major}.{minor}.{patch}","purl":"pkg:npm/{purl_name}@{major}.{minor}.{patch}"}}"#
        ));
    }
    format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"metadata":{{"component":{{"type":"application","name":"svc{i}","version":"1.0.0"}}}},"components":[{}]}}"#,
        comps.join(",")
    )
}

fn write_sboms(dir: &Path) -> (Vec<PathBuf>, u64) {
    let mut rng = 42u64;
    let mut bytes = 0u64;
    let paths = (0..scale(10_000, 50))
        .map(|i| {
            let p = dir.join(format!("svc{i}.cdx.json"));
            let text = sbom(i, &mut rng);
            bytes += text.len() as u64;
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    (paths, bytes)
}

/// `(ecosystem, name, version)` rows of one file.
type Rows = Vec<(String, String, String)>;

fn parse_all(paths: &[PathBuf]) -> Vec<(String, Rows)> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per = paths.len().div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = paths
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| {
                            let text = std::fs::read_to_string(p).unwrap();
                            let parsed = rekey_deps::sbom::parse(&text).unwrap();
                            let rows = parsed
                                .packages
                                .into_iter()
                                .map(|k| (k.ecosystem.purl_type().to_owned(), k.name, k.version))
                                .collect();
                            (p.display().to_string(), rows)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (paths, bytes) = write_sboms(dir.path());
    let store = rt
        .block_on(Store::open(dir.path().join("state.db").to_str().unwrap()))
        .unwrap();

    // Exactly what `rekey index` does for a first build.
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let start = Instant::now();
    let report = rt
        .block_on(rekey_deps::index::refresh(&store, &names, &|_, _| {}))
        .unwrap();
    let build = start.elapsed();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "index/build: {} files, {mb:.0} MB, {} components: {:.2} s = {:.0} MB/s",
        report.files,
        report.packages,
        build.as_secs_f64(),
        mb / build.as_secs_f64()
    );
    let start = Instant::now();
    let again = rt
        .block_on(rekey_deps::index::refresh(&store, &names, &|_, _| {}))
        .unwrap();
    assert_eq!(again.reread, 0);
    println!(
        "index/refresh: nothing changed: {:.3} s",
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let parsed = parse_all(&paths);
    // A package in about 80 of 10,000 files; the smoke run's few files may not have it.
    let target = if scale(1, 0) == 1 {
        "pkg4243".to_owned()
    } else {
        parsed[0].1[0].1.clone()
    };
    let target = target.as_str();
    let found = parsed
        .into_iter()
        .filter(|(_, pk)| pk.iter().any(|(_, n, _)| n == target))
        .count();
    println!(
        "index/rescan: every file re-read for one package: {:.2} s ({found} files)",
        start.elapsed().as_secs_f64()
    );

    let mut group = c.benchmark_group("index");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("who_uses", |b| {
        b.iter(|| {
            let hits = rt
                .block_on(store.index_lookup("npm", target, None))
                .unwrap();
            assert!(!hits.is_empty());
            hits
        });
    });
    group.finish();
}

criterion_group!(index_benches, bench);
criterion_main!(index_benches);
