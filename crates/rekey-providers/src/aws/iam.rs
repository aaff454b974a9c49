//! IAM access keys (create with a write-ahead marker on the user, deactivate, delete, last
//! used) and STS: verifying a key, and whom a found key belongs to.
//!
//! # Finding a key whose creation was lost
//!
//! IAM shows a secret access key once. If the process dies after `CreateAccessKey` succeeded but
//! before the step's outcome was stored, the key exists and its secret is gone: an orphan that
//! also holds one of the user's two key slots. Access keys cannot be tagged, and a time window
//! ("created after the step started") depends on clocks agreeing, so `create_access_key` keeps a
//! write-ahead marker on the IAM *user* instead:
//!
//! 1. `ListAccessKeys` → the ids that exist before the call;
//! 2. `TagUser rekey:create:<idempotency key>` = those ids (written before the call);
//! 3. `CreateAccessKey`.
//!
//! A key of the user that is not in the marker's list was made by that step. `reconcile` (and
//! `undo` when the outputs were lost, and a retried `execute`) delete exactly those keys, then
//! drop the marker; no marker means `CreateAccessKey` was never sent. The marker stays after a
//! successful create — the step's outcome may still be lost — and is removed by the step's undo,
//! `rekey abandon`, the final delete, or the next create on the same user (a credential has one
//! run at a time, so by then every older marker on it is settled). Needs `iam:TagUser`,
//! `iam:UntagUser`, `iam:ListUserTags`.
//!
//! The marker must never stand between an incident and the new key: a user at IAM's 50-tag
//! limit, or a policy without `iam:TagUser`, cannot be tagged. Then the step goes on and says so
//! (a `provider_warning` in the audit log), and the key ids the `free-slot` step recorded just
//! before (its plain output `access_key_ids`, passed as `existing_access_key_ids`, kept by the
//! state database and the audit log) are the list instead.
//!
//! Every deletion beside a step's own job (an inactive key removed to make room, an orphan, a
//! stale `AWSPENDING` moved aside) is reported through `Call::reports` and audited by id.

use std::collections::{BTreeMap, BTreeSet};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::StatusType;
use rekey_engine::{Call, ProviderError, Value, Values};
use rekey_plan::Strategy;
use secrecy::SecretString;

use super::{
    AwsProvider, MARKER_PREFIX, MARKER_SEPARATOR, OFF_PREFIX, PROPAGATION_WAIT_VAR, existing_keys,
    input, is_not_found, plain, required, sdk_error, selector, service_code, unknown_keys,
};

pub(super) struct KeyInfo {
    pub(super) id: String,
    pub(super) active: bool,
    pub(super) created: Option<aws_sdk_iam::primitives::DateTime>,
}

/// The marker tag key of a create step (tag keys are at most 128 characters).
pub(super) fn marker_key(idempotency_key: &str) -> String {
    prefixed_key(MARKER_PREFIX, idempotency_key)
}

pub(super) fn prefixed_key(prefix: &str, idempotency_key: &str) -> String {
    let k: String = idempotency_key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    format!("{prefix}{k}")
}

impl AwsProvider {
    pub(super) async fn list_keys(&self, user: &str) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListAccessKeys", &e))?;
            for k in out.access_key_metadata() {
                if let Some(id) = k.access_key_id() {
                    keys.push(KeyInfo {
                        id: id.to_owned(),
                        active: k.status() == Some(&StatusType::Active),
                        created: k.create_date().copied(),
                    });
                }
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }

    pub(super) async fn set_status(
        &self,
        user: &str,
        key: &str,
        status: StatusType,
    ) -> Result<bool, ProviderError> {
        match self
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(sdk_error("iam:UpdateAccessKey", &e)),
        }
    }

    pub(super) async fn delete_key(&self, user: &str, key: &str) -> Result<bool, ProviderError> {
        match self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(sdk_error("iam:DeleteAccessKey", &e)),
        }
    }

    /// The keys a deactivate / delete / last-used step is about: `access_key_id` if given,
    /// otherwise every key of the user; never `except_access_key_id`.
    pub(super) async fn selected_keys(
        &self,
        call: &Call<'_>,
    ) -> Result<Vec<KeyInfo>, ProviderError> {
        let user = required(call, "user_name")?;
        let only = selector(call, "access_key_id")?;
        let except = selector(call, "except_access_key_id")?;
        Ok(self
            .list_keys(user)
            .await?
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == k.id) && except != Some(k.id.as_str()))
            .collect())
    }

    /// The last line of defence of a step that turns keys off or deletes them: a rotation
    /// (rotate first) must spare the key it minted, and no step may leave the user without an
    /// active key except an incident's revoke-first disable, whose point is exactly that.
    pub(super) async fn guard_removal(
        &self,
        call: &Call<'_>,
        removing: &BTreeSet<&str>,
        may_leave_none: bool,
    ) -> Result<(), ProviderError> {
        let user = required(call, "user_name")?;
        let rotating = call.credential.strategy == Strategy::RotateFirst;
        if rotating && selector(call, "except_access_key_id")?.is_none() {
            return Err(ProviderError::permanent(format!(
                "step {}: a rotation must name the key it keeps (`except_access_key_id`); refusing to touch every key of IAM user {user}",
                call.step.id
            )));
        }
        if may_leave_none || removing.is_empty() {
            return Ok(());
        }
        let keys = self.list_keys(user).await?;
        if !keys
            .iter()
            .any(|k| k.active && !removing.contains(k.id.as_str()))
        {
            return Err(ProviderError::permanent(format!(
                "step {}: this would leave IAM user {user} with no active access key ({} would go); refusing",
                call.step.id,
                removing.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    pub(super) async fn user_markers(
        &self,
        user: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        self.user_tags(user, MARKER_PREFIX).await
    }

    pub(super) async fn user_tags(
        &self,
        user: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_user_tags()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListUserTags", &e))?;
            for t in out.tags() {
                if t.key().starts_with(prefix) {
                    tags.insert(t.key().to_owned(), t.value().to_owned());
                }
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(tags)
    }

    pub(super) async fn tag_user(
        &self,
        user: &str,
        key: &str,
        value: String,
    ) -> Result<(), ProviderError> {
        self.iam
            .tag_user()
            .user_name(user)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|_| ProviderError::permanent("iam:TagUser: invalid marker tag"))?,
            )
            .send()
            .await
            .map_err(|e| sdk_error("iam:TagUser", &e))?;
        Ok(())
    }

    /// The keys a deactivate step turns off: fixed by its first attempt in a marker written
    /// before any key changes, so that a retry after a lost answer reports (and an undo
    /// reactivates) exactly those keys — not "none", because they are already off — and never
    /// a key that was off before the step. `None` when no attempt started.
    pub(super) async fn deactivation(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let user = required(call, "user_name")?;
        let key = prefixed_key(OFF_PREFIX, call.idempotency_key);
        Ok(self.user_tags(user, OFF_PREFIX).await?.get(&key).map(|v| {
            v.split(MARKER_SEPARATOR)
                .filter(|k| !k.is_empty() && *k != "-")
                .map(str::to_owned)
                .collect()
        }))
    }

    pub(super) async fn drop_markers(
        &self,
        user: &str,
        keys: Vec<String>,
    ) -> Result<(), ProviderError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self
            .iam
            .untag_user()
            .user_name(user)
            .set_tag_keys(Some(keys))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(sdk_error("iam:UntagUser", &e)),
        }
    }

    /// Deletes the keys a create step made, then drops its marker. Made by the step: not in
    /// its marker or — without one (a user at IAM's 50-tag limit, a policy without
    /// `iam:TagUser`) — not among the key ids recorded before it (`existing_access_key_ids`,
    /// kept by the state database and the audit log), if `by_record`. Returns the deleted ids;
    /// `None` when there is no record at all (then nothing was created).
    pub(super) async fn remove_created(
        &self,
        call: &Call<'_>,
        by_record: bool,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let user = required(call, "user_name")?;
        let key = marker_key(call.idempotency_key);
        let recorded = if by_record {
            existing_keys(call)?
        } else {
            None
        };
        let marker = match self.user_markers(user).await {
            Ok(markers) => markers.get(&key).cloned(),
            Err(e) if recorded.is_some() => {
                call.reports.warning(format!(
                    "cannot read the write-ahead markers of IAM user {user} ({e}); the key ids recorded before the create stand in for them"
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let before: BTreeSet<String> = match (&marker, recorded) {
            (Some(m), _) => m.split(MARKER_SEPARATOR).map(str::to_owned).collect(),
            (None, Some(ids)) => ids,
            (None, None) => return Ok(None),
        };
        let mut deleted = Vec::new();
        for k in self.list_keys(user).await? {
            if !before.contains(&k.id) && self.delete_key(user, &k.id).await? {
                call.reports.side_effect(format!(
                    "deleted access key {} of IAM user {user}: made by this step in a call whose outcome was lost, so its secret is gone",
                    k.id
                ));
                deleted.push(k.id);
            }
        }
        if marker.is_some() {
            self.drop_markers(user, vec![key]).await?;
        }
        Ok(Some(deleted))
    }

    /// Drops markers where failing to must not fail the step (an undo that did its work):
    /// says so instead.
    pub(super) async fn drop_markers_or_warn(
        &self,
        call: &Call<'_>,
        user: &str,
        keys: Vec<String>,
    ) {
        if let Err(e) = self.drop_markers(user, keys).await {
            call.reports.warning(format!(
                "cannot remove rekey's write-ahead marker from IAM user {user} ({e}); remove the `rekey:` tags by hand"
            ));
        }
    }

    pub(super) async fn ensure_key_slot(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let keep = selector(call, "keep_access_key_id")?;
        let keys = self.list_keys(user).await?;
        // The keys the create step after this one finds: any other key it sees was made by
        // itself, even when it cannot write its marker (see `remove_created`).
        let ids = |keys: &mut dyn Iterator<Item = &KeyInfo>| {
            keys.map(|k| k.id.as_str()).collect::<Vec<_>>().join(" ")
        };
        if keys.len() < 2 {
            return Ok(plain(&[
                ("free_slots", (2 - keys.len()).to_string()),
                ("access_key_ids", ids(&mut keys.iter())),
            ]));
        }
        if keys.iter().all(|k| k.active) {
            return Err(ProviderError::permanent(format!(
                "IAM user {user} already has two active keys ({}); deactivate or delete one that is no longer used, then run again",
                keys.iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // An inactive key other than the tracked one; the oldest if there are two.
        let mut candidates: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| !k.active && keep != Some(k.id.as_str()))
            .collect();
        candidates.sort_by_key(|k| k.created.map(|d| (d.secs(), d.subsec_nanos())));
        let Some(victim) = candidates.first() else {
            return Err(ProviderError::permanent(format!(
                "IAM user {user} has two keys: the tracked key {} (inactive) and an active untracked key; delete one of them, then run again",
                keep.unwrap_or("?")
            )));
        };
        if self.delete_key(user, &victim.id).await? {
            call.reports.side_effect(format!(
                "deleted inactive access key {} of IAM user {user} to make room for the new key",
                victim.id
            ));
        }
        Ok(plain(&[
            ("free_slots", "1".to_owned()),
            (
                "access_key_ids",
                ids(&mut keys.iter().filter(|k| k.id != victim.id)),
            ),
        ]))
    }

    pub(super) async fn create_access_key(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let key = marker_key(call.idempotency_key);
        // An earlier attempt of this very step whose answer never reached us: whatever it
        // created is unusable (its secret is gone), so remove it first. Its marker says which;
        // without one, the recorded key ids do, but only on a retry: a first attempt must not
        // take a key someone made since `free-slot` for an orphan of its own.
        self.remove_created(call, call.attempt > 1).await?;
        // Markers of other steps are settled (one run per credential), so they go too.
        match self.user_markers(user).await {
            Ok(markers) => {
                let stale: Vec<String> = markers.into_keys().filter(|k| *k != key).collect();
                self.drop_markers_or_warn(call, user, stale).await;
            }
            Err(e) => tracing::debug!(user, error = %e, "cannot list old markers"),
        }

        let before = self.list_keys(user).await?;
        let before = if before.is_empty() {
            "-".to_owned()
        } else {
            before
                .iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(MARKER_SEPARATOR)
        };
        // The marker must not stand between an incident and the new key (a user at IAM's
        // 50-tag limit, a policy without iam:TagUser): the key ids the `free-slot` step
        // recorded say the same, from the state database and the audit log.
        if let Err(e) = self.tag_user(user, &key, before).await {
            call.reports.warning(if existing_keys(call)?.is_some() {
                format!(
                    "cannot write the write-ahead marker on IAM user {user} ({e}); the key ids recorded before this step (the `access_key_ids` of the free-slot step, in the audit log) are the record of which key it makes"
                )
            } else {
                format!(
                    "cannot write the write-ahead marker on IAM user {user} ({e}), and this plan records no key ids before the create: if this step's outcome is lost, delete the key it made by hand"
                )
            });
        }
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| {
                let mut err = sdk_error("iam:CreateAccessKey", &e);
                if service_code(&e).as_deref() == Some("LimitExceeded") {
                    err.message
                        .push_str(" (an IAM user may have at most two access keys)");
                }
                err
            })?;
        let k = out
            .access_key()
            .ok_or_else(|| ProviderError::transient("iam:CreateAccessKey: no key in the answer"))?;
        let mut outputs = plain(&[("access_key_id", k.access_key_id().to_owned())]);
        outputs.insert(
            "secret_access_key".into(),
            Value::Secret(SecretString::from(k.secret_access_key().to_owned())),
        );
        Ok(outputs)
    }

    pub(super) async fn deactivate(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        // The marker makes a retry's report and an undo exact; it must never stand between an
        // incident and the revoke (a user at IAM's 50-tag limit, a policy without
        // iam:TagUser): without it, the step still turns the keys off.
        let marked = self.deactivation(call).await.unwrap_or_else(|e| {
            tracing::warn!(step = %call.step.id, error = %e, "cannot read the deactivation marker; going on without it");
            None
        });
        let planned = if let Some(planned) = marked {
            planned
        } else {
            let active: Vec<String> = self
                .deactivation_targets(call)
                .await?
                .into_iter()
                .filter(|k| k.active)
                .map(|k| k.id)
                .collect();
            let value = if active.is_empty() {
                "-".to_owned()
            } else {
                active.join(MARKER_SEPARATOR)
            };
            let key = prefixed_key(OFF_PREFIX, call.idempotency_key);
            if let Err(e) = self.tag_user(user, &key, value).await {
                tracing::warn!(step = %call.step.id, error = %e, "cannot write the deactivation marker; going on without it");
            }
            active
        };
        let removing: BTreeSet<&str> = planned.iter().map(String::as_str).collect();
        self.guard_removal(
            call,
            &removing,
            call.credential.strategy == Strategy::RevokeFirst,
        )
        .await?;
        let unknown = unknown_keys(call, &planned)?;
        if !unknown.is_empty() {
            call.reports.warning(format!(
                "IAM user {user} had active access keys the inventory does not name: {}; turned off too (an incident turns off every active key of the user). Find out who made them",
                unknown.join(", ")
            ));
        }
        let mut changed = Vec::new();
        for id in planned {
            // A key deleted since is not reported: there is nothing to reactivate.
            if self.set_status(user, &id, StatusType::Inactive).await? {
                changed.push(id);
            }
        }
        Ok(plain(&[
            ("deactivated", changed.join(" ")),
            ("unknown_keys", unknown.join(" ")),
        ]))
    }

    /// The keys a deactivate step is about. An incident's revoke (revoke first) turns off
    /// every key of the user but the one it keeps (`except_access_key_id`), whatever the
    /// inventory names: a second active key may be an attacker's. A rotation turns off the
    /// selected keys.
    pub(super) async fn deactivation_targets(
        &self,
        call: &Call<'_>,
    ) -> Result<Vec<KeyInfo>, ProviderError> {
        if call.credential.strategy != Strategy::RevokeFirst {
            return self.selected_keys(call).await;
        }
        let user = required(call, "user_name")?;
        selector(call, "access_key_id")?;
        let except = selector(call, "except_access_key_id")?;
        Ok(self
            .list_keys(user)
            .await?
            .into_iter()
            .filter(|k| except != Some(k.id.as_str()))
            .collect())
    }

    pub(super) async fn delete_selected(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let selected = self.selected_keys(call).await?;
        let removing: BTreeSet<&str> = selected.iter().map(|k| k.id.as_str()).collect();
        self.guard_removal(call, &removing, false).await?;
        let mut deleted = Vec::new();
        for k in selected {
            if self.delete_key(user, &k.id).await? {
                deleted.push(k.id);
            }
        }
        // The old key is gone for good: nothing of this rotation can be undone or lost any
        // more, so its markers go (the user keeps no rekey tags between rotations).
        let mut markers: Vec<String> = Vec::new();
        for prefix in [MARKER_PREFIX, OFF_PREFIX] {
            match self.user_tags(user, prefix).await {
                Ok(tags) => markers.extend(tags.into_keys()),
                Err(e) => {
                    tracing::warn!(user, error = %e, "cannot list rekey's markers to remove them");
                }
            }
        }
        if let Err(e) = self.drop_markers(user, markers).await {
            tracing::warn!(user, error = %e, "cannot remove rekey's markers");
        }
        Ok(plain(&[("deleted", deleted.join(" "))]))
    }

    pub(super) async fn last_used(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        // The first step of a rotation: an inventory naming a key the user no longer has
        // (rotated by an earlier run or by hand) would make every later step select nothing
        // and leave the real old key alive, so stop here, before anything changes.
        if let Some(only) = selector(call, "access_key_id")? {
            let user = required(call, "user_name")?;
            let keys = self.list_keys(user).await?;
            if !keys.iter().any(|k| k.id == only) {
                let has: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
                return Err(ProviderError::permanent(format!(
                    "IAM user {user} has no access key {only} (its keys: {}): the inventory's \
                     `access_key_id` is out of date; set it to the key in use (or remove it to \
                     mean every key of the user) and plan again",
                    if has.is_empty() {
                        "none".to_owned()
                    } else {
                        has.join(", ")
                    }
                )));
            }
        }
        // Of the selected keys, the most recent use.
        let mut best: Option<(aws_sdk_iam::primitives::DateTime, String)> = None;
        for k in self.selected_keys(call).await? {
            let out = match self
                .iam
                .get_access_key_last_used()
                .access_key_id(&k.id)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(sdk_error("iam:GetAccessKeyLastUsed", &e)),
            };
            if let Some(u) = out.access_key_last_used()
                && let Some(d) = u.last_used_date()
                && best.as_ref().is_none_or(|(b, _)| d.secs() > b.secs())
            {
                best = Some((*d, u.service_name().to_owned()));
            }
        }
        Ok(match best {
            Some((d, service)) => plain(&[
                (
                    "last_used_date",
                    d.fmt(aws_sdk_iam::primitives::DateTimeFormat::DateTime)
                        .unwrap_or_else(|_| d.secs().to_string()),
                ),
                ("last_used_service", service),
            ]),
            None => plain(&[
                ("last_used_date", "never".to_owned()),
                ("last_used_service", "N/A".to_owned()),
            ]),
        })
    }

    /// An STS client signing with the key `key_id` (not the process's own credentials).
    pub(super) fn sts_as(
        &self,
        key_id: &str,
        secret: &str,
        region: Option<&str>,
    ) -> aws_sdk_sts::Client {
        let creds = Credentials::new(key_id, secret, None, None, "rekey-checked-key");
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .region(self.region_or_default(region))
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// Who the key `key_id` belongs to (`sts:GetCallerIdentity`, read-only): its ARN, or
    /// `None` when AWS refuses the key (deleted, deactivated, or never valid). For
    /// `rekey discover --online`.
    pub async fn identity(
        &self,
        key_id: &str,
        secret: &secrecy::SecretString,
    ) -> Result<Option<String>, ProviderError> {
        use secrecy::ExposeSecret;
        // STS answers in any region: no warning about a missing one here.
        match self
            .sts_as(key_id, secret.expose_secret(), None)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.arn().unwrap_or_default().to_owned())),
            Err(e)
                if matches!(
                    service_code(&e).as_deref(),
                    Some("InvalidClientTokenId" | "SignatureDoesNotMatch")
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("sts:GetCallerIdentity", &e)),
        }
    }

    pub(super) async fn caller_identity(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let key_id = required(call, "access_key_id")?;
        let secret = call
            .inputs
            .get("secret_access_key")
            .filter(|v| !v.expose().is_empty())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: input `secret_access_key` is missing",
                    call.step.id
                ))
            })?;
        match self
            .sts_as(key_id, secret.expose(), input(call, "region"))
            .get_caller_identity()
            .send()
            .await
        {
            Ok(out) => Ok(plain(&[
                ("arn", out.arn().unwrap_or_default().to_owned()),
                ("account", out.account().unwrap_or_default().to_owned()),
            ])),
            // A brand-new IAM key takes a while to be accepted everywhere: worth retrying, for
            // as long as `retry_budget` allows.
            Err(e)
                if matches!(
                    service_code(&e).as_deref(),
                    Some("InvalidClientTokenId" | "SignatureDoesNotMatch")
                ) =>
            {
                Err(ProviderError::transient(format!(
                    "sts:GetCallerIdentity: the new key {key_id} is not accepted ({}: {}); a new key may take a while to propagate, and rekey waits up to {}s for it ({PROPAGATION_WAIT_VAR}; the run's --retry-budget if longer)",
                    service_code(&e).unwrap_or_default(),
                    e.message().unwrap_or("no message"),
                    self.propagation_wait.as_secs()
                )))
            }
            Err(e) => Err(sdk_error("sts:GetCallerIdentity", &e)),
        }
    }
}
