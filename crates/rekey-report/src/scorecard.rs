//! The scorecard: how much of the inventory is rotated and drilled, how long rotations take per
//! kind, and how long an incident over the whole inventory would take (time-to-safe).

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rekey_spec::Inventory;
use rekey_store::{CredentialHistory, Rotation};
use serde::Serialize;

/// Bumped when the JSON shape changes incompatibly.
pub const SCORECARD_FORMAT: u32 = 1;

/// Rotations within this many days count as recent.
pub const RECENT_DAYS: i64 = 90;

#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub format: u32,
    pub today: Date,
    pub credentials: usize,
    /// Credentials rotated for real within [`RECENT_DAYS`] (inventory date or history).
    pub rotated_recently: usize,
    /// `rotated_recently / credentials`, 0 for an empty inventory.
    pub rotated_share: f64,
    /// Past their `policy.max_age_days`.
    pub overdue: Vec<String>,
    /// Never rotated by rekey, not even in a rehearsal.
    pub never_drilled: Vec<String>,
    /// Whose most recent run did not rotate them: `(credential, run, outcome)`.
    pub last_drill_failed: Vec<(String, String, String)>,
    pub kinds: Vec<KindStats>,
    pub time_to_safe: Option<TimeToSafeEstimate>,
    /// Why there is no estimate (the whole inventory does not plan as an incident).
    pub time_to_safe_note: Option<String>,
}

/// Per credential kind, over its successful rotations in the history.
#[derive(Debug, Clone, Serialize)]
pub struct KindStats {
    pub kind: String,
    pub credentials: usize,
    pub rotations: usize,
    pub median_ms: Option<i64>,
    /// Rotations that waited for a person.
    pub needed_human: usize,
    /// Median wait for a person, over the rotations that waited.
    pub median_human_ms: Option<i64>,
}

/// "If every credential were exposed now": the estimate, in a shape for reports.
#[derive(Debug, Clone, Serialize)]
pub struct TimeToSafeEstimate {
    pub disabled_after_s: Option<f64>,
    pub replaced_after_s: Option<f64>,
    pub cleaned_after_s: Option<f64>,
    /// One sentence: "all exposed credentials disabled after …; the long pole is …".
    pub summary: String,
    pub long_pole: Option<Pole>,
    /// The credentials that finish last, latest first.
    pub dominant: Vec<Pole>,
    /// Actions whose durations were measured in history, and those that used defaults.
    pub measured_actions: usize,
    pub default_actions: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pole {
    pub credential: String,
    pub kind: String,
    pub done_after_s: f64,
    /// Why it takes that long: manual steps, rate limits, `rotate_with` chains.
    pub why: String,
}

/// The civil date (in this machine's time zone) of a history timestamp.
fn date(ts: jiff::Timestamp) -> Date {
    ts.to_zoned(TimeZone::system()).date()
}

/// Moves each credential's `last_rotated` forward to its last successful rotation in the
/// history, so the due column, drill selection and lint see what rekey did without anyone
/// editing YAML. Rehearsals (`--simulate`) count only when `simulated` is set: a rehearsal must
/// never make a real overdue credential look rotated.
pub fn apply_history(
    inv: &mut Inventory,
    history: &BTreeMap<String, CredentialHistory>,
    simulated: bool,
) {
    for c in &mut inv.credentials {
        let Some(h) = history.get(&c.id) else {
            continue;
        };
        let last = if simulated {
            h.last_rotated_or_simulated
        } else {
            h.last_rotated
        };
        if let Some(d) = last.map(date) {
            c.last_rotated = Some(c.last_rotated.map_or(d, |x| x.max(d)));
        }
    }
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// The scorecard of `inv` (with history already applied, real rotations only) and `rows`.
pub fn compute(
    inv: &Inventory,
    rows: &[Rotation],
    today: Date,
    time_to_safe: Result<TimeToSafeEstimate, String>,
) -> Scorecard {
    let history = rekey_store::history::by_credential(rows);
    let recent = |c: &rekey_spec::Credential| c.age_days(today).is_some_and(|a| a <= RECENT_DAYS);
    let rotated_recently = inv.credentials.iter().filter(|c| recent(c)).count();
    let mut kinds: BTreeMap<&str, (usize, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for c in &inv.credentials {
        kinds.entry(c.kind.as_str()).or_default().0 += 1;
    }
    for r in rows.iter().filter(|r| r.rotated()) {
        let k = kinds.entry(r.kind.as_str()).or_default();
        k.1.push(r.duration_ms);
        if r.human_ms > 0 {
            k.2.push(r.human_ms);
        }
    }
    Scorecard {
        format: SCORECARD_FORMAT,
        today,
        credentials: inv.credentials.len(),
        rotated_recently,
        #[allow(clippy::cast_precision_loss)] // counts, far below 2^52
        rotated_share: if inv.credentials.is_empty() {
            0.0
        } else {
            rotated_recently as f64 / inv.credentials.len() as f64
        },
        overdue: inv
            .credentials
            .iter()
            .filter(|c| c.policy.is_some() && c.is_due(today))
            .map(|c| c.id.clone())
            .collect(),
        never_drilled: inv
            .credentials
            .iter()
            .filter(|c| {
                history
                    .get(&c.id)
                    .is_none_or(|h| h.last_rotated_or_simulated.is_none())
            })
            .map(|c| c.id.clone())
            .collect(),
        last_drill_failed: inv
            .credentials
            .iter()
            .filter_map(|c| {
                let last = history.get(&c.id)?.last.as_ref()?;
                (!last.rotated()).then(|| (c.id.clone(), last.run_id.clone(), last.outcome.clone()))
            })
            .collect(),
        kinds: kinds
            .into_iter()
            .map(|(kind, (credentials, times, human))| KindStats {
                kind: kind.to_owned(),
                credentials,
                rotations: times.len(),
                median_ms: median(times),
                needed_human: human.len(),
                median_human_ms: median(human),
            })
            .collect(),
        time_to_safe_note: time_to_safe.as_ref().err().cloned(),
        time_to_safe: time_to_safe.ok(),
    }
}

/// `1.2 s`, `4m 05s`, `1h 02m`: durations for people.
pub fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let s = ms / 1_000;
    if s < 60 {
        return format!("{}.{} s", s, (ms % 1_000) / 100);
    }
    if s < 3_600 {
        return format!("{}m {:02}s", s / 60, s % 60);
    }
    format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60)
}

/// Seconds (as the JSON carries them) for people.
pub fn human_secs(s: f64) -> String {
    // Whole milliseconds: the figures come from millisecond timestamps.
    #[allow(clippy::cast_possible_truncation)]
    human_duration((s * 1000.0).round() as i64)
}

/// The scorecard for a terminal.
pub fn text(card: &Scorecard) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let list = |ids: &[String]| {
        if ids.len() <= 8 {
            ids.join(", ")
        } else {
            format!("{}, … ({} more)", ids[..8].join(", "), ids.len() - 8)
        }
    };
    let _ = writeln!(
        t,
        "scorecard of {} credential(s), {}",
        card.credentials, card.today
    );
    let _ = writeln!(
        t,
        "  rotated in the last {RECENT_DAYS} days: {} ({:.0} %)",
        card.rotated_recently,
        card.rotated_share * 100.0
    );
    let _ = writeln!(t, "  overdue: {}", card.overdue.len());
    if !card.overdue.is_empty() {
        let _ = writeln!(t, "    {}", list(&card.overdue));
    }
    let _ = writeln!(t, "  never drilled: {}", card.never_drilled.len());
    if !card.never_drilled.is_empty() {
        let _ = writeln!(t, "    {}", list(&card.never_drilled));
    }
    for (id, run, outcome) in &card.last_drill_failed {
        let _ = writeln!(t, "  last drill failed: {id} ({outcome} in {run})");
    }
    let _ = writeln!(
        t,
        "\n  {:<28} {:>5} {:>9} {:>11} {:>12} {:>12}",
        "KIND", "CREDS", "ROTATIONS", "MEDIAN", "NEEDED HUMAN", "HUMAN WAIT"
    );
    for k in &card.kinds {
        let _ = writeln!(
            t,
            "  {:<28} {:>5} {:>9} {:>11} {:>12} {:>12}",
            k.kind,
            k.credentials,
            k.rotations,
            k.median_ms.map_or_else(|| "-".into(), human_duration),
            k.needed_human,
            k.median_human_ms.map_or_else(|| "-".into(), human_duration),
        );
    }
    match &card.time_to_safe {
        Some(e) => {
            let _ = writeln!(t, "\ntime-to-safe if every credential were exposed now:");
            let _ = writeln!(t, "  {}", e.summary);
            for p in &e.dominant {
                let _ = writeln!(
                    t,
                    "  {:<28} done after {:>10}  {}",
                    p.credential,
                    human_secs(p.done_after_s),
                    p.why
                );
            }
            let _ = writeln!(
                t,
                "  ({} action(s) timed from history, {} from documented defaults)",
                e.measured_actions, e.default_actions
            );
        }
        None => {
            let _ = writeln!(
                t,
                "\ntime-to-safe: {}",
                card.time_to_safe_note.as_deref().unwrap_or("not estimated")
            );
        }
    }
    t
}
