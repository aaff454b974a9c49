//! Secrets Manager as a consumer: staged deliveries (`AWSPENDING`, then `AWSCURRENT`), reading
//! the current or a pinned version back, and undoing both.
//!
//! # Secrets Manager staging
//!
//! `consumer.deliver` writes a new version labelled `AWSPENDING` with a `ClientRequestToken`
//! derived from the step's idempotency key (and a counter, for a step that must deliver a new
//! value after its mint was redone), so a repeated call is a no-op. A stale `AWSPENDING` left by
//! an earlier half-done rotation is moved off its version first. `consumer.promote` moves `AWSCURRENT` to the pending
//! version (the old one becomes `AWSPREVIOUS`) and removes `AWSPENDING`.

use std::collections::{BTreeMap, HashMap};

use rekey_engine::{Call, ProviderError, Value, Values};
use secrecy::{ExposeSecret, SecretString};

use super::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, AwsProvider, MAX_DELIVERIES, SecretTarget, is_not_found,
    plain, request_token, sdk_error, secret_target, service_code, target_of,
};

/// A secret's versions and their staging labels.
pub(super) struct Versions(pub(super) HashMap<String, Vec<String>>);

impl Versions {
    pub(super) fn with_label(&self, label: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == label))
            .map(|(v, _)| v.as_str())
    }

    pub(super) fn has(&self, version: &str) -> bool {
        self.0.contains_key(version)
    }
}

impl AwsProvider {
    /// The versions of a secret; `None` if the secret does not exist.
    pub(super) async fn versions(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<Option<Versions>, ProviderError> {
        match sm.describe_secret().secret_id(secret_id).send().await {
            Ok(out) => Ok(Some(Versions(
                out.version_ids_to_stages().cloned().unwrap_or_default(),
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:DescribeSecret", &e)),
        }
    }

    pub(super) async fn move_label(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        label: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), ProviderError> {
        if to.is_some() && to == from {
            return Ok(());
        }
        sm.update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(label)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:UpdateSecretVersionStage", &e))?;
        Ok(())
    }

    pub(super) async fn read_version(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<SecretString>, ProviderError> {
        match sm
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out
                .secret_string()
                .map(|s| SecretString::from(s.to_owned()))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:GetSecretValue", &e)),
        }
    }

    /// The document a deliver step writes: only the input named by the consumer's `field`, or
    /// every input merged into the current JSON document (its other keys kept: a secret that
    /// also holds a host name or a second credential loses nothing).
    pub(super) fn document(
        call: &Call<'_>,
        target: &SecretTarget<'_>,
        current: Option<&SecretString>,
    ) -> Result<SecretString, ProviderError> {
        if let Some(field) = target.field {
            let v = call.inputs.get(field).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: consumer field `{field}` is not one of the step's inputs",
                    call.step.id
                ))
            })?;
            return Ok(SecretString::from(v.expose().to_owned()));
        }
        let mut doc = match current
            .map(|c| serde_json::from_str::<serde_json::Value>(c.expose_secret()))
        {
            None => serde_json::Map::new(),
            Some(Ok(serde_json::Value::Object(map))) => map,
            Some(_) if current.is_some_and(|c| c.expose_secret().trim().is_empty()) => {
                serde_json::Map::new()
            }
            Some(_) => {
                return Err(ProviderError::permanent(format!(
                    "secretsmanager: secret {} holds a value that is not a JSON object, and the new value is a document of {} fields: set `field:` on the consumer, or empty the secret",
                    target.secret_id,
                    call.inputs.len()
                )));
            }
        };
        for (k, v) in call.inputs {
            doc.insert(k.clone(), serde_json::Value::String(v.expose().to_owned()));
        }
        Ok(SecretString::from(
            serde_json::Value::Object(doc).to_string(),
        ))
    }

    /// A missing secret, said with the region it was looked for in (a consumer without
    /// `region:` uses the default one).
    pub(super) fn no_secret(&self, target: &SecretTarget<'_>) -> ProviderError {
        ProviderError::permanent(format!(
            "secretsmanager: secret {} does not exist in {}{}: check `secret_id` and `region`, or set `create: true` on the consumer to create it",
            target.secret_id,
            self.region_or_default(target.region),
            if target.region.is_none() {
                " (the default region: the consumer sets none)"
            } else {
                ""
            }
        ))
    }

    /// Writes the document as a new `AWSPENDING` version.
    ///
    /// The request token is derived from the idempotency key, so a repeated call finds its
    /// version and does nothing more. A step may legitimately deliver a *different* document
    /// under the same key (its mint was undone and redone after a crash), and AWS refuses to
    /// change a version's content: then the next token of the sequence `request_token(key, n)`
    /// is used.
    pub(super) async fn deliver(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let versions = if let Some(v) = self.versions(&sm, id).await? {
            v
        } else if !target.create {
            return Err(self.no_secret(&target));
        } else {
            // A new secret, created without a value. Its first version becomes AWSCURRENT as
            // well as AWSPENDING (AWS does that for a secret's first version): there is no
            // older value a consumer could be reading.
            match sm.create_secret().name(id).send().await {
                Ok(_) => {}
                Err(e) if service_code(&e).as_deref() == Some("ResourceExistsException") => {}
                Err(e) => return Err(sdk_error("secretsmanager:CreateSecret", &e)),
            }
            self.versions(&sm, id)
                .await?
                .unwrap_or(Versions(HashMap::new()))
        };
        let current = if target.field.is_none() && versions.with_label(AWSCURRENT).is_some() {
            self.read_version(&sm, id, None, Some(AWSCURRENT)).await?
        } else {
            None
        };
        let doc = Self::document(call, &target, current.as_ref())?;
        let pending = versions.with_label(AWSPENDING).map(str::to_owned);
        for n in 0..MAX_DELIVERIES {
            let token = request_token(call.idempotency_key, n);
            if versions.has(&token) {
                let same = self
                    .read_version(&sm, id, Some(&token), None)
                    .await?
                    .is_some_and(|v| v.expose_secret() == doc.expose_secret());
                if !same {
                    continue;
                }
                // Delivered before: make sure it is the pending one (unless already promoted).
                let stages = &versions.0[&token];
                if !stages.iter().any(|s| s == AWSCURRENT || s == AWSPENDING) {
                    self.move_label(&sm, id, AWSPENDING, Some(&token), pending.as_deref())
                        .await?;
                }
                return Ok(plain(&[("version", token)]));
            }
            // A stale AWSPENDING (an earlier rotation that never finished) is moved off first.
            if let Some(old) = &pending {
                self.move_label(&sm, id, AWSPENDING, None, Some(old))
                    .await?;
                call.reports.side_effect(format!(
                    "moved AWSPENDING off version {old} of secret {id}: left by an earlier rotation that never finished"
                ));
            }
            sm.put_secret_value()
                .secret_id(id)
                .client_request_token(&token)
                .secret_string(doc.expose_secret())
                .version_stages(AWSPENDING)
                .send()
                .await
                .map_err(|e| sdk_error("secretsmanager:PutSecretValue", &e))?;
            return Ok(plain(&[("version", token)]));
        }
        Err(ProviderError::permanent(format!(
            "step {}: delivered {MAX_DELIVERIES} different values to {id} under one step; giving up",
            call.step.id
        )))
    }

    pub(super) async fn promote(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let versions = self.versions(&sm, id).await?.ok_or_else(|| {
            ProviderError::permanent(format!("secretsmanager: secret {id} does not exist"))
        })?;
        let current = versions.with_label(AWSCURRENT);
        let Some(pending) = versions.with_label(AWSPENDING) else {
            if current.is_some() {
                // Promoted already (a repeated call, or one whose outcome was lost).
                return Ok(Values::new());
            }
            return Err(ProviderError::permanent(format!(
                "secretsmanager: secret {id} has no AWSPENDING version to promote"
            )));
        };
        self.move_label(&sm, id, AWSCURRENT, Some(pending), current)
            .await?;
        self.move_label(&sm, id, AWSPENDING, None, Some(pending))
            .await?;
        Ok(Values::new())
    }

    pub(super) async fn undo_promote(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(());
        };
        let (Some(current), Some(previous)) = (
            versions.with_label(AWSCURRENT),
            versions.with_label(AWSPREVIOUS),
        ) else {
            return Ok(());
        };
        // AWSPENDING on another version than AWSCURRENT: the promotion never took effect, or
        // was undone already. Moving AWSCURRENT to AWSPREVIOUS now would promote the delivered
        // value again (a repeated undo) or an older one (an undo of a promote that failed).
        let pending = versions.with_label(AWSPENDING);
        if pending.is_some_and(|p| p != current) {
            return Ok(());
        }
        // Back to before: the delivered version pending again, then the old one current. In
        // this order an interrupted undo leaves a half-done promotion, which a repeated undo
        // finishes.
        self.move_label(&sm, id, AWSPENDING, Some(current), pending)
            .await?;
        self.move_label(&sm, id, AWSCURRENT, Some(previous), Some(current))
            .await
    }

    /// Removes `AWSPENDING` from the version a deliver step wrote.
    pub(super) async fn undo_deliver(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(());
        };
        if let Some(pending) = versions.with_label(AWSPENDING)
            && (0..MAX_DELIVERIES).any(|n| request_token(call.idempotency_key, n) == pending)
        {
            self.move_label(&sm, id, AWSPENDING, None, Some(pending))
                .await?;
        }
        Ok(())
    }

    /// Captures the value a secret holds now (`AWSCURRENT`), with the `VersionId` it was read
    /// from: after a crash, [`Provider::reread`] reads that same version again.
    pub(super) async fn read_current(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let id = target.secret_id;
        let (doc, version) = self
            .read_pinned(&target, None, Some(AWSCURRENT))
            .await?
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "secretsmanager: secret {id} has no AWSCURRENT value"
                ))
            })?;
        Ok([
            (
                "value".to_owned(),
                Value::Secret(Self::captured(&target, doc)?),
            ),
            ("version".to_owned(), Value::Plain(version)),
        ]
        .into())
    }

    /// A secret's value with the `VersionId` it came from.
    pub(super) async fn read_pinned(
        &self,
        target: &SecretTarget<'_>,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<(SecretString, String)>, ProviderError> {
        let sm = self.secrets(target.region);
        match sm
            .get_secret_value()
            .secret_id(target.secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string().map(|s| {
                (
                    SecretString::from(s.to_owned()),
                    out.version_id().unwrap_or_default().to_owned(),
                )
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:GetSecretValue", &e)),
        }
    }

    /// The captured value in a secret's document: the whole string with `field:` (the
    /// consumer stores that field alone), else the only string of a JSON object, else the
    /// document itself.
    pub(super) fn captured(
        target: &SecretTarget<'_>,
        doc: SecretString,
    ) -> Result<SecretString, ProviderError> {
        if target.field.is_some() {
            return Ok(doc);
        }
        match serde_json::from_str::<serde_json::Value>(doc.expose_secret()) {
            Ok(serde_json::Value::Object(map)) => {
                let mut strings = map.into_iter().filter_map(|(_, v)| match v {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                });
                match (strings.next(), strings.next()) {
                    (Some(s), None) => Ok(SecretString::from(s)),
                    _ => Err(ProviderError::permanent(format!(
                        "secretsmanager: secret {} holds a JSON document with several fields; set `field:` on the consumer to say which one is the value",
                        target.secret_id
                    ))),
                }
            }
            _ => Ok(doc),
        }
    }

    /// The document a deliver step wrote, if it is still pending (or was promoted).
    pub(super) async fn read_delivered(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        let Some(target) = secret_target(call.step) else {
            return Ok(None);
        };
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(None);
        };
        // AWSPENDING if it is ours; otherwise the newest of our versions that still exists.
        let ours: Vec<String> = (0..MAX_DELIVERIES)
            .map(|n| request_token(call.idempotency_key, n))
            .filter(|t| versions.has(t))
            .collect();
        let version = match versions.with_label(AWSPENDING) {
            Some(p) if ours.iter().any(|t| t == p) => p.to_owned(),
            _ => match ours.last() {
                Some(t) => t.clone(),
                None => return Ok(None),
            },
        };
        let Some(doc) = self.read_version(&sm, id, Some(&version), None).await? else {
            return Ok(None);
        };
        if let Some(field) = target.field {
            return Ok(Some([(field.to_owned(), doc)].into()));
        }
        match serde_json::from_str::<serde_json::Value>(doc.expose_secret()) {
            Ok(serde_json::Value::Object(map)) => Ok(Some(
                map.into_iter()
                    .filter_map(|(k, v)| match v {
                        serde_json::Value::String(s) => Some((k, SecretString::from(s))),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => Err(ProviderError::permanent(format!(
                "secretsmanager: the delivered version of {id} is not a JSON object"
            ))),
        }
    }
}
