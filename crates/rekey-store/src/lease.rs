//! Run owner leases: one process drives a run at a time.
//!
//! A run's lease row names the process holding it (a holder id unique per process, its host
//! and pid) and when it expires. `run`/`resume`/`abandon` take it atomically; the holder's
//! heartbeat pushes the expiry forward while it works; the final status is written only while
//! the lease is still held, so a process whose run was taken over (or abandoned) cannot
//! overwrite what the new owner recorded.

use std::fmt;
use std::time::Duration;

use sqlx::Row;

use crate::audit;
use crate::{
    AuditDraft, ChainKey, Pool, Result, RunStatus, Store, StoreError, chain_version, is_busy,
    is_unique_violation, now,
};

/// The process that holds (or wants) a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Unique per process: `host:pid:random`.
    pub id: String,
    pub host: String,
    pub pid: i64,
}

impl LeaseHolder {
    /// This process.
    pub fn this_process() -> Self {
        let host = host_identity();
        let pid = i64::from(std::process::id());
        let mut r = [0u8; 6];
        getrandom::fill(&mut r).expect("the OS has randomness");
        let tag = hex::encode(r);
        Self {
            id: format!("{host}:{pid}:{tag}"),
            host,
            pid,
        }
    }
}

/// The host name, with the PID namespace where there is one: two containers that share a
/// host name (host networking) do not see each other's processes, so a pid alive in one must
/// never be judged dead from the other.
fn host_identity() -> String {
    let name = hostname();
    match std::fs::read_link("/proc/self/ns/pid") {
        Ok(ns) => format!("{name} ({})", ns.display()),
        Err(_) => name,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub renewed_at: String,
    pub expires_ms: i64,
}

impl Lease {
    pub fn expired(&self) -> bool {
        self.expires_ms < now_ms()
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = (self.expires_ms - now_ms()).max(0) / 1000;
        write!(
            f,
            "pid {} on {} (heartbeat at {}, expires in {left}s)",
            self.pid, self.host, self.renewed_at
        )
    }
}

/// When a live lease held by another process may be taken anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// Only an expired lease, or one whose holder ran on this host and is gone.
    IfDead,
    /// Any lease (`--force`, after a warning).
    Force,
}

/// How long a lease lasts without a heartbeat; the holder renews it every third of that.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Whether process `pid` of this host still exists.
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    // EPERM: it exists but belongs to someone else.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

macro_rules! lease_from_row {
    ($r:expr) => {
        Lease {
            holder: $r.get("holder"),
            host: $r.get("host"),
            pid: $r.get("pid"),
            renewed_at: $r.get("renewed_at"),
            expires_ms: $r.get("expires_ms"),
        }
    };
}

impl Store {
    /// The run's lease, if any process holds or held one.
    pub async fn lease(&self, run_id: &str) -> Result<Option<Lease>> {
        with_pool!(self, p => {
            Ok(sqlx::query("SELECT holder, host, pid, renewed_at, expires_ms FROM run_leases WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(p)
                .await?
                .map(|r| lease_from_row!(r)))
        })
    }

    /// Takes the run's lease for `me`: free, expired, already ours, or (per `take_over`) held
    /// by a process that is gone or by anyone. Otherwise [`StoreError::Leased`] names the
    /// holder. Atomic: of two processes racing, exactly one gets it.
    pub async fn take_lease(
        &self,
        run_id: &str,
        me: &LeaseHolder,
        ttl: Duration,
        take_over: TakeOver,
    ) -> Result<Option<Lease>> {
        for _ in 0..5 {
            let before = self.lease(run_id).await?;
            let at = now();
            let expires = now_ms() + ttl_ms(ttl);
            // Free, expired or ours: one statement decides.
            let n = with_pool!(self, p => {
                sqlx::query("INSERT INTO run_leases (run_id, holder, host, pid, renewed_at, expires_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, renewed_at = excluded.renewed_at, expires_ms = excluded.expires_ms WHERE run_leases.expires_ms < $7 OR run_leases.holder = $2")
                    .bind(run_id).bind(&me.id).bind(&me.host).bind(me.pid).bind(&at).bind(expires).bind(now_ms())
                    .execute(p).await?.rows_affected()
            });
            if n == 1 {
                // An expired lease of another process was taken: say whose.
                return Ok(before.filter(|l| l.holder != me.id));
            }
            let Some(current) = self.lease(run_id).await? else {
                continue;
            };
            let dead = current.host == me.host && !process_alive(current.pid);
            if !(dead || take_over == TakeOver::Force || current.expired()) {
                return Err(StoreError::Leased {
                    run_id: run_id.to_owned(),
                    lease: Box::new(current),
                });
            }
            // Compare and swap: only if nobody else took it meanwhile.
            let n = with_pool!(self, p => {
                sqlx::query("UPDATE run_leases SET holder = $1, host = $2, pid = $3, renewed_at = $4, expires_ms = $5 WHERE run_id = $6 AND holder = $7")
                    .bind(&me.id).bind(&me.host).bind(me.pid).bind(&at).bind(expires).bind(run_id).bind(&current.holder)
                    .execute(p).await?.rows_affected()
            });
            if n == 1 {
                return Ok(Some(current));
            }
        }
        Err(StoreError::Corrupt(format!(
            "the lease of run {run_id} kept changing hands"
        )))
    }

    /// Writes this process's steps as `me`: a step of a run whose lease another process holds
    /// is then refused ([`StoreError::LeaseLost`]) before its call is made.
    pub fn fence(&self, me: &LeaseHolder) {
        *self.fence.lock().expect("not poisoned") = Some(me.id.clone());
    }

    /// Pushes the lease's expiry forward; `false` if `me` no longer holds it.
    pub async fn renew_lease(&self, run_id: &str, me: &LeaseHolder, ttl: Duration) -> Result<bool> {
        let at = now();
        let expires = now_ms() + ttl_ms(ttl);
        with_pool!(self, p => {
            Ok(sqlx::query("UPDATE run_leases SET renewed_at = $1, expires_ms = $2 WHERE run_id = $3 AND holder = $4")
                .bind(&at).bind(expires).bind(run_id).bind(&me.id)
                .execute(p).await?.rows_affected() == 1)
        })
    }

    /// Records the run's status as its lease holder and gives the lease up: nothing is written
    /// (and [`StoreError::LeaseLost`] says who holds it now) if `me` no longer holds it.
    /// Terminal statuses release the credential locks in the same transaction.
    pub async fn finish_run(
        &self,
        run_id: &str,
        me: &LeaseHolder,
        status: RunStatus,
        message: Option<&str>,
        audit: AuditDraft,
    ) -> Result<()> {
        with_audit!(self, &audit, |tx, at| {
            // Giving the lease up first locks its row (PostgreSQL's READ COMMITTED would not
            // for a sub-select), so no takeover slips in between the check and the verdict.
            let held = sqlx::query("DELETE FROM run_leases WHERE run_id = $1 AND holder = $2")
                .bind(run_id)
                .bind(&me.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if held != 1 {
                return Err(StoreError::LeaseLost {
                    run_id: run_id.to_owned(),
                });
            }
            sqlx::query("UPDATE runs SET status = $1, message = $2, updated_at = $3 WHERE id = $4")
                .bind(status.as_str())
                .bind(message)
                .bind(&at)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            if status.is_terminal() {
                sqlx::query("DELETE FROM credential_locks WHERE run_id = $1")
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        })
    }

    /// Gives the lease up without a status change (a process that stops early).
    pub async fn release_lease(&self, run_id: &str, me: &LeaseHolder) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query("DELETE FROM run_leases WHERE run_id = $1 AND holder = $2")
                .bind(run_id).bind(&me.id)
                .execute(p).await?;
        });
        Ok(())
    }
}
