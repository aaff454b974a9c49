//! The `gcp.iam.*` actions: list, create, verify, disable, delete, and their inputs.

#![allow(clippy::wildcard_imports)]

use super::*;

// ---------------------------------------------------------------------------------------------
// Inputs

pub(super) fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.inputs
        .get(name)
        .map(Value::expose)
        .filter(|s| !s.is_empty())
}

pub(super) fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a str, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}

/// A selector ([`crate::inputs::selector`]), trimmed: GCP key ids are matched exactly.
pub(super) fn selector<'a>(
    call: &'a Call<'_>,
    name: &str,
) -> Result<Option<&'a str>, ProviderError> {
    Ok(crate::inputs::selector(call, name)?.map(str::trim))
}

/// A plain list of key ids (`existing_key_ids`, `enabled_key_ids`); `None` when not given.
pub(super) fn id_list(
    call: &Call<'_>,
    name: &str,
) -> Result<Option<BTreeSet<String>>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) => Ok(Some(s.split_whitespace().map(str::to_owned).collect())),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is a secret value, not key ids",
            call.step.id
        ))),
    }
}

pub(super) fn plain(pairs: &[(&str, String)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Plain(v.clone())))
        .collect()
}

pub(super) fn join(ids: &[String]) -> String {
    ids.join(" ")
}

/// The API's disable reason for a step: its `reason` input (a short name or the API's own
/// value), else by strategy (revoke first: exposed).
pub(super) fn disable_reason(
    step_reason: Option<&str>,
    strategy: Strategy,
) -> Result<&'static str, String> {
    match step_reason {
        Some(r) => REASONS
            .iter()
            .find(|(short, api)| r.eq_ignore_ascii_case(short) || r == *api)
            .map(|(_, api)| *api)
            .ok_or_else(|| {
                format!(
                    "disable reason `{r}` is not one keys.disable accepts: {}",
                    REASONS
                        .iter()
                        .map(|(s, _)| *s)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        None if strategy == Strategy::RevokeFirst => Ok(REASONS[1].1),
        None => Ok(REASONS[0].1),
    }
}

// ---------------------------------------------------------------------------------------------
// Actions

pub(super) struct Account<'a> {
    pub(super) project: &'a str,
    pub(super) email: &'a str,
}

impl Account<'_> {
    pub(super) fn path(&self) -> String {
        format!(
            "/v1/projects/{}/serviceAccounts/{}",
            seg(self.project),
            seg(self.email)
        )
    }

    pub(super) fn keys(&self) -> String {
        format!("{}/keys", self.path())
    }

    pub(super) fn key(&self, id: &str) -> String {
        format!("{}/keys/{}", self.path(), seg(id))
    }
}

pub(super) fn account<'a>(call: &'a Call<'_>) -> Result<Account<'a>, ProviderError> {
    Ok(Account {
        project: required(call, "project")?,
        email: required(call, "service_account")?,
    })
}

pub(super) fn step_account(step: &PlannedStep) -> Option<(String, String)> {
    let lit = |k: &str| {
        step.inputs
            .get(k)
            .and_then(rekey_spec::Template::as_literal)
    };
    Some((lit("project")?, lit("service_account")?))
}

impl GcpProvider {
    pub(super) async fn list_keys(&self, a: &Account<'_>) -> Result<Vec<Key>, ProviderError> {
        let resp = self
            .iam_ok(
                "keys.list",
                Method::GET,
                &format!("{}?keyTypes=USER_MANAGED", a.keys()),
                None,
            )
            .await
            .map_err(|e| Self::explain_missing(e, a))?;
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient("keys.list: unreadable answer"))?;
        let mut keys: Vec<Key> = v
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter(|k| str_field(k, "keyType").is_none_or(|t| t == "USER_MANAGED"))
            .filter_map(|k| {
                Some(Key {
                    id: str_field(k, "name")?.rsplit('/').next()?.to_owned(),
                    disabled: k
                        .get("disabled")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(false),
                    created: str_field(k, "validAfterTime").and_then(parse_rfc3339),
                })
            })
            .collect();
        keys.sort_by(|x, y| x.created.cmp(&y.created).then(x.id.cmp(&y.id)));
        Ok(keys)
    }

    pub(super) fn explain_missing(mut e: ProviderError, a: &Account<'_>) -> ProviderError {
        if e.message.contains("HTTP 404") {
            e.message = format!(
                "{} (service account {} in project {}: check `project` and `service_account`)",
                e.message, a.email, a.project
            );
        }
        e
    }

    /// `true` when the key was there; a missing key (404) is `false`.
    pub(super) async fn key_call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<bool, ProviderError> {
        let resp = self.iam(op, method, path, body).await?;
        if resp.status().is_success() {
            Ok(true)
        } else if resp.status() == StatusCode::NOT_FOUND {
            Ok(false)
        } else {
            Err(error_of(op, resp).await)
        }
    }

    pub(super) async fn delete_key(
        &self,
        a: &Account<'_>,
        id: &str,
    ) -> Result<bool, ProviderError> {
        self.key_call("keys.delete", Method::DELETE, &a.key(id), None)
            .await
    }

    pub(super) async fn set_disabled(
        &self,
        a: &Account<'_>,
        id: &str,
        disabled: bool,
        reason: &str,
    ) -> Result<bool, ProviderError> {
        if disabled {
            self.key_call(
                "keys.disable",
                Method::POST,
                &format!("{}:disable", a.key(id)),
                Some(json!({ "serviceAccountKeyDisableReason": reason })),
            )
            .await
        } else {
            self.key_call(
                "keys.enable",
                Method::POST,
                &format!("{}:enable", a.key(id)),
                Some(json!({})),
            )
            .await
        }
    }

    /// Prepare: the account's user-managed keys; refuses at IAM's limit, before anything
    /// changes, and refuses an inventory `key_id` the account no longer has.
    pub(super) async fn prepare(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let known = selector(call, "key_id")?;
        let listed_at = format_rfc3339(i64::try_from(unix_now()).unwrap_or(i64::MAX));
        let keys = self.list_keys(&a).await?;
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        if let Some(k) = known
            && !ids.iter().any(|i| i == k)
        {
            return Err(ProviderError::permanent(format!(
                "service account {} has no user-managed key {k} (its keys: {}): the inventory's `key_id` is out of date; set it to the key in use (or remove it to mean every key of the account) and plan again",
                a.email,
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )));
        }
        if keys.len() >= MAX_KEYS {
            return Err(ProviderError::permanent(format!(
                "service account {} already has {} user-managed keys, IAM's limit ({MAX_KEYS}), so a new key cannot be made: {}. Delete keys that are no longer used, then run again",
                a.email,
                keys.len(),
                ids.join(", ")
            )));
        }
        let enabled: Vec<String> = keys
            .iter()
            .filter(|k| !k.disabled)
            .map(|k| k.id.clone())
            .collect();
        let unknown: Vec<String> = match known {
            Some(k) => enabled.iter().filter(|i| *i != k).cloned().collect(),
            None => Vec::new(),
        };
        if !unknown.is_empty() && call.credential.strategy == Strategy::RevokeFirst {
            call.reports.warning(format!(
                "service account {} has enabled keys the inventory does not name: {}; the incident disables them too. Find out who made them",
                a.email,
                unknown.join(", ")
            ));
        }
        Ok(plain(&[
            ("key_ids", join(&ids)),
            ("enabled_key_ids", join(&enabled)),
            ("unknown_keys", join(&unknown)),
            ("listed_at", listed_at),
        ]))
    }

    /// Deletes keys an earlier, lost attempt of this create step made: not among the keys
    /// listed before it (`existing_key_ids`) and made after that listing (`not_before`, less a
    /// margin for clock skew). `None` when the step has no such record.
    pub(super) async fn remove_created(
        &self,
        call: &Call<'_>,
        keep: Option<&str>,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let a = account(call)?;
        let Some(before) = id_list(call, "existing_key_ids")? else {
            return Ok(None);
        };
        let not_before = input(call, "not_before")
            .map(|t| {
                parse_rfc3339(t).ok_or_else(|| {
                    ProviderError::permanent(format!(
                        "step {}: input `not_before` is not an RFC 3339 time",
                        call.step.id
                    ))
                })
            })
            .transpose()?;
        let skew = i64::try_from(SKEW.as_secs()).unwrap_or(0);
        let mut deleted = Vec::new();
        for k in self.list_keys(&a).await? {
            let recent = match (not_before, k.created) {
                (Some(nb), Some(c)) => c >= nb - skew,
                _ => true,
            };
            if before.contains(&k.id) || !recent || keep == Some(k.id.as_str()) {
                continue;
            }
            if self.delete_key(&a, &k.id).await? {
                call.reports.side_effect(format!(
                    "deleted key {} of service account {}: made by this step in a call whose answer was lost, so its key file is gone",
                    k.id, a.email
                ));
                deleted.push(k.id);
            }
        }
        Ok(Some(deleted))
    }

    pub(super) async fn create(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        // keys.create has no idempotency token: what an earlier attempt of this step made is
        // an orphan (its key file was lost with the answer) and holds one of the ten slots.
        // Only a step called before can have one: on a first call, a key made since the list
        // (another credential of this service account, a person) would pass for it.
        if (call.attempt > 1 || call.tried_before)
            && self.remove_created(call, None).await?.is_none()
        {
            tracing::debug!(step = %call.step.id, "no key ids recorded before the create");
        }
        let resp = self
            .iam(
                "keys.create",
                Method::POST,
                &a.keys(),
                Some(json!({
                    "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
                    "keyAlgorithm": "KEY_ALG_RSA_2048"
                })),
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let mut e = error_of("keys.create", resp).await;
            if status == StatusCode::BAD_REQUEST || status == StatusCode::PRECONDITION_FAILED {
                e.message = format!(
                    "{} (a service account may have at most {MAX_KEYS} user-managed keys)",
                    e.message
                );
            }
            return Err(Self::explain_missing(e, &a));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient("keys.create: unreadable answer"))?;
        let id = str_field(&v, "name")
            .and_then(|n| n.rsplit('/').next())
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::transient("keys.create: no key name in the answer"))?;
        let data = str_field(&v, "privateKeyData").ok_or_else(|| {
            ProviderError::permanent(format!(
                "keys.create: key {id} came without privateKeyData; delete it by hand"
            ))
        })?;
        let file = base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "keys.create: the privateKeyData of key {id} is not base64 text"
                ))
            })?;
        let file = SecretString::from(file);
        // The key file must be one rekey can verify and consumers can use.
        let parsed = KeyFile::parse(file.expose_secret(), &format!("the key file of key {id}"))?;
        if parsed.private_key_id != id {
            return Err(ProviderError::permanent(format!(
                "keys.create: the key file's private_key_id is not the new key {id}"
            )));
        }
        let mut out = plain(&[("key_id", id)]);
        out.insert("private_key_data".into(), Value::Secret(file));
        Ok(out)
    }

    pub(super) async fn verify(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let key_id = required(call, "key_id")?;
        let data = call
            .inputs
            .get("private_key_data")
            .filter(|v| !v.expose().is_empty())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: input `private_key_data` is missing",
                    call.step.id
                ))
            })?;
        let file = KeyFile::parse(data.expose(), "the new key file")?;
        if file.private_key_id != key_id || file.client_email != a.email {
            return Err(ProviderError::permanent(format!(
                "the key file to verify is not key {key_id} of {}",
                a.email
            )));
        }
        check_token_uri(&file.token_uri, "the new key file")?;
        let jwt = file.assertion(SCOPE)?;
        match self
            .token_request(
                "token (new key)",
                &file.token_uri,
                &[
                    ("grant_type", JWT_BEARER),
                    ("assertion", jwt.expose_secret()),
                ],
                Spend::NotOurs,
            )
            .await
        {
            // The access token proves the key; it is dropped at once.
            Ok(_) => Ok(Values::new()),
            // A brand-new key takes a while to be accepted everywhere.
            Err(e) if e.message.contains("HTTP 400") || e.message.contains("HTTP 401") => {
                Err(ProviderError::transient(format!(
                    "{e}; the new key {key_id} is not accepted yet: a new key may take a while to propagate, and rekey waits up to {}s for it ({PROPAGATION_WAIT_VAR}; the run's --retry-budget if longer)",
                    self.propagation_wait.as_secs()
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// The keys a disable step turns off: an incident's (revoke first) every enabled key but
    /// `except_key_id`, whatever the inventory names; a rotation's `key_id` (or every key)
    /// but `except_key_id`.
    pub(super) async fn disable_targets(&self, call: &Call<'_>) -> Result<Vec<Key>, ProviderError> {
        let a = account(call)?;
        let only = selector(call, "key_id")?;
        let except = selector(call, "except_key_id")?;
        let everything = call.credential.strategy == Strategy::RevokeFirst;
        Ok(self
            .list_keys(&a)
            .await?
            .into_iter()
            .filter(|k| {
                (everything || only.is_none_or(|o| o == k.id)) && except != Some(k.id.as_str())
            })
            .collect())
    }

    /// The last line of defence of a disable or delete: a rotation must name the key it keeps,
    /// and only an incident's revoke-first disable may leave the account with no enabled key.
    pub(super) async fn guard_removal(
        &self,
        call: &Call<'_>,
        removing: &BTreeSet<&str>,
        may_leave_none: bool,
    ) -> Result<(), ProviderError> {
        let a = account(call)?;
        if call.credential.strategy == Strategy::RotateFirst
            && selector(call, "except_key_id")?.is_none()
        {
            return Err(ProviderError::permanent(format!(
                "step {}: a rotation must name the key it keeps (`except_key_id`); refusing to touch every key of {}",
                call.step.id, a.email
            )));
        }
        if may_leave_none || removing.is_empty() {
            return Ok(());
        }
        let keys = self.list_keys(&a).await?;
        if !keys
            .iter()
            .any(|k| !k.disabled && !removing.contains(k.id.as_str()))
        {
            return Err(ProviderError::permanent(format!(
                "step {}: this would leave service account {} with no enabled user-managed key ({} would go); refusing",
                call.step.id,
                a.email,
                removing.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    pub(super) fn unknown(call: &Call<'_>, ids: &[String]) -> Result<Vec<String>, ProviderError> {
        Ok(match selector(call, "key_id")? {
            Some(known) if call.credential.strategy == Strategy::RevokeFirst => {
                ids.iter().filter(|k| *k != known).cloned().collect()
            }
            _ => Vec::new(),
        })
    }

    pub(super) async fn disable(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let reason = disable_reason(input(call, "reason"), call.credential.strategy)
            .map_err(ProviderError::permanent)?;
        let targets: Vec<String> = self
            .disable_targets(call)
            .await?
            .into_iter()
            .filter(|k| !k.disabled)
            .map(|k| k.id)
            .collect();
        let removing: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        self.guard_removal(
            call,
            &removing,
            call.credential.strategy == Strategy::RevokeFirst,
        )
        .await?;
        let unknown = Self::unknown(call, &targets)?;
        if !unknown.is_empty() {
            call.reports.warning(format!(
                "service account {} had enabled keys the inventory does not name: {}; disabled too (an incident disables every key of the account). Find out who made them",
                a.email,
                unknown.join(", ")
            ));
        }
        let mut changed = Vec::new();
        for id in targets {
            if self.set_disabled(&a, &id, true, reason).await? {
                changed.push(id);
            }
        }
        Ok(plain(&[
            ("disabled", join(&changed)),
            ("unknown_keys", join(&unknown)),
        ]))
    }

    /// Enables again what a disable step turned off: its `disabled` output, or — its outputs
    /// lost — the keys it targets that are disabled now and were enabled when the prepare step
    /// listed them (`enabled_key_ids`); never a key that was off before the run.
    pub(super) async fn undo_disable(
        &self,
        call: &Call<'_>,
        outputs: &Values,
    ) -> Result<(), ProviderError> {
        let a = account(call)?;
        let ids: Vec<String> = if let Some(d) = outputs.get("disabled") {
            d.expose().split_whitespace().map(str::to_owned).collect()
        } else {
            let enabled = id_list(call, "enabled_key_ids")?;
            self.disable_targets(call)
                .await?
                .into_iter()
                .filter(|k| k.disabled && enabled.as_ref().is_none_or(|e| e.contains(&k.id)))
                .map(|k| k.id)
                .collect()
        };
        for id in ids {
            self.set_disabled(&a, &id, false, "").await?;
        }
        Ok(())
    }

    pub(super) async fn delete_selected(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let only = selector(call, "key_id")?;
        let except = selector(call, "except_key_id")?;
        let selected: Vec<String> = self
            .list_keys(&a)
            .await?
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == k.id) && except != Some(k.id.as_str()))
            .map(|k| k.id)
            .collect();
        let removing: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        self.guard_removal(call, &removing, false).await?;
        let mut deleted = Vec::new();
        for id in selected {
            if self.delete_key(&a, &id).await? {
                deleted.push(id);
            }
        }
        Ok(plain(&[("deleted", join(&deleted))]))
    }
}
